// Layers: each owns its parameters (views into the model's arena) and calls ops.
//
// The layer contract:
//   setup(in)        sizes the parameters for a per-sample input shape, (H, W, C) or (F,),
//                    and returns the per-sample output shape. Called once, by Model::build.
//   forward(x, y)    x is (N, ...in), y is resized to (N, ...out). In training it caches what
//                    backward needs (BN statistics, dropout mask).
//   backward(x, y, dy, dx)
//                    x, y are the tensors of the last forward. OVERWRITES *dx (sized like x)
//                    with d(loss)/dx when dx is not null, and, when ctx.param_grads is set and
//                    the layer is trainable, the gradients of its trainable parameters.
//
// Parameters are written through params() (non-const), which is what tells the backend that
// the weights it cached for the forward pass (packed, transformed) are stale.
//
//   auto conv = std::make_unique<tagnet::Conv2D>(16, 2, 1, tagnet::Padding::kSame,
//                                                tagnet::Activation::kRelu);
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/kernels/engine.h"
#include "tagnet/kernels/tensor.h"
#include "tagnet/nn/context.h"

namespace tagnet {

namespace kern {
struct Exec;
struct OpState;
}

enum class Padding { kValid, kSame };
enum class Activation { kNone, kRelu };

enum class Init { kZeros, kOnes, kGlorotUniform };

// What a layer is. Rules that look at a model's structure (where the head starts, what the
// last convolutional block is) compare kinds, never names.
enum class LayerKind {
  kConv2D, kDense, kBatchNorm, kReLU, kSigmoid, kSoftmax, kMaxPool2D, kGlobalAvgPool2D,
  kDropout, kFlatten,
};
// Keras' class name of a kind ("Conv2D", "BatchNormalization"), as stored in model files.
std::string layer_kind_name(LayerKind kind);
// The kind of a Keras class name; throws std::invalid_argument for an unknown one.
LayerKind layer_kind_from_name(const std::string& name);

struct Param {
  std::string name;      // "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"
  Shape shape;
  bool trainable;        // false for BatchNorm's moving statistics
  Init init;
  int fan_in = 0, fan_out = 0;
  Tensor value;          // view into the model's parameter arena
  Tensor grad;           // view into the gradient arena (trainable parameters only)
};

struct BackwardContext : Context {
  bool param_grads = true;   // compute parameter gradients of trainable layers
  // Set by Model for a ReLU output followed by MaxPool2D or BatchNorm: that layer's input
  // gradient carries the ReLU's gate (relu_input), so the layer below skips its own pass
  // (relu_gated_dy).
  bool relu_input = false;
  bool relu_gated_dy = false;
};

class Layer {
 public:
  Layer();
  virtual ~Layer();

  virtual LayerKind kind() const = 0;
  std::string type() const { return layer_kind_name(kind()); }   // Keras class name: "Conv2D"
  virtual nlohmann::json config() const { return nlohmann::json::object(); }
  // The output is a ReLU's (a ReLU layer, or a fused ReLU activation).
  virtual bool relu_output() const { return false; }
  // Can apply a ReLU that follows it while storing its output (see Model::forward).
  virtual bool can_fuse_relu() const { return false; }
  virtual Shape setup(const Shape& in) = 0;
  virtual void forward(const Tensor& x, Tensor& y, const Context& ctx) = 0;
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                        const BackwardContext& ctx) = 0;

  // Write access: the next forward rebuilds whatever the backend cached from the parameters.
  // Take it again for writes that follow a forward pass.
  std::vector<Param>& params() {
    ++param_writes_;
    return params_;
  }
  const std::vector<Param>& params() const { return params_; }
  size_t param_count(bool trainable_only) const;

  std::string name;
  bool trainable = true;
  Shape input_shape, output_shape;   // per sample, set by Model::build

  // Builds a layer from its type() and config(), as stored in a model file.
  static std::unique_ptr<Layer> from_config(const std::string& type, const nlohmann::json& cfg);

 protected:
  Param& add_param(const std::string& name, const Shape& shape, bool trainable, Init init,
                   int fan_in = 0, int fan_out = 0);
  // What the kernels run with; its parameter version changes with ctx.param_version and
  // with every write access to this layer's parameters.
  kern::Exec exec(const Context& ctx) const;
  std::unique_ptr<kern::OpState> op_state_;   // backend's cached operator (forward)
  std::vector<Param> params_;
  // Set by Model when it is built: also apply the ReLU that follows (can_fuse_relu()).
  bool relu_fused_ = false;

