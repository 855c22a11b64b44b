// A Sequential model: owns its layers, one parameter arena, and the model file format.
//
//   tagnet::Engine engine;
//   tagnet::Model m({56, 56, 1});
//   m.add(std::make_unique<tagnet::Conv2D>(16, 2, 1, tagnet::Padding::kSame,
//                                          tagnet::Activation::kRelu));
//   m.add(std::make_unique<tagnet::Flatten>());
//   m.add(std::make_unique<tagnet::Dense>(10));
//   m.add(std::make_unique<tagnet::Softmax>());
//   m.build(/*seed=*/42);
//   tagnet::Adam adam;
//   tagnet::Rng rng(1);
//   float loss = m.train_step(x, y, tagnet::LossKind::kCategoricalCrossentropy, adam,
//                             {&engine, true, &rng});
//   m.save("fashion.tagnet");                  // atomic: temp file + rename
//   tagnet::Model again = tagnet::Model::load("fashion.tagnet");
//
// Model file (version 1), all integers little-endian:
//   "TAGNET\0\0"  magic (8 bytes)
//   u32 version, u32 header_crc32 (of the JSON), u64 json_bytes, u64 data_bytes, u32 data_crc32,
//   u32 reserved; then the JSON header, zero padding to a multiple of 32, then the data section.
//   The JSON holds the architecture (input shape, layers with type/name/config/trainable),
//   the model card as "metadata" (labels, preprocessing, ...: tagnet/nn/card.h), and a tensor table of
//   {name, dtype ("f32"), shape, offset} with every offset 32-byte aligned in the data section.
//   Optimizer state is optional ("optimizer" in the JSON, tensors "optimizer/<state>").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/kernels/tensor.h"
#include "tagnet/nn/card.h"
#include "tagnet/nn/layers.h"
#include "tagnet/nn/loss.h"
#include "tagnet/nn/optim.h"

namespace tagnet {

// A model file that could not be read: says which file and what was wrong.
class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Model {
 public:
  explicit Model(const Shape& input_shape);   // per sample: (H, W, C)
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // Names the layer like Keras ("conv2d", "conv2d_1", ...) when it has no name.
  // Adding to a built model makes it unbuilt until the next build().
  Layer& add(std::unique_ptr<Layer> layer);
  // Removes layers [n, end): cutting a model to reuse its base. Makes it unbuilt.
  void truncate(size_t n);
  // The most floats the layers' outputs for one picture may take, the input included (1 GB; a
  // SmallerVGGNet at 1024 x 1024 takes 0.73 GB): a model file of a few hundred bytes could
  // otherwise ask inference for any amount. Larger models are refused when built or loaded.
  static constexpr uint64_t kMaxPictureFloats = uint64_t(1) << 28;
  // The largest height and width of a picture input (rank 3): tagnet's networks take 8 to 1024.
  static constexpr int kMaxPictureSide = 1024;

  // Sizes every layer, allocates the arena and initialises it (Glorot uniform, seeded).
  // Layers that were already built keep their parameter values (head replacement).
  void build(uint64_t seed = 0);
  bool built() const { return built_; }

  const Shape& input_shape() const { return input_shape_; }
  Shape output_shape() const;
  size_t num_layers() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_[i]; }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  size_t param_count() const;
  size_t trainable_param_count() const;

  // Runs every layer; returns the output (N, ...). Keeps the activations for backward.
  const Tensor& forward(const Tensor& x, const Context& ctx);
  // Forward in training mode, the fused loss, backward: fills the gradient arena and
  // returns the loss. `predictions`, when given, receives the model's output.
  float compute_gradients(const Tensor& x, const Tensor& targets, LossKind loss,
                          const Context& ctx, Tensor* predictions = nullptr);
  // Called during compute_gradients whenever the gradients [from, arena_size()) are final:
  // after each layer's backward (layers run last to first, so `from` only goes down) and with 0
  // at the end. Lets gradients travel to other processes while backward is still running.
  void on_gradients_ready(std::function<void(size_t from)> hook) { gradients_ready_ = std::move(hook); }
  // compute_gradients + optimizer step.
  float train_step(const Tensor& x, const Tensor& targets, LossKind loss, Optimizer& opt,
                   const Context& ctx, Tensor* predictions = nullptr);
  // The loss of the model's current output for evaluation (no backward).
  float evaluate_loss(const Tensor& x, const Tensor& targets, LossKind loss, const Context& ctx,
                      Tensor* predictions = nullptr);

