// Transfer learning pieces and the feature file: see tagnet/train/features.h.
#include "tagnet/train/features.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <unistd.h>

#include "file_io.h"
#include "json_number.h"

namespace tagnet {

namespace {

constexpr char kMagic[8] = {'T', 'A', 'G', 'F', 'E', 'A', 'T', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kAlign = kContainerAlign;


// FNV-1a, 64 bits: a fingerprint with fewer accidental matches than a CRC-32.
struct Fnv64 {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  }
};



// Appends a fresh layer with the configuration, name and trainable flag of `src`.
void add_copy(Model& dst, const Layer& src, const std::string& name) {
  auto l = Layer::from_config(src.type(), src.config());
  l->name = name;
  l->trainable = src.trainable;
  dst.add(std::move(l));
}

void copy_weights(const Layer& src, Layer& dst) {
  const auto& sp = src.params();
  auto& dp = dst.params();
  if (sp.size() != dp.size()) throw std::logic_error("layer copy: parameter lists differ");
  for (size_t j = 0; j < sp.size(); ++j) {
    if (sp[j].value.size() != dp[j].value.size()) throw std::logic_error("layer copy: parameter sizes differ");
    std::copy(sp[j].value.data(), sp[j].value.data() + sp[j].value.size(), dp[j].value.data());
  }
}

void require_built(const Model& m, const char* what) {
  if (!m.built()) throw std::logic_error(std::string(what) + ": the model is not built");
}

}  // namespace

Model slice_model(const Model& m, size_t begin, size_t end) {
  require_built(m, "slice_model");
  if (begin >= end || end > m.num_layers())
    throw std::out_of_range("cannot take layers [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a model of " + std::to_string(m.num_layers()) + " layers");
  Model out(m.layer(begin).input_shape);
  for (size_t i = begin; i < end; ++i) add_copy(out, m.layer(i), m.layer(i).name);
  out.build(0);
  for (size_t i = begin; i < end; ++i) copy_weights(m.layer(i), out.layer(i - begin));
  out.card() = m.card();
  return out;
}

Model join_models(const Model& base, const Model& top) {
  require_built(base, "join_models");
  require_built(top, "join_models");
  if (top.input_shape() != base.output_shape())
    throw std::invalid_argument("the top model takes " + top.input_shape().str() + " but the base gives " +
                                base.output_shape().str());
  Model out(base.input_shape());
  std::set<std::string> names;
  for (size_t i = 0; i < base.num_layers(); ++i) {
    add_copy(out, base.layer(i), base.layer(i).name);
    names.insert(base.layer(i).name);
  }
  for (size_t i = 0; i < top.num_layers(); ++i) {
    std::string name = top.layer(i).name;
    for (int k = 1; names.count(name); ++k) name = top.layer(i).name + "_top" + (k > 1 ? std::to_string(k) : "");
    names.insert(name);
    add_copy(out, top.layer(i), name);
  }
  out.build(0);
  for (size_t i = 0; i < base.num_layers(); ++i) copy_weights(base.layer(i), out.layer(i));
  for (size_t i = 0; i < top.num_layers(); ++i) copy_weights(top.layer(i), out.layer(base.num_layers() + i));
  out.card() = top.card();
  return out;
}

Model make_top_model(const Shape& feature_shape, int outputs, Head head, int hidden, float dropout,
                     uint64_t seed) {
  if (head != Head::kLogit && outputs < 1) throw std::invalid_argument("a top model needs at least one output");
  if (hidden < 1) throw std::invalid_argument("a top model needs at least one hidden unit");
  Model m(feature_shape);
  if (feature_shape.rank() > 1) m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(hidden, Activation::kRelu));
  if (dropout > 0) m.add(std::make_unique<Dropout>(dropout));
  m.add(std::make_unique<Dense>(head == Head::kLogit ? 1 : outputs));
  if (head == Head::kSoftmax) m.add(std::make_unique<Softmax>());
  if (head == Head::kSigmoid) m.add(std::make_unique<Sigmoid>());
  m.build(seed);
  m.card().head = head;
  return m;
}

nlohmann::json base_identity(const Model& m, size_t n) {
  require_built(m, "base_identity");
  if (n == 0 || n > m.num_layers())
    throw std::out_of_range("a base of " + std::to_string(n) + " layers from a model of " +
                            std::to_string(m.num_layers()));
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i)
    layers.push_back({{"type", m.layer(i).type()}, {"name", m.layer(i).name}, {"config", m.layer(i).config()}});
  Fnv64 h;
  const std::string arch = nlohmann::json({{"input_shape", m.input_shape().dims()}, {"layers", layers}}).dump();
  h.add(arch.data(), arch.size());
  for (size_t i = 0; i < n; ++i)
    for (const auto& p : m.layer(i).params()) h.add(p.value.data(), p.value.size() * sizeof(float));
  char hex[20];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.h));
  return {{"layers", n},
          {"input_shape", m.input_shape().dims()},
          {"output_shape", m.layer(n - 1).output_shape.dims()},
          {"architecture", layers},
          {"fingerprint", hex}};
}

