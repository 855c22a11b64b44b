#include "tagnet/nn/layers.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "json_number.h"
#include "kernels.h"
#include "thread_pool.h"

namespace tagnet {

namespace {

const kern::Backend& be(const Context& ctx) { return ctx.engine->backend(); }

kern::Act act_of(Activation a) { return a == Activation::kRelu ? kern::Act::kRelu : kern::Act::kNone; }

const char* padding_name(Padding p) { return p == Padding::kSame ? "same" : "valid"; }
Padding padding_from(const std::string& s) {
  if (s == "same") return Padding::kSame;
  if (s == "valid") return Padding::kValid;
  throw std::invalid_argument("unknown padding '" + s + "'");
}
const char* activation_name(Activation a) { return a == Activation::kRelu ? "relu" : "linear"; }
Activation activation_from(const std::string& s) {
  if (s == "relu") return Activation::kRelu;
  if (s == "linear") return Activation::kNone;
  throw std::invalid_argument("unknown activation '" + s + "'");
}

// A size a layer derives from its input and configuration, refused when it leaves int (which
// the kernels take) rather than wrapped.
int derived_size(int64_t v, const Layer& l, const char* what) {
  if (v < 1 || v > INT32_MAX)
    throw std::invalid_argument(l.name + ": " + what + " " + std::to_string(v) + " out of range");
  return static_cast<int>(v);
}

void expect_input(const Layer& l, const Tensor& x) {
  if (x.rank() != l.input_shape.rank() + 1 ||
      !std::equal(l.input_shape.dims().begin(), l.input_shape.dims().end(),
                  x.shape().dims().begin() + 1))
    throw std::invalid_argument(l.name + ": expected input " +
                                l.input_shape.batched(x.rank() ? x.dim(0) : 0).str() + ", got " +
                                x.shape().str());
}

// dy gated by a fused ReLU: the backward of y = relu(z) seen from z.
const Tensor& gate_relu(Activation a, const Tensor& y, const Tensor& dy, Tensor& scratch,
                        const Context& ctx, const kern::Exec& e) {
  if (a != Activation::kRelu) return dy;
  scratch.resize(dy.shape());
  be(ctx).relu_backward(dy.size(), y.data(), dy.data(), scratch.data(), e);
  return scratch;
}

}  // namespace

Layer::Layer() = default;
Layer::~Layer() = default;

kern::Exec Layer::exec(const Context& ctx) const {
  if (!ctx.engine) throw std::logic_error("layer called without an engine in its context");
  // Both counts only grow, so the sum changes whenever either does.
  return kern::Exec{&ctx.engine->pool(), ctx.param_version + param_writes_, ctx.training};
}

size_t Layer::param_count(bool trainable_only) const {
  size_t n = 0;
  for (auto& p : params_)
    if (!trainable_only || p.trainable) n += p.shape.numel();
  return n;
}

Param& Layer::add_param(const std::string& pname, const Shape& shape, bool ptrainable, Init init,
                        int fan_in, int fan_out) {
  params_.push_back(Param{pname, shape, ptrainable, init, fan_in, fan_out, Tensor(), Tensor()});
  return params_.back();
}

// ---- Conv2D ----

Conv2D::Conv2D(int filters, int kernel, int stride, Padding padding, Activation activation,
               bool use_bias)
    : filters_(filters), kernel_(kernel), stride_(stride), padding_(padding),
      activation_(activation), use_bias_(use_bias) {
  if (filters <= 0 || kernel <= 0 || stride <= 0)
    throw std::invalid_argument("Conv2D: filters, kernel size and stride must be positive");
}

nlohmann::json Conv2D::config() const {
  return {{"filters", filters_}, {"kernel_size", kernel_},   {"strides", stride_},
          {"padding", padding_name(padding_)}, {"activation", activation_name(activation_)},
          {"use_bias", use_bias_}};
}

Shape Conv2D::setup(const Shape& in) {
  if (in.rank() != 3) throw std::invalid_argument(name + ": needs (H, W, C) input, got " + in.str());
  const int H = in[0], W = in[1], C = in[2];
  int OH, OW;
  if (padding_ == Padding::kSame) {
    // Keras/TensorFlow: the odd padding row/column goes to the bottom/right.
    OH = (H + stride_ - 1) / stride_;
    OW = (W + stride_ - 1) / stride_;
    const int ph = std::max(0, (OH - 1) * stride_ + kernel_ - H);
    const int pw = std::max(0, (OW - 1) * stride_ + kernel_ - W);
    pt_ = ph / 2, pb_ = ph - pt_, pl_ = pw / 2, pr_ = pw - pl_;
  } else {
    if (H < kernel_ || W < kernel_)
      throw std::invalid_argument(name + ": input " + in.str() + " smaller than kernel");
    OH = (H - kernel_) / stride_ + 1;
    OW = (W - kernel_) / stride_ + 1;
  }
  const int64_t window = int64_t(kernel_) * kernel_;
  const int R = derived_size(window * C, *this, "kernel size x channels");
  add_param("kernel", {filters_, kernel_, kernel_, C}, true, Init::kGlorotUniform, R,
            derived_size(window * filters_, *this, "kernel size x filters"));
  if (use_bias_) add_param("bias", {filters_}, true, Init::kZeros);
  return {OH, OW, filters_};
}

static kern::ConvDims conv_dims(int N, const Shape& in, const Shape& out, int k, int s, int pt,
                                int pl, int pb, int pr) {
  return kern::ConvDims{N, in[0], in[1], in[2], out[2], k, k, s, s, pt, pl, pb, pr, out[0], out[1]};
}

void Conv2D::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  const int N = x.dim(0);
  y.resize(output_shape.batched(N));
  const auto d = conv_dims(N, input_shape, output_shape, kernel_, stride_, pt_, pl_, pb_, pr_);
  be(ctx).conv2d_forward(d, x.data(), params_[0].value.data(),
                         use_bias_ ? params_[1].value.data() : nullptr,
                         relu_fused_ ? kern::Act::kRelu : act_of(activation_),
                         y.data(), op_state_, exec(ctx));
}

