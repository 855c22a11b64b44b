// tagnet::Trainer as the command line runs it: Keras-style progress on stdout, Ctrl-C ends the
// run after the current batch with a usable model, checkpoints go to the model file with the
// history so far, and the run's outputs (history.json, plot.png) are written at the end.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tagnet/nn/model.h"
#include "tagnet/train/train.h"

namespace tagnet::native {

struct RunOptions {
  std::string model_out;              // checkpoints; empty: none
  Checkpoint checkpoint = Checkpoint::kLast;
  Optimizer* save_optimizer = nullptr;   // saved with last-epoch checkpoints
  nlohmann::json earlier = nlohmann::json::array();   // history the run goes on from
};

struct RunResult {
  std::vector<Progress> history;
  nlohmann::json history_json;   // `earlier` followed by this run's epochs
  bool stopped = false;          // by Ctrl-C
  bool best_saved = false;       // the model file holds the best epoch (Checkpoint::kBest)
  int saved_epoch = 0;           // the epoch of this run the model file holds (0: none saved)
  double seconds = 0;
};

// Runs `trainer` to the end, or to Ctrl-C.
RunResult run_training(Trainer& trainer, Model& model, Head head, const RunOptions& options);

Checkpoint checkpoint_from_name(const std::string& name);   // "best", "last"

// history.json: {title, history, metrics, training, labels, ...extra}.
void write_history(const std::string& path, const std::string& title, const Model& model,
                   const nlohmann::json& extra = nlohmann::json::object());

// "training layers 13-25 (conv2d_3 ... softmax): 2319874 of 2377346 parameters"
std::string trainable_summary(const Model& m, size_t from);

}  // namespace tagnet::native
