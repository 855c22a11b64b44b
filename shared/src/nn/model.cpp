#include "tagnet/nn/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "round_up.h"

namespace tagnet {

namespace {

// Keras' default layer names: "conv2d", "max_pooling2d", "batch_normalization", ...
std::string keras_base_name(const std::string& type) {
  std::string s;
  for (size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    const bool upper = c >= 'A' && c <= 'Z';
    if (upper && i > 0 && !(type[i - 1] >= 'A' && type[i - 1] <= 'Z') &&
        !(type[i - 1] >= '0' && type[i - 1] <= '9'))
      s += '_';
    s += upper ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return s;
}

}  // namespace

Model::Model(const Shape& input_shape) : input_shape_(input_shape) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Layer& Model::add(std::unique_ptr<Layer> layer) {
  built_ = false;
  int& count = kind_counts_[layer->kind()];
  if (layer->name.empty()) {
    const std::string base = keras_base_name(layer->type());
    layer->name = count ? base + "_" + std::to_string(count) : base;
  }
  ++count;
  layers_.push_back(std::move(layer));
  return *layers_.back();
}

void Model::truncate(size_t n) {
  if (n == 0 || n > layers_.size())
    throw std::out_of_range("cannot cut a model of " + std::to_string(layers_.size()) +
                            " layers at layer " + std::to_string(n));
  layers_.resize(n);
  kind_counts_.clear();
  for (const auto& l : layers_) ++kind_counts_[l->kind()];
  built_ = false;
}

void Model::build(uint64_t seed) {
  // Values of layers built before, restored after the arena is reallocated.
  std::vector<std::vector<std::vector<float>>> kept(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i)
    for (auto& p : layers_[i]->params())
      if (p.value.data()) kept[i].emplace_back(p.value.data(), p.value.data() + p.value.size());
  setup_layers();
  size_t total = 0;
  // Each tensor starts on a 64-byte boundary in the arena.
  for (auto& l : layers_)
    for (auto& p : l->params()) total += round_up(p.shape.numel(), 16);
  // 16 spare floats: XNNPACK may read up to 16 bytes past the last weight tensor.
  params_.assign(total + 16, 0.f);
  grads_.assign(total + 16, 0.f);
  Rng rng(seed);
  size_t off = 0;
  for (auto& l : layers_) {
    for (auto& p : l->params()) {
      p.value = Tensor::view(params_.data() + off, p.shape);
      p.grad = Tensor::view(grads_.data() + off, p.shape);
      switch (p.init) {
        case Init::kZeros: p.value.fill(0.f); break;
        case Init::kOnes: p.value.fill(1.f); break;
        case Init::kGlorotUniform: {
          const float limit = std::sqrt(6.f / static_cast<float>(p.fan_in + p.fan_out));
          for (size_t i = 0; i < p.value.size(); ++i) p.value.at(i) = rng.uniform(-limit, limit);
          break;
        }
      }
      off += round_up(p.shape.numel(), 16);
    }
  }
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& ps = layers_[i]->params();
    if (kept[i].size() != ps.size()) continue;
    for (size_t j = 0; j < ps.size(); ++j)
      if (kept[i][j].size() == ps[j].value.size())
        std::copy(kept[i][j].begin(), kept[i][j].end(), ps[j].value.data());
  }
  acts_.resize(layers_.size());
  grads_act_.resize(layers_.size());
  plan_stores();
  built_ = true;
  ++param_version_;
}

void Model::setup_layers() {
  if (layers_.empty()) throw std::invalid_argument("model has no layers");
  if (input_shape_.rank() == 3 && (input_shape_[0] > kMaxPictureSide || input_shape_[1] > kMaxPictureSide))
    throw std::invalid_argument("input " + input_shape_.str() + " is more than tagnet's " +
                                std::to_string(kMaxPictureSide) + " pixels per side");
  Shape s = input_shape_;
  uint64_t floats = s.numel();
  for (auto& l : layers_) {
    l->input_shape = s;
    l->params().clear();
    s = l->setup(s);
    l->output_shape = s;
    floats += s.numel();
    if (floats > kMaxPictureFloats)
      throw std::invalid_argument("one " + input_shape_.str() + " picture would take more than " +
                                  std::to_string(kMaxPictureFloats * sizeof(float) >> 20) +
                                  " MB of layer outputs (at " + l->name + ")");
  }
}

Shape Model::output_shape() const {
  if (!built_) throw std::logic_error("model not built");
  return layers_.back()->output_shape;
}

size_t Model::param_count() const {
  size_t n = 0;
  for (auto& l : layers_) n += l->param_count(false);
  return n;
}

size_t Model::trainable_param_count() const {
  size_t n = 0;
  for (auto& l : layers_)
    if (l->trainable) n += l->param_count(true);
  return n;
}

const Tensor& Model::forward(const Tensor& x, const Context& ctx) {
  return run_forward(x, ctx, false);
}

namespace {
// The values a trainable BatchNorm adds to the population sums: its rows, then C sums and C
// sums of squares; 0 for every other layer.
size_t batchnorm_sums_of(const Layer& l) {
  if (l.kind() != LayerKind::kBatchNorm || !l.trainable) return 0;
  return 1 + 2 * size_t(l.input_shape[l.input_shape.rank() - 1]);
}
}  // namespace

size_t Model::batchnorm_sums_size() const {
  size_t n = 0;
  for (const auto& l : layers_) n += batchnorm_sums_of(*l);
  return n;
}

void Model::add_batchnorm_sums(const Tensor& x, const Context& ctx, std::vector<double>& sums) {
  if (sums.size() != batchnorm_sums_size())
    throw std::invalid_argument("BatchNorm sums: expected " + std::to_string(batchnorm_sums_size()) +
                                " values, got " + std::to_string(sums.size()));
  Context c = ctx;
  c.training = false;
  run_forward(x, c, true);
  size_t at = 0;
  for (const auto& l : layers_)
    if (const size_t n = batchnorm_sums_of(*l)) {
      static_cast<const BatchNorm&>(*l).add_batch_sums(sums.data() + at);
      at += n;
    }
}

void Model::set_batchnorm_statistics(const std::vector<double>& sums) {
  if (sums.size() != batchnorm_sums_size())
    throw std::invalid_argument("BatchNorm sums: expected " + std::to_string(batchnorm_sums_size()) +
                                " values, got " + std::to_string(sums.size()));
  size_t at = 0;
  for (auto& l : layers_)
    if (const size_t n = batchnorm_sums_of(*l)) {
      static_cast<BatchNorm&>(*l).set_statistics(sums.data() + at);
      at += n;
    }
  ++param_version_;
}

const Tensor& Model::run_forward(const Tensor& x, const Context& ctx, bool batch_statistics) {
  if (!built_) throw std::logic_error("model not built");
  if (x.rank() != input_shape_.rank() + 1 || x.shape() != input_shape_.batched(x.dim(0)))
    throw std::invalid_argument("model input: expected " + input_shape_.batched(x.rank() ? x.dim(0) : 0).str() +
                                ", got " + x.shape().str());
  if (x.dim(0) == 0) throw std::invalid_argument("model input: empty batch");
  input_ = Tensor::view(const_cast<float*>(x.data()), x.shape());
  Context c = ctx;
  c.param_version = param_version_;
  const Tensor* in = &input_;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = *layers_[i];
    const LayerKind kind = l.kind();
    if (stores_[i] == Store::kInput || (stores_[i] == Store::kInputInInference && !c.training)) {
      acts_[i] = Tensor::view(const_cast<float*>(in->data()), l.output_shape.batched(x.dim(0)));
    } else {
      if (acts_[i].is_view()) acts_[i] = Tensor();   // own memory again: layers write into it
      if (batch_statistics && kind == LayerKind::kBatchNorm && l.trainable) {
        Context bc = c;
        bc.training = true;
        bc.sums = nullptr;   // each process its own batch
        l.forward(*in, acts_[i], bc);
      } else {
        l.forward(*in, acts_[i], c);
      }
    }
    in = &acts_[i];
  }
  return acts_.back();
}

