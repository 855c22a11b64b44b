// Training and evaluation over a batch source, with Keras-style metrics. One loop: the
// Trainer. fit(), every `tagnet train` variant and the WebAssembly trainer run it.
//
//   struct MySource : tagnet::BatchSource { ... };
//   tagnet::TrainOptions o;  o.epochs = 5;  o.batch_size = 32;
//   tagnet::Trainer t(model, train, adam, tagnet::LossKind::kCategoricalCrossentropy, o, ctx);
//   t.set_validation(&val);
//   while (!t.done()) {
//     const tagnet::Progress& p = t.step();   // one batch
//     if (p.epoch_end) ...;                   // p.val holds the validation metrics
//   }
//   // or: t.run(callbacks), with progress, checkpoint and stop callbacks (Trainer::Callbacks)
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/nn/model.h"

namespace tagnet {

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

// The processes that train one model together, data-parallel (the native build runs them
// over MPI: docs/distributed.md). Every process holds the same model and data and runs the same
// Trainer with the same seed; the Trainer makes these calls in the same order on every process.
class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;   // 0 .. size() - 1
  virtual int size() const = 0;
  // Sums v[0, n) over the processes, in place.
  virtual void sum(double* v, size_t n) = 0;
  // Whether every process holds the same value.
  virtual bool same(uint64_t v) = 0;
  // One step's gradients: start_gradients before backward; gradients_ready(from) whenever the
  // model's gradients [from, arena_size()) are final (Model::on_gradients_ready), so they may
  // travel while backward goes on; finish_gradients returns when every gradient holds the sum
  // over the processes of `scale` times its own.
  virtual void start_gradients(Model& model, float scale) = 0;
  virtual void gradients_ready(size_t from) = 0;
  virtual void finish_gradients() = 0;
};

struct TrainOptions {
  int epochs = 1;
  int batch_size = 32;
  uint64_t seed = 0;       // shuffling, augmentation and dropout draw from one Rng(seed)
  bool augment = false;
  // With a collective (Trainer::set_collective): BatchNorm normalises with the statistics of
  // the global batch instead of each process's slice. Every process then needs an example of
  // every batch; and the training matches one process's (within rounding).
  bool sync_batchnorm = false;
  // At each epoch's end, before validation, the trainable BatchNorm layers' moving statistics
  // become the mean and variance of their inputs over this many training examples (the
  // epoch's first in its shuffled order, unaugmented, Dropout off), which is what inference
  // will see under the epoch's final weights (Model::add_batchnorm_sums). Keras' moving
  // averages trail the weights by about 1 / (1 - momentum) steps, and under Adam they can lag
  // so far that the model in inference mode swings from epoch to epoch while its weights
  // are fine. 0 keeps the moving averages.
  int batchnorm_examples = 1024;
};

struct Progress {
  int epoch = 0, epochs = 0;     // 1-based
  size_t step = 0, steps = 0;    // batches done in this epoch
  double loss = 0, accuracy = 0; // running means over the epoch so far
  double batch_loss = 0;         // of the last batch
  size_t batch_examples = 0;     // in the last batch (of every process, when together)
  bool epoch_end = false;
  double seconds = 0;            // at epoch_end: the epoch's wall time, validation included
  Metrics val;                   // at epoch_end when there is validation data
  bool has_val = false;
};

// When run() hands the model to on_checkpoint: after every epoch, or when the epoch's
// validation loss (training loss without validation data) is the lowest so far.
enum class Checkpoint { kNone, kLast, kBest };

class Trainer {
 public:
  // Model, sources and optimizer are borrowed and must outlive the trainer.
  Trainer(Model& model, BatchSource& train, Optimizer& opt, LossKind loss, const TrainOptions& options,
          const Context& ctx);

  // Scored at the end of every epoch, in batches of `batch_size` (0: the training batch size).
  void set_validation(BatchSource* val, int batch_size = 0);
  // Runs after backward (and, together, after the gradients are averaged over the processes)
  // and before the optimizer step: the one place where gradients may be changed.
  void set_gradient_hook(std::function<void(Model&)> hook) { gradient_hook_ = std::move(hook); }
  // Trains together with other processes (borrowed; null: alone). Each process takes its slice
  // of every batch (batch_size stays the global batch; process r of N takes examples
  // [B*r/N, B*(r+1)/N) of a batch of B, so a last, smaller batch splits unevenly and a process
  // may get none), gradients are averaged over the global batch, the running metrics and the
  // validation (split over the processes) are reduced, BatchNorm moving statistics are averaged
  // at each epoch's end and when run() returns, and a stop on any process stops all after the
  // same batch. Augmentation and dropout draw from a generator of each process's own. Before
  // each checkpoint and when run() ends, the processes check that their parameters and
  // optimizer states are identical.
  void set_collective(Collective* c);