void Conv2D::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                      const BackwardContext& ctx) {
  const int N = x.dim(0);
  const auto d = conv_dims(N, input_shape, output_shape, kernel_, stride_, pt_, pl_, pb_, pr_);
  const auto e = exec(ctx);
  const Tensor& g = ctx.relu_gated_dy ? dy : gate_relu(activation_, y, dy, dy_masked_, ctx, e);
  if (trainable && ctx.param_grads)
    be(ctx).conv2d_backward_filter(d, x.data(), g.data(), params_[0].grad.data(),
                                   use_bias_ ? params_[1].grad.data() : nullptr, e);
  if (dx) be(ctx).conv2d_backward_data(d, g.data(), params_[0].value.data(), dx->data(), e);
}

// ---- Dense ----

Dense::Dense(int units, Activation activation, bool use_bias)
    : units_(units), activation_(activation), use_bias_(use_bias) {
  if (units <= 0) throw std::invalid_argument("Dense: units must be positive");
}

nlohmann::json Dense::config() const {
  return {{"units", units_}, {"activation", activation_name(activation_)}, {"use_bias", use_bias_}};
}

Shape Dense::setup(const Shape& in) {
  if (in.rank() != 1) throw std::invalid_argument(name + ": needs flat (F,) input, got " + in.str());
  add_param("kernel", {units_, in[0]}, true, Init::kGlorotUniform, in[0], units_);
  if (use_bias_) add_param("bias", {units_}, true, Init::kZeros);
  return {units_};
}

void Dense::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  const int N = x.dim(0);
  y.resize({N, units_});
  be(ctx).dense_forward(N, input_shape[0], units_, x.data(), params_[0].value.data(),
                        use_bias_ ? params_[1].value.data() : nullptr,
                        relu_fused_ ? kern::Act::kRelu : act_of(activation_),
                        y.data(), op_state_, exec(ctx));
}

