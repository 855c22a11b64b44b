#include "tagnet/train/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "tagnet/train/metrics.h"

namespace tagnet {

namespace {

// FNV-1a over the parameters, the optimizer's state and its step count: equal on every process
// of a run that went right.
uint64_t fingerprint(const Model& model, Optimizer& opt) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&h](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  };
  add(model.param_arena(), model.arena_size() * sizeof(float));
  for (auto& [name, buf] : opt.state()) add(buf->data(), buf->size() * sizeof(float));
  add(&opt.iterations, sizeof opt.iterations);
  return h;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Examples [begin, end) of another source: one process's part of a validation set.
class Part : public BatchSource {
 public:
  Part(BatchSource& whole, size_t begin, size_t end) : whole_(whole), begin_(begin), end_(end) {}
  size_t size() const override { return end_ - begin_; }
  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng, bool augment) override {
    std::vector<size_t> shifted(indices);
    for (size_t& i : shifted) i += begin_;
    whole_.fill(shifted, x, y, rng, augment);
  }

 private:
  BatchSource& whole_;
  size_t begin_, end_;
};

}  // namespace

void count_correct(LossKind loss, const Tensor& p, const Tensor& t, double& correct,
                   double& total) {
  const int N = p.dim(0);
  const int F = static_cast<int>(p.size() / N);
  if (loss == LossKind::kCategoricalCrossentropy) {
    for (int n = 0; n < N; ++n) {
      const float* pr = p.data() + size_t(n) * F;
      const float* tr = t.data() + size_t(n) * F;
      correct += std::max_element(pr, pr + F) - pr == std::max_element(tr, tr + F) - tr;
    }
    total += N;
    return;
  }
  const float cut = loss == LossKind::kBinaryCrossentropy ? 0.5f : 0.f;
  for (size_t i = 0; i < p.size(); ++i) correct += (p.at(i) > cut) == (t.at(i) > 0.5f);
  total += static_cast<double>(p.size());
}

Trainer::Trainer(Model& model, BatchSource& train, Optimizer& opt, LossKind loss, const TrainOptions& o,
                 const Context& ctx)
    : model_(model), train_(train), opt_(opt), loss_(loss), options_(o), ctx_(ctx), rng_(o.seed) {
  if (o.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  if (o.epochs < 0) throw std::invalid_argument("epochs must not be negative");
  ctx_.training = true;
  ctx_.rng = &rng_;
}

void Trainer::set_collective(Collective* c) {
  // One process trains as without a collective, drawing from the one generator.
  collective_ = c && c->size() > 1 ? c : nullptr;
  local_rng_ = Rng(options_.seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(c ? c->rank() + 1 : 0)));
  ctx_.rng = collective_ ? &local_rng_ : &rng_;
  batch_sums_.collective = collective_;
  ctx_.sums = collective_ && options_.sync_batchnorm ? &batch_sums_ : nullptr;
}

void Trainer::BatchSums::gradients(double* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] *= share;
  collective->sum(v, n);
  for (size_t i = 0; i < n; ++i) v[i] /= share;
}

void Trainer::set_validation(BatchSource* val, int batch_size) {
  val_ = val;
  val_batch_ = batch_size;
}