void Model::plan_stores() {
  stores_.assign(layers_.size(), Store::kOwn);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = *layers_[i];
    const LayerKind kind = l.kind();
    if (kind == LayerKind::kDropout || kind == LayerKind::kFlatten) stores_[i] = Store::kInputInInference;
    l.relu_fused_ = stores_[i] == Store::kOwn && i + 1 < layers_.size() &&
                    layers_[i + 1]->kind() == LayerKind::kReLU && l.can_fuse_relu();
    if (l.relu_fused_) stores_[++i] = Store::kInput;
  }
}

size_t Model::loss_head(LossKind loss) const {
  const LayerKind last = layers_.back()->kind();
  if (loss == LossKind::kBinaryCrossentropyFromLogits) {
    if (last == LayerKind::kSigmoid || last == LayerKind::kSoftmax)
      throw std::invalid_argument("binary_crossentropy_from_logits needs a model ending in logits, not " +
                                  layer_kind_name(last));
    return layers_.size();
  }
  const LayerKind want = loss == LossKind::kBinaryCrossentropy ? LayerKind::kSigmoid : LayerKind::kSoftmax;
  if (last != want)
    throw std::invalid_argument(loss_name(loss) + " needs a model ending in " + layer_kind_name(want) + ", not " +
                                layer_kind_name(last));
  return layers_.size() - 1;
}