void Dense::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                     const BackwardContext& ctx) {
  const int N = x.dim(0), I = input_shape[0];
  const auto e = exec(ctx);
  const Tensor& g = ctx.relu_gated_dy ? dy : gate_relu(activation_, y, dy, dy_masked_, ctx, e);
  if (trainable && ctx.param_grads)
    be(ctx).dense_backward_filter(N, I, units_, x.data(), g.data(), params_[0].grad.data(),
                                  use_bias_ ? params_[1].grad.data() : nullptr, e);
  if (dx) be(ctx).dense_backward_data(N, I, units_, g.data(), params_[0].value.data(), dx->data(), e);
}

// ---- BatchNorm ----

BatchNorm::BatchNorm(float momentum, float epsilon) : momentum_(momentum), epsilon_(epsilon) {
  if (!(momentum >= 0.f && momentum <= 1.f)) throw std::invalid_argument("BatchNorm: momentum must be in [0, 1]");
  // A float that is not finite would be saved as JSON null: the file would not load again.
  if (!(epsilon > 0.f && std::isfinite(epsilon))) throw std::invalid_argument("BatchNorm: epsilon must be positive and finite");
}

nlohmann::json BatchNorm::config() const {
  return {{"momentum", momentum_}, {"epsilon", epsilon_}};
}

Shape BatchNorm::setup(const Shape& in) {
  const int C = in[in.rank() - 1];
  add_param("gamma", {C}, true, Init::kOnes);
  add_param("beta", {C}, true, Init::kZeros);
  add_param("moving_mean", {C}, false, Init::kZeros);
  add_param("moving_variance", {C}, false, Init::kOnes);
  mean_ = Tensor({C});
  invstd_ = Tensor({C});
  return in;
}

void BatchNorm::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  y.resize(x.shape());
  const int C = input_shape[input_shape.rank() - 1];
  const int M = static_cast<int>(x.size() / C);
  float* gamma = params_[0].value.data();
  float* beta = params_[1].value.data();
  float* mm = params_[2].value.data();
  float* mv = params_[3].value.data();
  // A frozen BatchNorm runs in inference mode, as Keras does for trainable=False.
  if (ctx.training && trainable && ctx.sums) {
    forward_synced(x, y, ctx);
  } else if (ctx.training && trainable) {
    be(ctx).batchnorm_forward_train(M, C, x.data(), gamma, beta, epsilon_, y.data(),
                                    mean_.data(), invstd_.data(), exec(ctx));
    rows_ = M;
    // Keras updates the moving variance with the unbiased batch variance.
    const float unbias = M > 1 ? static_cast<float>(M) / (M - 1) : 1.f;
    for (int c = 0; c < C; ++c) {
      const float var = 1.f / (invstd_.at(c) * invstd_.at(c)) - epsilon_;
      mm[c] = momentum_ * mm[c] + (1 - momentum_) * mean_.at(c);
      mv[c] = momentum_ * mv[c] + (1 - momentum_) * var * unbias;
    }
  } else {
    be(ctx).batchnorm_forward_infer(M, C, x.data(), gamma, beta, mm, mv, epsilon_, y.data(),
                                    exec(ctx));
  }
}

