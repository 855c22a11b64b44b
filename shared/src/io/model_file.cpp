// The model file: see the format in tagnet/nn/model.h.
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <utility>
#include <unistd.h>

#include "tagnet/nn/architectures.h"
#include "tagnet/nn/model.h"

#include "file_io.h"
#include "json_number.h"

namespace tagnet {

namespace {

constexpr char kMagic[8] = {'T', 'A', 'G', 'N', 'E', 'T', '\0', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kAlign = kContainerAlign;

// `tagnet classify` and the module read one probability per label name: a model's outputs, or
// two for a logit head (the logit's probability and its complement). More names than that
// would be read past the probabilities. Fewer are valid: a base cut from a classifier keeps
// the classifier's metadata.
template <typename Fail>
void check_labels(const Model& m, const Fail& fail) {
  const auto& labels = m.card().labels;
  const size_t outputs = m.output_shape().numel();
  const size_t most = model_head(m) == Head::kLogit ? std::max<size_t>(outputs, 2) : outputs;
  if (labels.size() > most)
    throw fail(std::to_string(labels.size()) + " label names for " + std::to_string(outputs) + " model outputs");
}

struct TensorEntry {
  std::string name;
  const float* data;
  Shape shape;
};

}  // namespace

std::vector<uint8_t> Model::save_bytes(Optimizer* opt) const {
  if (!built_) throw std::logic_error("cannot save a model that is not built");
  std::vector<TensorEntry> tensors;
  nlohmann::json layers = nlohmann::json::array();
  for (auto& l : layers_) {
    layers.push_back({{"type", l->type()}, {"name", l->name}, {"config", l->config()},
                      {"trainable", l->trainable}});
    for (auto& p : std::as_const(*l).params())
      tensors.push_back({l->name + "/" + p.name, p.value.data(), p.shape});
  }
  nlohmann::json header = {{"format", "tagnet"},
                           {"architecture", {{"input_shape", input_shape_.dims()}, {"layers", layers}}},
                           {"metadata", card_.to_json()}};
  if (opt) {
    header["optimizer"] = {{"type", opt->type()}, {"config", opt->config()}};
    for (auto& [sname, buf] : opt->state()) {
      if (buf->size() != params_.size()) continue;   // never stepped: nothing to keep
      // Stored per parameter, so a file's optimizer state is independent of arena padding.
      for (auto& l : layers_)
        for (auto& p : std::as_const(*l).params())
          tensors.push_back({"optimizer/" + sname + "/" + l->name + "/" + p.name,
                             buf->data() + (p.value.data() - params_.data()), p.shape});
    }
  }
  nlohmann::json table = nlohmann::json::array();
  size_t off = 0;
  for (auto& t : tensors) {
    table.push_back({{"name", t.name}, {"dtype", "f32"}, {"shape", t.shape.dims()}, {"offset", off}});
    off = round_up(off + t.shape.numel() * sizeof(float), kAlign);
  }
  header["tensors"] = table;
  const std::string json = header.dump();
  size_t data_start = 0;
  std::vector<uint8_t> out = container_begin(kMagic, json, off, data_start);
  size_t i = 0;
  for (auto& t : tensors) {
    const size_t o = table[i++]["offset"].get<size_t>();
    // Little-endian hosts only (x86, ARM, WASM), so float bytes are written as they are.
    std::memcpy(out.data() + data_start + o, t.data, t.shape.numel() * sizeof(float));
  }
  container_seal(out, kVersion, json.size(), data_start);
  return out;
}

void Model::save(const std::string& path, Optimizer* opt) const {
  const std::vector<uint8_t> bytes = save_bytes(opt);
  write_file_atomic(path, bytes);
}

Model Model::load(const std::string& path, std::unique_ptr<Optimizer>* opt) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_file(path, bytes, error)) throw ModelFileError(path + ": " + error);
  return load_bytes(bytes.data(), bytes.size(), path, opt);
}

