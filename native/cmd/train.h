// `tagnet train`'s options, shared by its two halves: networks on pictures (train.cpp) and top
// models on cached features (train_top.cpp).
#pragma once

#include <string>

#include "cli.h"

namespace tagnet::native {

struct TrainArgs {
  std::string dataset = "fashion-mnist";   // a folder, fashion-mnist or fashion-mnist-2x2
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string arch;                // default: by dataset
  std::string labels = "multi";
  std::string model_out = "model.tagnet", plot = "plot.png", history = "history.json";
  std::string checkpoint;          // best or last; empty: best for folders, last otherwise
  std::string bn_statistics = "population";
  std::string title;               // of the plot and history; empty: what was trained on what
  int epochs = 0;                  // 0: 5 for Fashion-MNIST, 75 for folders, 50 for features
  int batch = 32;
  int size = 0;                    // input height and width; 0: the architecture's
  float lr = 1e-3f;
  float decay = -1.f;              // < 0: lr / epochs for folders (the tutorial), else 0
  float val_split = 0.2f;
  float dropout = -1.f;
  uint64_t seed = 42;
  size_t limit = 0, test_limit = 0;
  std::string val_dataset;         // a separate validation folder instead of a split
  AugmentArgs augment;
  EngineArgs engine;
  bool sync_batchnorm = false;     // under mpirun: BatchNorm on the global batch's statistics
  bool no_optimizer_state = false; // save the model without the optimizer's state
  // Start from a trained model (empty: a new network).
  std::string base;
  std::string trainable;           // head, last-block, all, as-saved or a layer (tagnet/train/finetune.h)
  std::string cut;                 // layer index or name where a new head goes
  size_t epoch_size = 60000;       // fashion-mnist-2x2: fresh pictures per epoch
  size_t test_size = 10000;        // fashion-mnist-2x2: the fixed, seeded test set
  // --features: a top model on cached features.
  std::string features, val_features;
  float momentum = 0.9f;
  int hidden = 256;
  float top_dropout = 0.5f;
  const CLI::App* app = nullptr;   // tells options given on the command line from defaults
};

int train_network(const TrainArgs& a);
int train_top_model(const TrainArgs& a);

// Whether the option was given on the command line.
bool given(const TrainArgs& a, const char* option);
// Fails for counts no run can use (--epochs 0, --size 100000).
void check_counts(const TrainArgs& a);

}  // namespace tagnet::native
