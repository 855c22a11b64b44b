#include "tagnet/train.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>

namespace tagnet {

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

std::vector<Progress> fit(Model& model, BatchSource& train, BatchSource* val, Optimizer& opt,
                          LossKind loss, const FitOptions& o, const Context& ctx,
                          const std::function<void(const Progress&)>& on_progress) {
  if (train.size() == 0) throw std::invalid_argument("no training examples");
  if (o.batch_size < 1) throw std::invalid_argument("batch size must be at least 1");
  Rng rng(o.seed);
  Context tc = ctx;
  tc.training = true;
  tc.rng = &rng;
  std::vector<size_t> order(train.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<Progress> history;
  Tensor x, y, pred;
  const size_t B = static_cast<size_t>(o.batch_size);
  const size_t steps = (order.size() + B - 1) / B;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    rng.shuffle(order);
    double loss_sum = 0, correct = 0, total = 0;
    size_t seen = 0;
    Progress pr{};
    pr.epoch = epoch;
    pr.epochs = o.epochs;
    pr.steps = steps;
    for (size_t s = 0; s < steps; ++s) {
      if (o.stop && o.stop->load()) return history;
      const size_t b = s * B, e = std::min(order.size(), b + B);
      std::vector<size_t> idx(order.begin() + b, order.begin() + e);
      train.fill(idx, x, y, rng, o.augment);
      const float l = model.train_step(x, y, loss, opt, tc, &pred);
      loss_sum += double(l) * idx.size();
      seen += idx.size();
      count_correct(loss, pred, y, correct, total);
      pr.step = s + 1;
      pr.loss = loss_sum / seen;
      pr.accuracy = total ? correct / total : 0;
      if (on_progress) on_progress(pr);
    }
    pr.epoch_end = true;
    if (val && val->size()) {
      pr.val = evaluate(model, *val, loss, o.batch_size, ctx);
      pr.has_val = true;
    }
    history.push_back(pr);
    if (on_progress) on_progress(pr);
  }
  return history;
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

}  // namespace tagnet