const Progress& Trainer::step() {
  const size_t B = static_cast<size_t>(options_.batch_size);
  if (step_ == 0) {
    // The examples are counted at each epoch's start: a source may grow between epochs. Each
    // epoch shuffles the order of the one before.
    if (train_.size() == 0) throw std::invalid_argument("no training examples");
    if (order_.size() != train_.size()) {
      order_.resize(train_.size());
      std::iota(order_.begin(), order_.end(), size_t(0));
    }
    rng_.shuffle(order_);
    if (ctx_.sums) {
      const size_t N = static_cast<size_t>(collective_->size()), last = order_.size() % B;
      if (B < N || (last > 0 && last < N))
        throw std::invalid_argument("synchronised BatchNorm needs an example for each of the " + std::to_string(N) +
                                    " processes in every batch; batches of " + std::to_string(B) + " of " +
                                    std::to_string(order_.size()) + " examples leave " +
                                    std::to_string(B < N ? B : last) + " in one");
    }
    loss_sum_ = correct_ = total_ = 0;
    seen_ = 0;
    epoch_start_ = now_seconds();
  }
  const size_t steps = (order_.size() + B - 1) / B;
  const size_t b = step_ * B, e = std::min(order_.size(), b + B);
  batch_.assign(order_.begin() + b, order_.begin() + e);
  float l;
  try {
    if (collective_) {
      l = step_together(batch_.size());
    } else {
      train_.fill(batch_, x_, y_, rng_, options_.augment);
      l = model_.compute_gradients(x_, y_, loss_, ctx_, &pred_);
      loss_sum_ += double(l) * batch_.size();
      seen_ += batch_.size();
      count_correct(loss_, pred_, y_, correct_, total_);
    }
  } catch (const NonFiniteLoss& e) {
    throw NonFiniteLoss("in epoch " + std::to_string(epoch_) + ", batch " + std::to_string(step_ + 1) + ": " + e.what());
  }
  if (gradient_hook_) gradient_hook_(model_);
  opt_.step(model_, *ctx_.engine);
  ++step_;
  last_ = Progress{};
  last_.epoch = epoch_;
  last_.epochs = options_.epochs;
  last_.step = step_;
  last_.steps = steps;
  last_.batch_loss = l;
  last_.batch_examples = batch_.size();
  last_.loss = loss_sum_ / double(seen_);
  last_.accuracy = total_ ? correct_ / total_ : 0;
  if (step_ == steps) {
    last_.epoch_end = true;
    // Population statistics are the same on every process; moving averages are not.
    if (!set_population_statistics() && collective_) average_moving_statistics();
    if (val_ && val_->size()) {
      last_.val = collective_ ? evaluate_together()
                              : evaluate(model_, *val_, loss_, val_batch_ > 0 ? val_batch_ : options_.batch_size, ctx_);
      last_.has_val = true;
      // Diverged weights: stop before anything saves them.
      if (!std::isfinite(last_.val.loss))
        throw NonFiniteLoss("at the end of epoch " + std::to_string(epoch_) + ": the validation loss is not finite (" +
                            std::to_string(last_.val.loss) + ")");
    }
    last_.seconds = now_seconds() - epoch_start_;
    if (epoch_ <= options_.epochs) history_.push_back(last_);
    ++epoch_;
    step_ = 0;
  }
  return last_;
}

float Trainer::step_together(size_t global) {
  const size_t N = static_cast<size_t>(collective_->size()), r = static_cast<size_t>(collective_->rank());
  const std::vector<size_t> mine(batch_.begin() + global * r / N, batch_.begin() + global * (r + 1) / N);
  batch_sums_.share = double(mine.size()) / double(global);
  collective_->start_gradients(model_, static_cast<float>(batch_sums_.share));
  // Summed over the processes: loss x examples, examples, correct, scored, stop asked, non-finite.
  double v[6] = {0, double(mine.size()), 0, 0, stop_ && stop_->load() ? 1. : 0., 0};
  std::string non_finite;
  bool computed = false;
  if (!mine.empty()) {
    train_.fill(mine, x_, y_, local_rng_, options_.augment);
    model_.on_gradients_ready([this](size_t from) { collective_->gradients_ready(from); });
    try {
      v[0] = double(model_.compute_gradients(x_, y_, loss_, ctx_, &pred_)) * double(mine.size());
      count_correct(loss_, pred_, y_, v[2], v[3]);
      computed = true;
    } catch (const NonFiniteLoss& e) {
      // Every process stops on it, after this step's collective calls.
      non_finite = e.what();
      v[5] = 1;
    }
    model_.on_gradients_ready(nullptr);
  }
  if (!computed) {
    std::fill(model_.grad_arena(), model_.grad_arena() + model_.arena_size(), 0.f);
    collective_->gradients_ready(0);
  }
  collective_->finish_gradients();
  collective_->sum(v, 6);
  if (v[5] > 0) throw NonFiniteLoss(non_finite.empty() ? "the loss is not finite on another process" : non_finite);
  stop_agreed_ = v[4] > 0;
  loss_sum_ += v[0];
  seen_ += global;
  correct_ += v[2];
  total_ += v[3];
  return static_cast<float>(v[0] / double(global));
}