  // Trains one batch. At the epoch's last batch the result has epoch_end set, its validation
  // metrics and seconds, and is appended to history(). Stepping on after done() trains more
  // epochs, which history() does not keep (a page may step a trainer for as long as it likes).
  const Progress& step();
  bool done() const { return epoch_ > options_.epochs; }
  int epoch() const { return epoch_; }   // the epoch the next step belongs to, 1-based
  size_t step_in_epoch() const { return step_; }
  const std::vector<Progress>& history() const { return history_; }

  struct Callbacks {
    std::function<void(const Progress&)> on_progress;     // after every batch
    Checkpoint checkpoint = Checkpoint::kNone;
    std::function<void(const Progress&)> on_checkpoint;   // the model is worth saving now
    const std::atomic<bool>* stop = nullptr;             // set: end after the current batch
  };
  // step() until done() or *stop. Returns history(). Stopped within an epoch, the model gets
  // population statistics for its weights too (TrainOptions::batchnorm_examples).
  const std::vector<Progress>& run(const Callbacks& callbacks);
  // Whether run() handed over a best checkpoint: the best model is the saved one, not the last.
  bool saved_best() const { return saved_best_; }

 private:
  Model& model_;
  BatchSource& train_;
  BatchSource* val_ = nullptr;
  int val_batch_ = 0;
  Optimizer& opt_;
  LossKind loss_;
  TrainOptions options_;
  Context ctx_;
  Rng rng_;
  std::function<void(Model&)> gradient_hook_;
  Collective* collective_ = nullptr;
  // Synchronised BatchNorm's sums (Context::sums) through the collective.
  class BatchSums : public ProcessSums {
   public:
    Collective* collective = nullptr;
    double share = 1;   // of the global batch: this process's examples
    void statistics(double* v, size_t n) override { collective->sum(v, n); }
    void gradients(double* v, size_t n) override;
  };
  BatchSums batch_sums_;
  Rng local_rng_;              // augmentation and dropout of this process, with a collective
  const std::atomic<bool>* stop_ = nullptr;
  bool stop_agreed_ = false;   // some process was asked to stop (with a collective)
  // With a collective: trains this process's slice and reduces the batch's metrics.
  float step_together(size_t global_examples);
  Metrics evaluate_together();
  void average_moving_statistics();
  // TrainOptions::batchnorm_examples: population statistics for the model as it is now;
  // false when there are none to set (0 examples, no trainable BatchNorm).
  bool set_population_statistics();
  // Throws unless every process holds the same parameters and optimizer state (before saves).
  void check_replicas();
  int epoch_ = 1;
  size_t step_ = 0;
  std::vector<size_t> order_, batch_;
  double loss_sum_ = 0, correct_ = 0, total_ = 0;
  size_t seen_ = 0;
  double epoch_start_ = 0;
  Tensor x_, y_, pred_;   // x (B, H, W, C), y and pred (B, F)
  Progress last_;
  std::vector<Progress> history_;
  double best_ = 0;
  bool saved_best_ = false;
};

// Trainer::run without callbacks but progress and stop: the whole run in one call.
struct FitOptions : TrainOptions {
  const std::atomic<bool>* stop = nullptr;   // set to end training after the current batch
};
std::vector<Progress> fit(Model& model, BatchSource& train, BatchSource* val, Optimizer& opt,
                          LossKind loss, const FitOptions& options, const Context& ctx,
                          const std::function<void(const Progress&)>& on_progress);

// Inference over the whole source in batches; optionally collects all predictions (N, F).
Metrics evaluate(Model& model, BatchSource& data, LossKind loss, int batch_size,
                 const Context& ctx, Tensor* all_predictions = nullptr,
                 Tensor* all_targets = nullptr);

// A model's report on a data set, for every head: the multi-label report for sigmoid heads,
// the multi-class one (one-logit heads as two classes) otherwise.
struct Scores {
  nlohmann::json json;   // the report's to_json() with "loss" and "examples"
  std::string table;     // the report's to_table()
  double headline = 0;   // exact match (label sets) or accuracy (one class)
};
Scores score(Model& model, BatchSource& data, Head head, const std::vector<std::string>& labels,
             const Context& ctx, int batch_size = 64);

// The per-epoch history stored in history.json and in the model file: epoch, loss, accuracy,
// val_loss and val_accuracy when validated, and the epoch's seconds.
nlohmann::json history_json(const std::vector<Progress>& history);
// The history of a run that goes on from a saved model: its epochs numbered after `earlier`'s.
nlohmann::json continued_history(const nlohmann::json& earlier, const nlohmann::json& fresh);

}  // namespace tagnet