 private:
  friend class Model;   // clears frozen layers' gradients without write access to the values
  uint64_t param_writes_ = 0;   // write accesses handed out by params()
};

class Conv2D : public Layer {
 public:
  Conv2D(int filters, int kernel, int stride = 1, Padding padding = Padding::kValid,
         Activation activation = Activation::kNone, bool use_bias = true);
  LayerKind kind() const override { return LayerKind::kConv2D; }
  nlohmann::json config() const override;
  bool relu_output() const override { return activation_ == Activation::kRelu; }
  bool can_fuse_relu() const override { return activation_ == Activation::kNone; }
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;

 private:
  int filters_, kernel_, stride_;
  Padding padding_;
  Activation activation_;
  bool use_bias_;
  int pt_ = 0, pl_ = 0, pb_ = 0, pr_ = 0;
  Tensor dy_masked_;   // (N, OH, OW, K) dy gated by the fused ReLU
};

class Dense : public Layer {
 public:
  Dense(int units, Activation activation = Activation::kNone, bool use_bias = true);
  LayerKind kind() const override { return LayerKind::kDense; }
  nlohmann::json config() const override;
  bool relu_output() const override { return activation_ == Activation::kRelu; }
  bool can_fuse_relu() const override { return activation_ == Activation::kNone; }
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;

 private:
  int units_;
  Activation activation_;
  bool use_bias_;
  Tensor dy_masked_;   // (N, O)
};

// Keras defaults: momentum 0.99, epsilon 1e-3. Normalises the last axis.
class BatchNorm : public Layer {
 public:
  explicit BatchNorm(float momentum = 0.99f, float epsilon = 1e-3f);
  LayerKind kind() const override { return LayerKind::kBatchNorm; }
  nlohmann::json config() const override;
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;

  // Population statistics (Model::add_batchnorm_sums): adds the row count of the last training
  // forward and, per channel, the sum and sum of squares of its inputs to sums[0, 1 + 2C).
  void add_batch_sums(double* sums) const;
  // Makes the mean and unbiased variance of such sums the moving statistics.
  void set_statistics(const double* sums);

 private:
  // Synchronised over processes (Context::sums): plain loops, the statistics summed in double.
  void forward_synced(const Tensor& x, Tensor& y, const Context& ctx);
  void backward_synced(const Tensor& x, const Tensor& dy, Tensor* dx, const BackwardContext& ctx);

  float momentum_, epsilon_;
  Tensor mean_, invstd_;   // (C,) batch statistics of the last training forward
  double rows_ = 0;        // rows behind them (of every process, when synchronised)
  Tensor dgamma_scratch_, dbeta_scratch_;   // (C,) for frozen layers that still pass dx
};

class ReLU : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kReLU; }
  bool relu_output() const override { return true; }
  Shape setup(const Shape& in) override { return in; }
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
};

class Sigmoid : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kSigmoid; }
  Shape setup(const Shape& in) override { return in; }
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
};

// Over the last axis.
class Softmax : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kSoftmax; }
  Shape setup(const Shape& in) override { return in; }
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
};

class MaxPool2D : public Layer {
 public:
  explicit MaxPool2D(int pool, int stride = 0);   // stride 0: same as pool (Keras default)
  LayerKind kind() const override { return LayerKind::kMaxPool2D; }
  nlohmann::json config() const override;
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;

 private:
  int pool_, stride_;
};

class GlobalAvgPool2D : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kGlobalAvgPool2D; }
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
};

// Inverted dropout: scales kept units by 1/(1-rate) in training, identity at inference.
class Dropout : public Layer {
 public:
  explicit Dropout(float rate);
  LayerKind kind() const override { return LayerKind::kDropout; }
  nlohmann::json config() const override;
  Shape setup(const Shape& in) override { return in; }
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
  // The mask of the last training forward: 0 or 1/(1-rate) per element.
  const Tensor& mask() const { return mask_; }
  void set_mask(const Tensor& mask) { mask_ = mask; fixed_mask_ = true; }  // for tests

 private:
  float rate_;
  Tensor mask_;
  bool fixed_mask_ = false;
};

class Flatten : public Layer {
 public:
  LayerKind kind() const override { return LayerKind::kFlatten; }
  Shape setup(const Shape& in) override;
  void forward(const Tensor& x, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                const BackwardContext& ctx) override;
};

}  // namespace tagnet
