#include "tagnet/data/dataset.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace tagnet {

ImageSet::ImageSet(const Shape& input, int outputs) : input_(input), F_(outputs) {
  if (input.rank() != 3 || (input[2] != 1 && input[2] != 3))
    throw std::invalid_argument("pictures need an (H, W, 1) or (H, W, 3) input, not " + input.str());
  if (outputs < 1) throw std::invalid_argument("a picture set needs at least one output");
}

void ImageSet::add(const Image& picture, const std::vector<float>& target) {
  if (static_cast<int>(target.size()) != F_)
    throw std::invalid_argument("target has " + std::to_string(target.size()) + " values, expected " +
                                std::to_string(F_));
  const size_t n = input_.numel();
  std::vector<float> buf(n);
  image_to_input(picture, input_[0], input_[1], input_[2], buf.data());
  const size_t at = pixels_.size();
  pixels_.resize(at + n);
  for (size_t i = 0; i < n; ++i)
    pixels_[at + i] = static_cast<uint8_t>(std::lround(std::min(1.f, std::max(0.f, buf[i])) * 255.f));
  targets_.insert(targets_.end(), target.begin(), target.end());
}

ImageSet ImageSet::subset(const std::vector<size_t>& indices) const {
  ImageSet s(input_, F_);
  s.augment_ = augment_;
  const size_t n = input_.numel();
  s.pixels_.reserve(indices.size() * n);
  s.targets_.reserve(indices.size() * F_);
  for (size_t i : indices) {
    if (i >= size()) throw std::out_of_range("picture index out of range");
    s.pixels_.insert(s.pixels_.end(), pixels(i), pixels(i) + n);
    s.targets_.insert(s.targets_.end(), target(i), target(i) + F_);
  }
  return s;
}

void ImageSet::fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
                    bool augment) {
  const int B = static_cast<int>(indices.size());
  const int H = input_[0], W = input_[1], C = input_[2];
  const size_t n = input_.numel();
  x.resize(input_.batched(B));
  y.resize({B, F_});
  const bool warp = augment && augment_.active();
  std::vector<float> src(warp ? n : 0);
  for (int b = 0; b < B; ++b) {
    const size_t i = indices[b];
    if (i >= size()) throw std::out_of_range("picture index out of range");
    float* dst = x.data() + size_t(b) * n;
    float* plain = warp ? src.data() : dst;
    const uint8_t* p = pixels(i);
    for (size_t k = 0; k < n; ++k) plain[k] = p[k] * (1.f / 255.f);
    if (warp) augment_image(src.data(), H, W, C, dst, augment_, rng);
    std::memcpy(y.data() + size_t(b) * F_, target(i), F_ * sizeof(float));
  }
}

}  // namespace tagnet

namespace tagnet {

std::vector<float> label_probabilities(Head head, const float* out, int count) {
  if (head == Head::kLogit) {
    const float p = 1.f / (1.f + std::exp(-out[0]));
    return {1.f - p, p};
  }
  return std::vector<float>(out, out + count);
}

std::vector<std::vector<float>> classify_images(Model& model, const std::vector<Image>& pictures,
                                                const Context& ctx) {
  std::vector<std::vector<float>> result;
  if (pictures.empty()) return result;
  const Shape& in = model.input_shape();
  if (in.rank() != 3) throw std::invalid_argument("model does not take pictures: input " + in.str());
  const Head head = model_head(model);
  const int B = static_cast<int>(pictures.size());
  Tensor x(in.batched(B));
  for (int b = 0; b < B; ++b)
    image_to_input(pictures[b], in[0], in[1], in[2], x.data() + size_t(b) * in.numel());
  Context c = ctx;
  c.training = false;
  const Tensor& y = model.forward(x, c);
  const int F = static_cast<int>(y.size() / B);
  for (int b = 0; b < B; ++b) result.push_back(label_probabilities(head, y.data() + size_t(b) * F, F));
  return result;
}

}  // namespace tagnet