float Model::compute_gradients(const Tensor& x, const Tensor& targets, LossKind loss,
                               const Context& ctx, Tensor* predictions) {
  Context fc = ctx;
  fc.training = true;
  const size_t head = loss_head(loss);
  Tensor dlogits;
  const float value = forward_loss(x, targets, loss, fc, predictions, &dlogits);
  if (!std::isfinite(value)) throw NonFiniteLoss("the loss is not finite (" + std::to_string(value) + ")");

  // Layers below the lowest trainable one need no input gradient.
  size_t lowest = layers_.size();
  for (size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i]->trainable && layers_[i]->param_count(true) > 0) { lowest = i; break; }

  BackwardContext bc;
  static_cast<Context&>(bc) = fc;
  bc.param_version = param_version_;
  bc.param_grads = true;
  for (auto& l : layers_)
    if (!l->trainable)
      for (auto& p : l->params_)
        if (p.trainable) p.grad.zero();
  if (head == 0) {
    if (gradients_ready_) gradients_ready_(0);
    return value;
  }
  grads_act_[head - 1].resize(acts_[head - 1].shape());
  std::copy(dlogits.data(), dlogits.data() + dlogits.size(), grads_act_[head - 1].data());
  // A MaxPool2D or BatchNorm whose input is a ReLU's output gates its input gradient with that
  // ReLU (relu_input); the layer below then skips its own gate (relu_gated_dy), and a ReLU
  // layer hands its dy on as its dx, a view.
  bool gated = false;   // the layer above gated this layer's dy with its ReLU
  for (size_t i = head; i-- > 0;) {
    if (i < lowest) break;
    const LayerKind kind = layers_[i]->kind();
    Tensor* dx = nullptr;
    if (i > 0 && i > lowest) {
      if (kind == LayerKind::kReLU && gated) {
        grads_act_[i - 1] = Tensor::view(grads_act_[i].data(), acts_[i - 1].shape());
        gated = false;
        continue;
      }
      if (grads_act_[i - 1].is_view()) grads_act_[i - 1] = Tensor();
      grads_act_[i - 1].resize(acts_[i - 1].shape());
      dx = &grads_act_[i - 1];
    }
    const Tensor& xin = i == 0 ? input_ : acts_[i - 1];
    bc.relu_gated_dy = gated;
    bc.relu_input = dx && (kind == LayerKind::kMaxPool2D || kind == LayerKind::kBatchNorm) &&
                    layers_[i - 1]->relu_output();
    gated = bc.relu_input;
    layers_[i]->backward(xin, acts_[i], grads_act_[i], dx, bc);
    if (gradients_ready_ && !layers_[i]->params_.empty())
      gradients_ready_(static_cast<size_t>(layers_[i]->params_.front().grad.data() - grads_.data()));
  }
  if (gradients_ready_) gradients_ready_(0);
  return value;
}

float Model::train_step(const Tensor& x, const Tensor& targets, LossKind loss, Optimizer& opt,
                        const Context& ctx, Tensor* predictions) {
  const float value = compute_gradients(x, targets, loss, ctx, predictions);
  opt.step(*this, *ctx.engine);
  return value;
}

float Model::evaluate_loss(const Tensor& x, const Tensor& targets, LossKind loss,
                           const Context& ctx, Tensor* predictions) {
  Context ic = ctx;
  ic.training = false;
  return forward_loss(x, targets, loss, ic, predictions, nullptr);
}

float Model::forward_loss(const Tensor& x, const Tensor& targets, LossKind loss, const Context& ctx,
                          Tensor* predictions, Tensor* dlogits) {
  forward(x, ctx);
  if (predictions) *predictions = acts_.back();
  const size_t head = loss_head(loss);
  const Tensor& logits = head == 0 ? input_ : acts_[head - 1];
  return loss_forward_backward(
      loss, logits.reshaped({logits.dim(0), static_cast<int>(logits.size() / logits.dim(0))}),
      targets, dlogits);
}

void Model::freeze_below(size_t n) {
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->trainable = i >= n;
}

std::string Model::summary() const {
  std::ostringstream os;
  char line[160];
  const char* rule = "_________________________________________________________________\n";
  const char* dbl = "=================================================================\n";
  os << "Model: \"sequential\"\n" << rule;
  std::snprintf(line, sizeof line, " %-28s %-25s %-10s\n", "Layer (type)", "Output Shape", "Param #");
  os << line << dbl;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = *layers_[i];
    const std::string lt = l.name + " (" + l.type() + ")";
    std::string shape = "(None";
    for (int d : l.output_shape.dims()) shape += ", " + std::to_string(d);
    shape += ")";
    std::snprintf(line, sizeof line, " %-28s %-25s %-10zu\n", lt.c_str(), shape.c_str(),
                  l.param_count(false));
    os << line << (i + 1 < layers_.size() ? "\n" : "");
  }
  auto grouped = [](size_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
  };
  const size_t total = param_count();
  size_t trainable = 0;
  for (auto& l : layers_)
    if (l->trainable) trainable += l->param_count(true);
  os << dbl << "Total params: " << grouped(total) << "\n"
     << "Trainable params: " << grouped(trainable) << "\n"
     << "Non-trainable params: " << grouped(total - trainable) << "\n"
     << rule;
  return os.str();
}

}  // namespace tagnet