  // Population statistics for the trainable BatchNorm layers, as Trainer sets them at each
  // epoch's end. Their moving averages trail the weights by some hundred steps, and under Adam
  // the weights move far in that time: these describe the layers' inputs under the current
  // weights. add_batchnorm_sums runs x through the model as training does but with Dropout off
  // (as inference does) and adds, for every trainable BatchNorm in turn, its row count and per
  // channel the sum and sum of squares of its inputs to `sums` (batchnorm_sums_size() values,
  // the same layout on every process, so sums add across processes). It leaves the moving
  // statistics undefined until set_batchnorm_statistics makes the sums' mean and unbiased
  // variance the moving statistics. A model without trainable BatchNorm has a size of 0.
  size_t batchnorm_sums_size() const;
  void add_batchnorm_sums(const Tensor& x, const Context& ctx, std::vector<double>& sums);
  void set_batchnorm_statistics(const std::vector<double>& sums);

  // The output of layer i from the last forward, (N, ...).
  const Tensor& activation(size_t i) const { return acts_.at(i); }

  // Marks layers [0, n) not trainable and the rest trainable.
  void freeze_below(size_t n);

  // Every parameter, arena_size() floats. Write access (non-const), like Layer::params(), makes
  // the next forward rebuild the weights the backend cached; an optimizer step takes it.
  float* param_arena() {
    ++param_version_;
    return params_.data();
  }
  const float* param_arena() const { return params_.data(); }
  const float* grad_arena() const { return grads_.data(); }
  float* grad_arena() { return grads_.data(); }
  size_t arena_size() const { return params_.size(); }

  // What the outputs mean and how the model came to be, saved with it.
  ModelCard& card() { return card_; }
  const ModelCard& card() const { return card_; }

  // A table like Keras' model.summary().
  std::string summary() const;

  // Optional optimizer state is saved with the model when given.
  void save(const std::string& path, Optimizer* opt = nullptr) const;
  std::vector<uint8_t> save_bytes(Optimizer* opt = nullptr) const;
  // Throws ModelFileError naming `origin` (a path, or "model bytes") and the problem.
  static Model load(const std::string& path, std::unique_ptr<Optimizer>* opt = nullptr);
  static Model load_bytes(const uint8_t* data, size_t size, const std::string& origin,
                          std::unique_ptr<Optimizer>* opt = nullptr);

 private:
  // The logits feeding a fused loss: the input of the final Sigmoid/Softmax when the loss
  // expects one, else the output. Returns the index of the first layer not run backward.
  size_t loss_head(LossKind loss) const;
  // forward(), where `batch_statistics` makes the trainable BatchNorm layers normalise with
  // their batch's statistics (and keep them) while the rest runs as ctx says.
  const Tensor& run_forward(const Tensor& x, const Context& ctx, bool batch_statistics);
  // Where each layer's output goes, decided once when the model is built (as XNNPACK's
  // subgraph fuses its nodes), so that no pass over memory only copies or gates: a ReLU after a
  // layer that can fuse it runs in that layer's store (the layer's relu_fused_) and its own
  // output is a view of its input, and so is, in inference, the output of Dropout and Flatten.
  // activation(i) of a fusing layer then holds the ReLU's output too; the ReLU's backward pass
  // reads the same values.
  enum class Store : uint8_t { kOwn, kInput, kInputInInference };
  void plan_stores();
  // Sets up every layer in turn (shapes and parameter shapes, no parameter memory): the first
  // half of build(), which the model file reader also runs to check sizes before allocating.
  void setup_layers();
  // forward, then the fused loss of the output (and its gradient at the logits, when asked).
  float forward_loss(const Tensor& x, const Tensor& targets, LossKind loss, const Context& ctx,
                     Tensor* predictions, Tensor* dlogits);

  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::map<LayerKind, int> kind_counts_;   // layers of each kind: the next one's Keras name
  std::vector<Tensor> acts_;     // acts_[i] is the output of layer i, (N, ...)
  std::vector<Tensor> grads_act_;
  std::vector<Store> stores_;    // per layer, from plan_stores()
  Tensor input_;                 // view of the last forward's input
  FloatBuffer params_, grads_;
  uint64_t param_version_ = 1;   // bumped by build() and by write access to the arena
  ModelCard card_;
  bool built_ = false;
  std::function<void(size_t)> gradients_ready_;
};

}  // namespace tagnet
