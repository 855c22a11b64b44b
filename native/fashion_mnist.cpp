#include "fashion_mnist.h"

#include <zlib.h>

#include <cstring>
#include <stdexcept>

namespace tagnet::native {

const std::vector<std::string> kFashionMnistClasses = {
    "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"};

namespace {

std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const std::string message = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw std::runtime_error(path + ": corrupt gzip data (" + message + ")");
  return out;
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

// Returns the dimensions and the offset of the data.
std::vector<uint32_t> idx_header(const std::vector<uint8_t>& d, const std::string& path,
                                 int want_dims, size_t& offset) {
  if (d.size() < 4 || d[0] != 0 || d[1] != 0 || d[2] != 0x08)
    throw std::runtime_error(path + ": not an unsigned-byte IDX file");
  const int dims = d[3];
  if (dims != want_dims)
    throw std::runtime_error(path + ": expected " + std::to_string(want_dims) + " dimensions, found " +
                             std::to_string(dims));
  if (d.size() < 4 + 4 * size_t(dims)) throw std::runtime_error(path + ": truncated IDX header");
  std::vector<uint32_t> v;
  size_t total = 1;
  for (int i = 0; i < dims; ++i) {
    v.push_back(be32(d.data() + 4 + 4 * i));
    total *= v.back();
  }
  offset = 4 + 4 * size_t(dims);
  if (d.size() - offset != total)
    throw std::runtime_error(path + ": expected " + std::to_string(total) + " data bytes, found " +
                             std::to_string(d.size() - offset));
  return v;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  const std::vector<uint8_t> d = read_gz(path);
  size_t off;
  const auto dims = idx_header(d, path, 3, off);
  IdxImages im;
  im.count = static_cast<int>(dims[0]);
  im.rows = static_cast<int>(dims[1]);
  im.cols = static_cast<int>(dims[2]);
  im.pixels.assign(d.begin() + off, d.end());
  return im;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  const std::vector<uint8_t> d = read_gz(path);
  size_t off;
  idx_header(d, path, 1, off);
  return {d.begin() + off, d.end()};
}

FashionMnistQuadrants::FashionMnistQuadrants(const std::string& dir, const std::string& split,
                                             uint64_t seed, size_t limit) {
  const std::string prefix = split == "train" ? "train" : split == "test" ? "t10k" : "";
  if (prefix.empty()) throw std::invalid_argument("Fashion-MNIST split must be train or test");
  images_ = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  labels_ = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (images_.rows != 28 || images_.cols != 28)
    throw std::runtime_error(dir + ": Fashion-MNIST pictures must be 28x28");
  if (labels_.size() != size_t(images_.count))
    throw std::runtime_error(dir + ": " + std::to_string(images_.count) + " pictures but " +
                             std::to_string(labels_.size()) + " labels");
  for (uint8_t l : labels_)
    if (l >= 10) throw std::runtime_error(dir + ": label " + std::to_string(l) + " out of range");
  if (limit && limit < labels_.size()) {
    labels_.resize(limit);
    images_.count = static_cast<int>(limit);
    images_.pixels.resize(limit * 28 * 28);
  }
  Rng rng(seed);
  quadrant_.resize(labels_.size());
  for (auto& q : quadrant_) q = static_cast<uint8_t>(rng.below(4));
}

void FashionMnistQuadrants::fill(const std::vector<size_t>& idx, Tensor& x, Tensor& y, Rng& rng,
                                 bool augment) {
  const int B = static_cast<int>(idx.size());
  x.resize({B, 56, 56, 1});
  y.resize({B, 10});
  x.zero();
  y.zero();
  for (int b = 0; b < B; ++b) {
    const size_t i = idx[b];
    const int q = augment ? static_cast<int>(rng.below(4)) : quadrant_[i];
    const int r0 = (q / 2) * 28, c0 = (q % 2) * 28;
    const uint8_t* src = images_.pixels.data() + i * 28 * 28;
    float* dst = x.data() + size_t(b) * 56 * 56;
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) dst[(r0 + r) * 56 + c0 + c] = src[r * 28 + c] * (1.f / 255.f);
    y.at(size_t(b) * 10 + labels_[i]) = 1.f;
  }
}

GridComposites make_fashion_2x2(const std::string& dir, const std::string& split, size_t count, uint64_t seed,
                                bool fresh, size_t limit) {
  const std::string prefix = split == "train" ? "train" : split == "test" ? "t10k" : "";
  if (prefix.empty()) throw std::invalid_argument("Fashion-MNIST split must be train or test, not '" + split + "'");
  IdxImages images = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  std::vector<uint8_t> labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (images.rows != 28 || images.cols != 28) throw std::runtime_error(dir + ": Fashion-MNIST pictures must be 28x28");
  if (labels.size() != size_t(images.count))
    throw std::runtime_error(dir + ": " + std::to_string(images.count) + " pictures but " +
                             std::to_string(labels.size()) + " labels");
  if (limit && limit < labels.size()) {
    labels.resize(limit);
    images.pixels.resize(limit * 28 * 28);
  }
  GridComposites::Options o;
  o.count = count;
  o.seed = seed;
  o.fresh = fresh;
  return GridComposites(std::move(images.pixels), std::move(labels), 28, 28, 10, o);
}

}  // namespace tagnet::native