void BatchNorm::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                         const BackwardContext& ctx) {
  const int C = input_shape[input_shape.rank() - 1];
  const int M = static_cast<int>(x.size() / C);
  const float* gamma = params_[0].value.data();
  // relu_input: x is a ReLU's output, whose gate dx carries too (the ReLU then skips its pass).
  const auto gate = [&] {
    if (dx && ctx.relu_input)
      be(ctx).relu_backward(dx->size(), x.data(), dx->data(), dx->data(), exec(ctx));
  };
  if (!trainable) {
    // A frozen layer normalises in inference mode, with no parameter gradients.
    if (dx)
      be(ctx).batchnorm_backward_infer(M, C, dy.data(), gamma, params_[3].value.data(), epsilon_,
                                       dx->data(), exec(ctx));
    gate();
    return;
  }
  if (ctx.sums) {
    backward_synced(x, dy, dx, ctx);
    gate();
    return;
  }
  float* dgamma = params_[0].grad.data();
  float* dbeta = params_[1].grad.data();
  if (!ctx.param_grads) {
    dgamma_scratch_.resize({C});
    dbeta_scratch_.resize({C});
    dgamma = dgamma_scratch_.data();
    dbeta = dbeta_scratch_.data();
  }
  Tensor sink;
  float* dxp = dx ? dx->data() : nullptr;
  if (!dxp) {
    sink.resize(x.shape());
    dxp = sink.data();
  }
  be(ctx).batchnorm_backward(M, C, x.data(), dy.data(), gamma, mean_.data(), invstd_.data(), dxp,
                             dgamma, dbeta, dx && ctx.relu_input, exec(ctx));
}

void BatchNorm::add_batch_sums(double* s) const {
  const int C = input_shape[input_shape.rank() - 1];
  const double M = rows_;
  s[0] += M;
  for (int c = 0; c < C; ++c) {
    const double mean = mean_.at(c), is = invstd_.at(c);
    const double var = std::max(0.0, 1.0 / (is * is) - epsilon_);
    s[1 + c] += M * mean;
    s[1 + C + c] += M * (var + mean * mean);
  }
}

void BatchNorm::set_statistics(const double* s) {
  const int C = input_shape[input_shape.rank() - 1];
  const double M = s[0];
  if (M < 1) return;
  float* mm = params()[2].value.data();
  float* mv = params_[3].value.data();
  for (int c = 0; c < C; ++c) {
    const double mean = s[1 + c] / M;
    const double var = std::max(0.0, s[1 + C + c] / M - mean * mean);
    mm[c] = static_cast<float>(mean);
    mv[c] = static_cast<float>(M > 1 ? var * M / (M - 1) : var);
  }
}

void BatchNorm::forward_synced(const Tensor& x, Tensor& y, const Context& ctx) {
  const int C = input_shape[input_shape.rank() - 1];
  const size_t M = x.size() / C;
  // Per channel: sum and sum of squares over this process's rows; then the row count.
  std::vector<double> s(2 * size_t(C) + 1, 0.0);
  const float* xp = x.data();
  for (size_t m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c) {
      const double v = xp[m * C + c];
      s[c] += v;
      s[C + c] += v * v;
    }
  s[2 * size_t(C)] = static_cast<double>(M);
  ctx.sums->statistics(s.data(), s.size());
  rows_ = s[2 * size_t(C)];
  float* gamma = params_[0].value.data();
  float* beta = params_[1].value.data();
  float* mm = params_[2].value.data();
  float* mv = params_[3].value.data();
  const float unbias = rows_ > 1 ? static_cast<float>(rows_ / (rows_ - 1)) : 1.f;
  for (int c = 0; c < C; ++c) {
    const double mean = s[c] / rows_, var = std::max(0.0, s[C + c] / rows_ - mean * mean);
    mean_.at(c) = static_cast<float>(mean);
    invstd_.at(c) = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
    mm[c] = momentum_ * mm[c] + (1 - momentum_) * mean_.at(c);
    mv[c] = momentum_ * mv[c] + (1 - momentum_) * static_cast<float>(var) * unbias;
  }
  float* yp = y.data();
  for (size_t m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c)
      yp[m * C + c] = (xp[m * C + c] - mean_.at(c)) * invstd_.at(c) * gamma[c] + beta[c];
}