Metrics Trainer::evaluate_together() {
  const size_t n = val_->size(), N = static_cast<size_t>(collective_->size());
  const size_t r = static_cast<size_t>(collective_->rank());
  Part part(*val_, n * r / N, n * (r + 1) / N);
  const Metrics m = evaluate(model_, part, loss_, val_batch_ > 0 ? val_batch_ : options_.batch_size, ctx_);
  // Accuracy counts examples or labels per example: either way in proportion to the examples.
  double v[3] = {m.loss * double(m.examples), m.accuracy * double(m.examples), double(m.examples)};
  collective_->sum(v, 3);
  Metrics all;
  all.loss = v[0] / v[2];
  all.accuracy = v[1] / v[2];
  all.examples = static_cast<size_t>(v[2]);
  return all;
}

bool Trainer::set_population_statistics() {
  const size_t n = std::min(order_.size(), size_t(std::max(0, options_.batchnorm_examples)));
  const size_t size = model_.batchnorm_sums_size();
  if (n == 0 || size == 0) return false;
  const size_t B = static_cast<size_t>(options_.batch_size);
  const size_t N = collective_ ? static_cast<size_t>(collective_->size()) : 1;
  const size_t r = collective_ ? static_cast<size_t>(collective_->rank()) : 0;
  std::vector<double> sums(size, 0.0);
  Rng unused(0);   // unaugmented: nothing is drawn
  // Together, each process takes every N-th batch and the sums are added over the processes.
  for (size_t b = r * B; b < n; b += N * B) {
    std::vector<size_t> idx(order_.begin() + b, order_.begin() + std::min(n, b + B));
    train_.fill(idx, x_, y_, unused, false);
    model_.add_batchnorm_sums(x_, ctx_, sums);
  }
  if (collective_) collective_->sum(sums.data(), sums.size());
  model_.set_batchnorm_statistics(sums);
  return true;
}

void Trainer::check_replicas() {
  if (collective_ && !collective_->same(fingerprint(model_, opt_)))
    throw std::runtime_error("the processes' models or optimizer states differ after " +
                             std::to_string(opt_.iterations) + " steps (mixed tagnet builds or backends?)");
}

void Trainer::average_moving_statistics() {
  // Each process's moving averages follow its own slices; their mean is the moving average of
  // the mean statistics (the update is linear), and averaging twice changes nothing.
  std::vector<double> v;
  for (size_t i = 0; i < model_.num_layers(); ++i)
    for (const Param& p : std::as_const(model_.layer(i)).params())
      if (!p.trainable) v.insert(v.end(), p.value.data(), p.value.data() + p.value.size());
  if (v.empty()) return;
  collective_->sum(v.data(), v.size());
  const double N = collective_->size();
  size_t k = 0;
  for (size_t i = 0; i < model_.num_layers(); ++i)
    for (Param& p : model_.layer(i).params())
      if (!p.trainable)
        for (size_t j = 0; j < p.value.size(); ++j) p.value.at(j) = static_cast<float>(v[k++] / N);
}

const std::vector<Progress>& Trainer::run(const Callbacks& cb) {
  stop_ = cb.stop;
  stop_agreed_ = false;
  while (!done()) {
    // Together, every process stops after the same batch: the one where any was asked to.
    if (collective_ ? stop_agreed_ : cb.stop && cb.stop->load()) break;
    const Progress& p = step();
    if (cb.on_progress) cb.on_progress(p);
    if (!p.epoch_end || !cb.on_checkpoint || cb.checkpoint == Checkpoint::kNone) continue;
    const double s = p.has_val ? p.val.loss : p.loss;
    if (cb.checkpoint == Checkpoint::kLast) {
      check_replicas();
      cb.on_checkpoint(p);
    } else if (!saved_best_ || s < best_) {
      best_ = s;
      saved_best_ = true;
      check_replicas();
      cb.on_checkpoint(p);
    }
  }
  // Stopped within an epoch: the model handed back gets the statistics of its weights too.
  const bool population = step_ > 0 && set_population_statistics();
  if (collective_) {
    if (!population) average_moving_statistics();
    check_replicas();
  }
  return history_;
}