Model Model::load_bytes(const uint8_t* data, size_t size, const std::string& origin,
                        std::unique_ptr<Optimizer>* opt) {
  auto fail = [&](const std::string& what) -> ModelFileError {
    return ModelFileError(origin + ": " + one_line(what));
  };
  if (size < kContainerHeader)
    throw fail("not a tagnet model (" + std::to_string(size) + " bytes, shorter than the header)");
  if (std::memcmp(data, kMagic, 8) != 0) throw fail("not a tagnet model (wrong magic bytes)");
  ContainerView view{};
  const std::string problem = container_check(data, size, kVersion, "model file", "tensor data", view);
  if (!problem.empty()) throw fail(problem);
  const uint64_t data_bytes = view.data_bytes;
  const size_t data_start = static_cast<size_t>(view.data - data);

  try {
    nlohmann::json h;
    const std::string deep = container_json(view, h);
    if (!deep.empty()) throw fail(deep);
    if (h.value("format", "") != "tagnet") throw fail("header is not a tagnet header");
    const auto& arch = h.at("architecture");
    Model m{Shape(json_dims(arch.at("input_shape"), "input_shape", 3, 1 << 16))};
    std::set<std::string> names;
    for (auto& lj : arch.at("layers")) {
      auto layer = Layer::from_config(lj.at("type").get<std::string>(), lj.at("config"));
      layer->name = lj.at("name").get<std::string>();
      if (!names.insert(layer->name).second) throw fail("duplicate layer name '" + layer->name + "'");
      layer->trainable = lj.value("trainable", true);
      m.add(std::move(layer));
    }

    std::map<std::string, const nlohmann::json*> table;
    for (auto& t : h.at("tensors"))
      if (!table.emplace(t.at("name").get<std::string>(), &t).second)
        throw fail("tensor '" + t.at("name").get<std::string>() + "' is listed twice");
    // Where a tensor's bytes are, once its entry matches the shape the model expects and lies
    // within the data section.
    auto locate = [&](const std::string& name, const Shape& shape) -> const uint8_t* {
      auto it = table.find(name);
      if (it == table.end()) throw fail("tensor '" + name + "' is missing");
      const auto& t = *it->second;
      if (t.at("dtype").get<std::string>() != "f32")
        throw fail("tensor '" + name + "' has unsupported dtype " + t.at("dtype").dump());
      const Shape s(json_dims(t.at("shape"), "tensor '" + name + "' shape", 8, INT32_MAX));
      if (s != shape)
        throw fail("tensor '" + name + "' has shape " + s.str() + ", expected " + shape.str());
      const uint64_t off = json_integer(t.at("offset"), "tensor '" + name + "' offset", 0, int64_t(1) << 53);
      if (off % kAlign != 0 || off > data_bytes || shape.numel() > (data_bytes - off) / sizeof(float))
        throw fail("tensor '" + name + "' lies outside the data section (offset " + std::to_string(off) + ")");
      return data + data_start + off;
    };
    // A few hundred bytes of header can describe gigabytes of weights: every parameter is
    // found in the data section, and all of them fit there side by side, before the model
    // allocates any.
    m.setup_layers();
    std::vector<const uint8_t*> sources;
    uint64_t floats = 0;
    for (auto& l : m.layers_)
      for (auto& p : std::as_const(*l).params()) {
        sources.push_back(locate(l->name + "/" + p.name, p.shape));
        floats += p.shape.numel();  // each at most data_bytes / 4: no overflow
        if (floats > data_bytes / sizeof(float))
          throw fail("the parameters take more than the " + std::to_string(data_bytes) +
                     " bytes of the data section");
      }
    m.build(0);
    size_t k = 0;
    for (auto& l : m.layers_)
      for (auto& p : l->params()) {
        std::memcpy(p.value.data(), sources[k++], p.value.size() * sizeof(float));
        // A NaN or infinite weight would make every answer NaN: no model holds one.
        const float* v = p.value.data();
        for (size_t i = 0; i < p.value.size(); ++i)
          if (!std::isfinite(v[i]))
            throw fail("tensor '" + l->name + "/" + p.name + "' holds " + std::to_string(v[i]) + " at index " +
                       std::to_string(i));
      }
    // The card's keys of another JSON type, or values tagnet cannot read, are refused here, with
    // the file's name, rather than wherever a key is read.
    if (h.contains("metadata")) {
      try {
        m.card_ = ModelCard::from_json(h.at("metadata"));
      } catch (const std::invalid_argument& e) {
        throw fail(e.what());
      }
    }
    check_labels(m, fail);

    if (opt) {
      opt->reset();
      if (h.contains("optimizer")) {
        const auto& oj = h.at("optimizer");
        *opt = Optimizer::from_config(oj.at("type").get<std::string>(), oj.at("config"));
        for (auto& [sname, buf] : (*opt)->state()) {
          const std::string prefix = "optimizer/" + sname + "/";
          const auto it = table.lower_bound(prefix);
          if (it == table.end() || it->first.compare(0, prefix.size(), prefix) != 0) continue;
          buf->assign(m.params_.size(), 0.f);
          for (auto& l : m.layers_)
            for (auto& p : l->params())
              std::memcpy(buf->data() + (p.value.data() - m.params_.data()),
                          locate(prefix + l->name + "/" + p.name, p.shape), p.value.size() * sizeof(float));
        }
      }
    }
    return m;
  } catch (const ModelFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw fail(std::string("bad header: ") + e.what());
  }
}

}  // namespace tagnet