FeatureSet FeatureSet::subset(const std::vector<size_t>& indices) const {
  FeatureSet s;
  s.feature_shape = feature_shape;
  s.labels = labels;
  s.head = head;
  s.base = base;
  s.metadata = metadata;
  const int N = static_cast<int>(indices.size());
  const size_t D = feature_shape.numel();
  const size_t F = static_cast<size_t>(outputs());
  s.features = Tensor(feature_shape.batched(N));
  s.targets = Tensor(Shape{N, static_cast<int>(F)});
  for (int b = 0; b < N; ++b) {
    const size_t i = indices[b];
    if (i >= size()) throw std::out_of_range("feature index out of range");
    std::memcpy(s.features.data() + b * D, features.data() + i * D, D * sizeof(float));
    std::memcpy(s.targets.data() + b * F, targets.data() + i * F, F * sizeof(float));
  }
  return s;
}

std::vector<uint8_t> FeatureSet::save_bytes() const {
  const size_t N = size();
  if (N == 0) throw std::logic_error("cannot save an empty feature set");
  if (features.shape() != feature_shape.batched(static_cast<int>(N)))
    throw std::logic_error("feature set: features " + features.shape().str() + " do not match the feature shape " +
                           feature_shape.str());
  if (targets.rank() != 2 || static_cast<size_t>(targets.dim(0)) != N)
    throw std::logic_error("feature set: targets " + targets.shape().str() + " do not match " + std::to_string(N) +
                           " examples");
  if (!labels.empty() && labels.size() != static_cast<size_t>(outputs()) &&
      !(head == Head::kLogit && labels.size() == 2))
    throw std::logic_error("feature set: " + std::to_string(labels.size()) + " label names for " +
                           std::to_string(outputs()) + " outputs");
  const size_t fbytes = features.size() * sizeof(float), tbytes = targets.size() * sizeof(float);
  const size_t toff = round_up(fbytes, kAlign);
  const size_t data_bytes = round_up(toff + tbytes, kAlign);
  nlohmann::json header = {
      {"format", "tagnet-features"},
      {"count", N},
      {"feature_shape", feature_shape.dims()},
      {"outputs", outputs()},
      {"labels", labels},
      {"head", head_name(head)},
      {"base", base},
      {"metadata", metadata},
      {"tensors",
       {{{"name", "features"}, {"dtype", "f32"}, {"shape", features.shape().dims()}, {"offset", 0}},
        {{"name", "targets"}, {"dtype", "f32"}, {"shape", targets.shape().dims()}, {"offset", toff}}}}};
  const std::string json = header.dump();
  size_t data_start = 0;
  std::vector<uint8_t> out = container_begin(kMagic, json, data_bytes, data_start);
  // Little-endian hosts only (x86, ARM, WASM), so float bytes are written as they are.
  std::memcpy(out.data() + data_start, features.data(), fbytes);
  std::memcpy(out.data() + data_start + toff, targets.data(), tbytes);
  container_seal(out, kVersion, json.size(), data_start);
  return out;
}

void FeatureSet::save(const std::string& path) const {
  const std::vector<uint8_t> bytes = save_bytes();
  write_file_atomic(path, bytes);
}

FeatureSet FeatureSet::load(const std::string& path) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_file(path, bytes, error)) throw FeatureFileError(path + ": " + error);
  return load_bytes(bytes.data(), bytes.size(), path);
}

