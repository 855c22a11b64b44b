// Training and evaluation loops over a batch source, with Keras-style metrics.
//
//   struct MySource : tagnet::BatchSource { ... };
//   tagnet::FitOptions fo;  fo.epochs = 5;  fo.batch_size = 32;
//   tagnet::fit(model, train, &val, adam, tagnet::LossKind::kCategoricalCrossentropy, fo, ctx,
//               [](const tagnet::Progress& p) { ... });
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "tagnet/model.h"

namespace tagnet {

// Examples addressed by index; a source fills batches of inputs and targets.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual size_t size() const = 0;
  // Fills x (B, H, W, C) and y (B, F) for the examples `indices`. `augment` asks for a fresh
  // random variant of each example, drawn from `rng`.
  virtual void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
                    bool augment) = 0;
};

// How predictions are scored: argmax for softmax heads, threshold 0.5 per label for sigmoid
// heads (Keras' binary accuracy), logit > 0 for one-logit heads.
struct Metrics {
  double loss = 0;
  double accuracy = 0;   // categorical or binary accuracy, by head
  size_t examples = 0;
};

// Adds a batch's correct-prediction count to `correct` and the count of scored values to
// `total` (examples for softmax, labels for sigmoid and logit heads).
void count_correct(LossKind loss, const Tensor& predictions, const Tensor& targets,
                   double& correct, double& total);

struct FitOptions {
  int epochs = 1;
  int batch_size = 32;
  uint64_t seed = 0;
  bool augment = false;
  const std::atomic<bool>* stop = nullptr;   // set to end training after the current batch
};

struct Progress {
  int epoch, epochs;             // 1-based
  size_t step, steps;            // batches done in this epoch
  double loss, accuracy;         // running means over the epoch so far
  bool epoch_end = false;
  Metrics val;                   // at epoch_end when there is validation data
  bool has_val = false;
};

// Returns the per-epoch history; stops early (with the epochs done) when *stop is set.
std::vector<Progress> fit(Model& model, BatchSource& train, BatchSource* val, Optimizer& opt,
                          LossKind loss, const FitOptions& options, const Context& ctx,
                          const std::function<void(const Progress&)>& on_progress);

// Inference over the whole source in batches; optionally collects all predictions (N, F).
Metrics evaluate(Model& model, BatchSource& data, LossKind loss, int batch_size,
                 const Context& ctx, Tensor* all_predictions = nullptr,
                 Tensor* all_targets = nullptr);

}  // namespace tagnet