void BatchNorm::backward_synced(const Tensor& x, const Tensor& dy, Tensor* dx, const BackwardContext& ctx) {
  const int C = input_shape[input_shape.rank() - 1];
  const size_t M = x.size() / C;
  const float* xp = x.data();
  const float* g = dy.data();
  // Per channel: sum of dy and of dy * xhat; this process's are its gamma and beta gradients
  // (the gradient allreduce adds the others'), every process's shape dx.
  std::vector<double> s(2 * size_t(C), 0.0);
  for (size_t m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c) {
      const double xhat = (double(xp[m * C + c]) - mean_.at(c)) * invstd_.at(c);
      s[c] += g[m * C + c];
      s[C + c] += g[m * C + c] * xhat;
    }
  if (ctx.param_grads)
    for (int c = 0; c < C; ++c) {
      params_[1].grad.at(c) = static_cast<float>(s[c]);
      params_[0].grad.at(c) = static_cast<float>(s[C + c]);
    }
  ctx.sums->gradients(s.data(), s.size());
  if (!dx) return;
  const float* gamma = params_[0].value.data();
  float* d = dx->data();
  for (size_t m = 0; m < M; ++m)
    for (int c = 0; c < C; ++c) {
      const double xhat = (double(xp[m * C + c]) - mean_.at(c)) * invstd_.at(c);
      d[m * C + c] = static_cast<float>(gamma[c] * invstd_.at(c) *
                                         (g[m * C + c] - s[c] / rows_ - xhat * s[C + c] / rows_));
    }
}

// ---- activations ----

void ReLU::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  y.resize(x.shape());
  be(ctx).relu_forward(x.size(), x.data(), y.data(), op_state_, exec(ctx));
}
void ReLU::backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx,
                    const BackwardContext& ctx) {
  if (!dx) return;
  if (ctx.relu_gated_dy) be(ctx).identity_backward(dy.size(), dy.data(), dx->data(), exec(ctx));
  else be(ctx).relu_backward(dy.size(), y.data(), dy.data(), dx->data(), exec(ctx));
}

void Sigmoid::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  y.resize(x.shape());
  be(ctx).sigmoid_forward(x.size(), x.data(), y.data(), op_state_, exec(ctx));
}
void Sigmoid::backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx,
                       const BackwardContext& ctx) {
  if (dx) be(ctx).sigmoid_backward(dy.size(), y.data(), dy.data(), dx->data(), exec(ctx));
}

void Softmax::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  y.resize(x.shape());
  const int cols = x.dim(x.rank() - 1);
  be(ctx).softmax_forward(static_cast<int>(x.size() / cols), cols, x.data(), y.data(), op_state_,
                          exec(ctx));
}
void Softmax::backward(const Tensor&, const Tensor& y, const Tensor& dy, Tensor* dx,
                       const BackwardContext& ctx) {
  if (!dx) return;
  const int cols = y.dim(y.rank() - 1);
  be(ctx).softmax_backward(static_cast<int>(y.size() / cols), cols, y.data(), dy.data(), dx->data(),
                           exec(ctx));
}

// ---- pooling ----

MaxPool2D::MaxPool2D(int pool, int stride) : pool_(pool), stride_(stride ? stride : pool) {
  if (pool <= 0 || stride_ <= 0) throw std::invalid_argument("MaxPool2D: pool and stride must be positive");
}

nlohmann::json MaxPool2D::config() const { return {{"pool_size", pool_}, {"strides", stride_}}; }

Shape MaxPool2D::setup(const Shape& in) {
  if (in.rank() != 3) throw std::invalid_argument(name + ": needs (H, W, C) input, got " + in.str());
  if (in[0] < pool_ || in[1] < pool_)
    throw std::invalid_argument(name + ": input " + in.str() + " smaller than the pool");
  return {(in[0] - pool_) / stride_ + 1, (in[1] - pool_) / stride_ + 1, in[2]};
}

static kern::PoolDims pool_dims(int N, const Shape& in, const Shape& out, int p, int s) {
  return kern::PoolDims{N, in[0], in[1], in[2], p, p, s, s, out[0], out[1]};
}

void MaxPool2D::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  y.resize(output_shape.batched(x.dim(0)));
  be(ctx).maxpool_forward(pool_dims(x.dim(0), input_shape, output_shape, pool_, stride_), x.data(),
                          y.data(), op_state_, exec(ctx));
}