std::vector<Progress> fit(Model& model, BatchSource& train, BatchSource* val, Optimizer& opt,
                          LossKind loss, const FitOptions& o, const Context& ctx,
                          const std::function<void(const Progress&)>& on_progress) {
  if (train.size() == 0) throw std::invalid_argument("no training examples");
  Trainer t(model, train, opt, loss, o, ctx);
  t.set_validation(val);
  Trainer::Callbacks cb;
  cb.on_progress = on_progress;
  cb.stop = o.stop;
  return t.run(cb);
}

Metrics evaluate(Model& model, BatchSource& data, LossKind loss, int batch_size,
                 const Context& ctx, Tensor* all_pred, Tensor* all_targets) {
  Metrics m;
  if (data.size() == 0) return m;
  Rng rng(0);
  Context ic = ctx;
  ic.training = false;
  Tensor x, y, pred;
  double loss_sum = 0, correct = 0, total = 0;
  const size_t B = static_cast<size_t>(std::max(1, batch_size));
  for (size_t b = 0; b < data.size(); b += B) {
    const size_t e = std::min(data.size(), b + B);
    std::vector<size_t> idx(e - b);
    std::iota(idx.begin(), idx.end(), b);
    data.fill(idx, x, y, rng, false);
    loss_sum += double(model.evaluate_loss(x, y, loss, ic, &pred)) * idx.size();
    count_correct(loss, pred, y, correct, total);
    if (all_pred) {
      const size_t F = pred.size() / idx.size();
      if (b == 0) all_pred->resize({static_cast<int>(data.size()), static_cast<int>(F)});
      std::memcpy(all_pred->data() + b * F, pred.data(), pred.size() * sizeof(float));
    }
    if (all_targets) {
      const size_t F = y.size() / idx.size();
      if (b == 0) all_targets->resize({static_cast<int>(data.size()), static_cast<int>(F)});
      std::memcpy(all_targets->data() + b * F, y.data(), y.size() * sizeof(float));
    }
  }
  m.examples = data.size();
  m.loss = loss_sum / data.size();
  m.accuracy = total ? correct / total : 0;
  return m;
}

Scores score(Model& model, BatchSource& data, Head head, const std::vector<std::string>& labels,
             const Context& ctx, int batch_size) {
  Tensor probs, targets;
  const Metrics m = evaluate(model, data, loss_for(head), batch_size, ctx, &probs, &targets);
  Scores s;
  if (head == Head::kSigmoid) {
    const auto ml = multilabel_metrics(probs, targets, labels);
    s.json = ml.to_json();
    s.table = ml.to_table();
    s.headline = ml.exact_match;
  } else {
    if (head == Head::kLogit) {
      // One logit becomes two class probabilities.
      Tensor p2({probs.dim(0), 2}), t2({probs.dim(0), 2});
      for (int n = 0; n < probs.dim(0); ++n) {
        const float p = 1.f / (1.f + std::exp(-probs.at(n)));
        p2.at(size_t(n) * 2) = 1 - p, p2.at(size_t(n) * 2 + 1) = p;
        t2.at(size_t(n) * 2) = 1 - targets.at(n), t2.at(size_t(n) * 2 + 1) = targets.at(n);
      }
      probs = p2, targets = t2;
    }
    const auto mc = multiclass_metrics(probs, targets, labels);
    s.json = mc.to_json();
    s.table = mc.to_table();
    s.headline = mc.accuracy;
  }
  s.json["loss"] = m.loss;
  s.json["examples"] = m.examples;
  return s;
}

nlohmann::json history_json(const std::vector<Progress>& h) {
  nlohmann::json a = nlohmann::json::array();
  for (const Progress& p : h) {
    nlohmann::json e = {{"epoch", p.epoch}, {"loss", p.loss}, {"accuracy", p.accuracy}};
    if (p.has_val) {
      e["val_loss"] = p.val.loss;
      e["val_accuracy"] = p.val.accuracy;
    }
    e["seconds"] = p.seconds;
    a.push_back(e);
  }
  return a;
}

nlohmann::json continued_history(const nlohmann::json& earlier, const nlohmann::json& fresh) {
  nlohmann::json all = earlier;
  for (nlohmann::json e : fresh) {
    e["epoch"] = all.size() + 1;
    all.push_back(std::move(e));
  }
  return all;
}

}  // namespace tagnet
