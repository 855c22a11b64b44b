// Transfer learning: cut a trained network into a convolutional base and a classifier, cache
// the base's outputs ("bottleneck features") in a file, train a small top model on them, and
// join base and top again for fine-tuning.
//
//   tagnet::Model trained = tagnet::Model::load("fashion.tagnet");
//   const size_t n = tagnet::base_end(trained);            // first Flatten / GAP layer
//   tagnet::Model base = tagnet::slice_model(trained, 0, n);
//   tagnet::FeatureSet f = tagnet::extract_features(base, pictures, 32, ctx);
//   f.labels = {"coat", "pullover"};
//   f.base = tagnet::base_identity(trained, n);
//   f.save("train.features");                              // atomic: temp file + rename
//   tagnet::Model top = tagnet::make_top_model(f.feature_shape, 2, tagnet::Head::kSoftmax);
//   ... fit top on tagnet::FeatureSource(f) ...
//   tagnet::Model whole = tagnet::join_models(base, top); // pictures in, labels out
//
// Feature file (version 1), all integers little-endian, laid out like the model file:
//   "TAGFEAT\0"  magic (8 bytes)
//   u32 version, u32 header_crc32 (of the JSON), u64 json_bytes, u64 data_bytes, u32 data_crc32,
//   u32 reserved; then the JSON header, zero padding to a multiple of 32, then the data section.
//   The JSON holds {format: "tagnet-features", count, feature_shape, outputs, labels, head,
//   base, metadata, tensors}; the tensor table lists "features" (count, ...feature_shape) and
//   "targets" (count, outputs), f32, at 32-byte aligned offsets in the data section.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/train/finetune.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/train.h"

namespace tagnet {

// A feature file that could not be read: says which file and what was wrong.
class FeatureFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A built copy of layers [begin, end) with their names, trainable flags and weights; its input
// is the per-sample input of layer `begin`. The metadata is copied too.
Model slice_model(const Model& model, size_t begin, size_t end);

// One model running `base` and then `top` (whose input must be the base's output shape), with
// both models' weights and trainable flags; a top layer whose name the base already uses is
// renamed. The metadata is the top model's.
Model join_models(const Model& base, const Model& top);

// The top model of the bottleneck-features tutorial: [Flatten ->] Dense(hidden, relu) ->
// Dropout(dropout) -> Dense(outputs) -> softmax or sigmoid. Built from `seed`.
Model make_top_model(const Shape& feature_shape, int outputs, Head head, int hidden = 256,
                     float dropout = 0.5f, uint64_t seed = 0);

// What identifies the base made of layers [0, n) of `model`: {layers, input_shape,
// output_shape, architecture (types and configs), fingerprint}, the fingerprint being a hash of
// the architecture and every weight, so features, top model and base can be matched up later.
nlohmann::json base_identity(const Model& model, size_t n);

struct FeatureSet {
  Shape feature_shape;             // per example, e.g. (7, 7, 64)
  Tensor features;                 // (N, ...feature_shape)
  Tensor targets;                  // (N, F)
  std::vector<std::string> labels; // F names
  Head head = Head::kSoftmax;      // how targets are meant: one class, or a set of labels
  nlohmann::json base = nlohmann::json::object();       // base_identity of the extractor
  nlohmann::json metadata = nlohmann::json::object();   // dataset, preprocessing, ...

  size_t size() const { return features.empty() ? 0 : static_cast<size_t>(features.dim(0)); }
  int outputs() const { return targets.empty() ? 0 : targets.dim(1); }
  // The examples `indices`, in that order (train/validation splits).
  FeatureSet subset(const std::vector<size_t>& indices) const;

  void save(const std::string& path) const;
  std::vector<uint8_t> save_bytes() const;
  // Throw FeatureFileError naming `origin` and the problem.
  static FeatureSet load(const std::string& path);
  static FeatureSet load_bytes(const uint8_t* data, size_t size, const std::string& origin);
};

// Runs `base` in inference mode over every example of `data` in batches of `batch_size` and
// keeps its outputs and the examples' targets. `on_batch(done, total)` reports progress.
FeatureSet extract_features(Model& base, BatchSource& data, int batch_size, const Context& ctx,
                            const std::function<void(size_t, size_t)>& on_batch = nullptr);

// Cached features as training examples for a top model.
class FeatureSource : public BatchSource {
 public:
  explicit FeatureSource(const FeatureSet& set) : set_(set) {}
  size_t size() const override { return set_.size(); }
  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
            bool augment) override;

 private:
  const FeatureSet& set_;
};

}  // namespace tagnet