FeatureSet FeatureSet::load_bytes(const uint8_t* data, size_t size, const std::string& origin) {
  auto fail = [&](const std::string& what) { return FeatureFileError(origin + ": " + one_line(what)); };
  if (size < kContainerHeader)
    throw fail("not a tagnet feature file (" + std::to_string(size) + " bytes, shorter than the header)");
  if (std::memcmp(data, kMagic, 8) != 0) {
    if (std::memcmp(data, "TAGNET\0\0", 8) == 0) throw fail("this is a tagnet model, not a feature file");
    throw fail("not a tagnet feature file (wrong magic bytes)");
  }
  ContainerView view{};
  const std::string problem = container_check(data, size, kVersion, "feature file", "feature data", view);
  if (!problem.empty()) throw fail(problem);
  const uint64_t data_bytes = view.data_bytes;
  const size_t data_start = static_cast<size_t>(view.data - data);

  try {
    nlohmann::json h;
    const std::string deep = container_json(view, h);
    if (!deep.empty()) throw fail(deep);
    if (h.value("format", "") != "tagnet-features") throw fail("header is not a tagnet feature header");
    FeatureSet s;
    const int count = static_cast<int>(json_integer(h.at("count"), "count", 1, 1 << 30));
    s.feature_shape = Shape(json_dims(h.at("feature_shape"), "feature_shape", 3, 1 << 20));
    const int outputs = static_cast<int>(json_integer(h.at("outputs"), "outputs", 1, 1 << 20));
    s.labels = h.at("labels").get<std::vector<std::string>>();
    s.head = head_from_name(h.at("head").get<std::string>());
    if (!s.labels.empty() && s.labels.size() != static_cast<size_t>(outputs) &&
        !(s.head == Head::kLogit && s.labels.size() == 2))
      throw fail(std::to_string(s.labels.size()) + " label names for " + std::to_string(outputs) + " outputs");
    s.base = h.value("base", nlohmann::json::object());
    s.metadata = h.value("metadata", nlohmann::json::object());

    std::map<std::string, const nlohmann::json*> table;
    for (auto& t : h.at("tensors")) table[t.at("name").get<std::string>()] = &t;
    auto read_tensor = [&](const std::string& name, Tensor& dst) {
      auto it = table.find(name);
      if (it == table.end()) throw fail("tensor '" + name + "' is missing");
      const auto& t = *it->second;
      if (t.at("dtype").get<std::string>() != "f32")
        throw fail("tensor '" + name + "' has unsupported dtype " + t.at("dtype").dump());
      const Shape shape(json_dims(t.at("shape"), "tensor '" + name + "' shape", 8, INT32_MAX));
      if (shape != dst.shape())
        throw fail("tensor '" + name + "' has shape " + shape.str() + ", expected " + dst.shape().str());
      const uint64_t off = json_integer(t.at("offset"), "tensor '" + name + "' offset", 0, int64_t(1) << 53);
      const uint64_t nbytes = dst.size() * sizeof(float);
      if (off % kAlign != 0 || off > data_bytes || nbytes > data_bytes - off)
        throw fail("tensor '" + name + "' lies outside the data section (offset " + std::to_string(off) + ")");
      std::memcpy(dst.data(), data + data_start + off, nbytes);
    };
    // Sizes are checked against the data section before anything is allocated, by division:
    // their product can pass 2^64.
    const uint64_t per_example = s.feature_shape.numel() + static_cast<uint64_t>(outputs);  // < 2^61
    if (per_example > data_bytes / sizeof(float) / static_cast<uint64_t>(count))
      throw fail("the data section holds " + std::to_string(data_bytes) + " bytes, too few for " +
                 std::to_string(count) + " examples of " + std::to_string(per_example) + " floats");
    s.features = Tensor(s.feature_shape.batched(count));
    s.targets = Tensor(Shape{count, outputs});
    read_tensor("features", s.features);
    read_tensor("targets", s.targets);
    return s;
  } catch (const FeatureFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  }
}

FeatureSet extract_features(Model& base, BatchSource& data, int batch_size, const Context& ctx,
                            const std::function<void(size_t, size_t)>& on_batch) {
  require_built(base, "extract_features");
  const size_t N = data.size();
  if (N == 0) throw std::invalid_argument("no examples to extract features from");
  FeatureSet s;
  s.feature_shape = base.output_shape();
  s.features = Tensor(s.feature_shape.batched(static_cast<int>(N)));
  const size_t D = s.feature_shape.numel();
  const size_t B = static_cast<size_t>(std::max(1, batch_size));
  Context ic = ctx;
  ic.training = false;
  Rng rng(0);
  Tensor x, y;
  for (size_t b = 0; b < N; b += B) {
    const size_t e = std::min(N, b + B);
    std::vector<size_t> idx(e - b);
    std::iota(idx.begin(), idx.end(), b);
    data.fill(idx, x, y, rng, false);
    const Tensor& out = base.forward(x, ic);
    std::memcpy(s.features.data() + b * D, out.data(), out.size() * sizeof(float));
    const int F = static_cast<int>(y.size() / idx.size());
    if (b == 0) s.targets = Tensor(Shape{static_cast<int>(N), F});
    std::memcpy(s.targets.data() + b * size_t(F), y.data(), y.size() * sizeof(float));
    if (on_batch) on_batch(e, N);
  }
  return s;
}

void FeatureSource::fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng&, bool) {
  const int B = static_cast<int>(indices.size());
  const size_t D = set_.feature_shape.numel();
  const size_t F = static_cast<size_t>(set_.outputs());
  x.resize(set_.feature_shape.batched(B));
  y.resize({B, static_cast<int>(F)});
  for (int b = 0; b < B; ++b) {
    const size_t i = indices[b];
    if (i >= set_.size()) throw std::out_of_range("feature index out of range");
    std::memcpy(x.data() + b * D, set_.features.data() + i * D, D * sizeof(float));
    std::memcpy(y.data() + b * F, set_.targets.data() + i * F, F * sizeof(float));
  }
}

}  // namespace tagnet