void MaxPool2D::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                         const BackwardContext& ctx) {
  if (!dx) return;
  kern::PoolDims d = pool_dims(x.dim(0), input_shape, output_shape, pool_, stride_);
  d.relu_input = ctx.relu_input;
  be(ctx).maxpool_backward(d, x.data(), y.data(), dy.data(), dx->data(), exec(ctx));
}

Shape GlobalAvgPool2D::setup(const Shape& in) {
  if (in.rank() != 3) throw std::invalid_argument(name + ": needs (H, W, C) input, got " + in.str());
  return {in[2]};
}

void GlobalAvgPool2D::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  const int C = input_shape[2];
  y.resize({x.dim(0), C});
  be(ctx).gap_forward(x.dim(0), input_shape[0] * input_shape[1], C, x.data(), y.data(), op_state_,
                      exec(ctx));
}

void GlobalAvgPool2D::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx,
                               const BackwardContext& ctx) {
  if (dx)
    be(ctx).gap_backward(x.dim(0), input_shape[0] * input_shape[1], input_shape[2], dy.data(),
                         dx->data(), exec(ctx));
}

// ---- Dropout ----

Dropout::Dropout(float rate) : rate_(rate) {
  if (!(rate >= 0.f && rate < 1.f)) throw std::invalid_argument("Dropout: rate must be in [0, 1)");
}

nlohmann::json Dropout::config() const { return {{"rate", rate_}}; }

void Dropout::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  y.resize(x.shape());
  if (!ctx.training || rate_ == 0.f) {
    be(ctx).identity_forward(x.size(), x.data(), y.data(), exec(ctx));
    return;
  }
  if (!fixed_mask_ || mask_.shape() != x.shape()) {
    if (!ctx.rng) throw std::logic_error(name + ": training needs a random generator");
    mask_.resize(x.shape());
    const float keep = 1.f / (1.f - rate_);
    // The mask is on the hot path of every training step: one draw from the model's generator
    // seeds a stream whose numbers are drawn in parallel, four 16-bit draws each, so the mask
    // is the same whatever the thread count.
    const uint32_t cut = static_cast<uint32_t>(std::lround(rate_ * 65536.f));
    const uint64_t seed = ctx.rng->next();
    float* m = mask_.data();
    const size_t n = mask_.size();
    uint32_t keep_bits;
    std::memcpy(&keep_bits, &keep, 4);
    exec(ctx).pool->run((n + 3) / 4, 4096, [&](size_t begin, size_t end) {
      uint32_t bits[4];
      for (size_t q = begin; q < end; ++q) {
        const uint64_t r = Rng::nth(seed, q);
        // Branch-free: a random mask mispredicts a branch on every fourth element.
        for (size_t k = 0; k < 4; ++k)
          bits[k] = keep_bits & (0u - static_cast<uint32_t>(((r >> (16 * k)) & 0xFFFF) >= cut));
        if (4 * q + 4 <= n) std::memcpy(m + 4 * q, bits, sizeof bits);
        else std::memcpy(m + 4 * q, bits, 4 * (n - 4 * q));
      }
    });
  }
  be(ctx).dropout_forward(x.size(), x.data(), mask_.data(), y.data(), exec(ctx));
}

void Dropout::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx,
                       const BackwardContext& ctx) {
  if (!dx) return;
  if (!ctx.training || rate_ == 0.f)
    be(ctx).identity_backward(dy.size(), dy.data(), dx->data(), exec(ctx));
  else
    be(ctx).dropout_backward(dy.size(), mask_.data(), dy.data(), dx->data(), exec(ctx));
}

// ---- Flatten ----

Shape Flatten::setup(const Shape& in) {
  int64_t n = 1;
  for (int d : in.dims()) n = std::min<int64_t>(n * d, int64_t(INT32_MAX) + 1);  // no overflow: d <= 2^31
  return {derived_size(n, *this, "flattened size")};
}

void Flatten::forward(const Tensor& x, Tensor& y, const Context& ctx) {
  expect_input(*this, x);
  y.resize(output_shape.batched(x.dim(0)));
  be(ctx).identity_forward(x.size(), x.data(), y.data(), exec(ctx));
}

void Flatten::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx,
                       const BackwardContext& ctx) {
  if (dx) be(ctx).identity_backward(dy.size(), dy.data(), dx->data(), exec(ctx));
}

// ---- factory ----

namespace {

struct KindName {
  LayerKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {LayerKind::kConv2D, "Conv2D"},
    {LayerKind::kDense, "Dense"},
    {LayerKind::kBatchNorm, "BatchNormalization"},
    {LayerKind::kReLU, "ReLU"},
    {LayerKind::kSigmoid, "Sigmoid"},
    {LayerKind::kSoftmax, "Softmax"},
    {LayerKind::kMaxPool2D, "MaxPooling2D"},
    {LayerKind::kGlobalAvgPool2D, "GlobalAveragePooling2D"},
    {LayerKind::kDropout, "Dropout"},
    {LayerKind::kFlatten, "Flatten"},
};

}  // namespace

std::string layer_kind_name(LayerKind kind) {
  for (const auto& k : kKindNames)
    if (k.kind == kind) return k.name;
  throw std::logic_error("layer kind without a name");
}

LayerKind layer_kind_from_name(const std::string& name) {
  for (const auto& k : kKindNames)
    if (name == k.name) return k.kind;
  throw std::invalid_argument("unknown layer type '" + name + "'");
}

std::unique_ptr<Layer> Layer::from_config(const std::string& type, const nlohmann::json& c) {
  // Sizes come from files: each is checked to be an integer in a range no real network leaves
  // (XNNPACK and the kernels take int dimensions), before a layer is made of it.
  constexpr int64_t kMaxUnits = 1 << 20, kMaxWindow = 1 << 16;
  switch (layer_kind_from_name(type)) {
    case LayerKind::kConv2D:
      return std::make_unique<Conv2D>(
          static_cast<int>(json_integer(c.at("filters"), "Conv2D filters", 1, kMaxUnits)),
          static_cast<int>(json_integer(c.at("kernel_size"), "Conv2D kernel_size", 1, kMaxWindow)),
          static_cast<int>(json_integer_or(c, "strides", 1, "Conv2D strides", 1, kMaxWindow)),
          padding_from(c.value("padding", "valid")), activation_from(c.value("activation", "linear")),
          c.value("use_bias", true));
    case LayerKind::kDense:
      return std::make_unique<Dense>(static_cast<int>(json_integer(c.at("units"), "Dense units", 1, kMaxUnits)),
                                     activation_from(c.value("activation", "linear")),
                                     c.value("use_bias", true));
    case LayerKind::kBatchNorm:
      return std::make_unique<BatchNorm>(c.value("momentum", 0.99f), c.value("epsilon", 1e-3f));
    case LayerKind::kReLU: return std::make_unique<ReLU>();
    case LayerKind::kSigmoid: return std::make_unique<Sigmoid>();
    case LayerKind::kSoftmax: return std::make_unique<Softmax>();
    case LayerKind::kMaxPool2D:
      return std::make_unique<MaxPool2D>(
          static_cast<int>(json_integer(c.at("pool_size"), "MaxPooling2D pool_size", 1, kMaxWindow)),
          static_cast<int>(json_integer_or(c, "strides", 0, "MaxPooling2D strides", 0, kMaxWindow)));
    case LayerKind::kGlobalAvgPool2D: return std::make_unique<GlobalAvgPool2D>();
    case LayerKind::kDropout: return std::make_unique<Dropout>(c.at("rate").get<float>());
    case LayerKind::kFlatten: return std::make_unique<Flatten>();
  }
  throw std::logic_error("layer kind without a factory");
}

}  // namespace tagnet
