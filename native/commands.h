// The tagnet subcommands. main.cpp parses the command line into these argument structs.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tagnet/engine.h"
#include "tagnet/image.h"
#include "tagnet/train.h"

namespace tagnet::native {

extern std::atomic<bool> g_stop;   // set by Ctrl-C: training ends after the current batch
void on_sigint(int);                // installed while training: sets g_stop

// The per-epoch history stored in history.json and in the model file: epoch, loss, accuracy,
// val_loss and val_accuracy when validated, and the epoch's seconds.
nlohmann::json history_json(const std::vector<Progress>& h, const std::vector<double>& seconds);
// The history of a run that goes on from a saved model: its epochs numbered after `earlier`'s.
nlohmann::json continued_history(const nlohmann::json& earlier, const nlohmann::json& fresh);

struct TransferTrainArgs;

struct EngineArgs {
  int threads = 0;
  std::string backend = "auto";
};

struct AugmentArgs {
  // The pyimagesearch tutorial's ImageDataGenerator settings.
  float rotation = 25, width_shift = 0.1f, height_shift = 0.1f, shear = 0.2f, zoom = 0.2f;
  bool hflip = true, off = false;
  std::string fill = "nearest";
  Augment to_augment() const;
};

struct TrainArgs {
  std::string dataset = "fashion-mnist";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string arch;                // default: by dataset
  std::string labels = "multi";
  std::string model_out = "model.tagnet", plot = "plot.png", history = "history.json";
  std::string checkpoint = "last";
  std::string title;               // of the plot and history; empty: what was trained on what
  int epochs = 0;                  // 0: by dataset (5 for Fashion-MNIST, 75 for folders)
  int batch = 32;
  int size = 0;                    // input height and width; 0: the architecture's
  float lr = 1e-3f;
  float decay = -1.f;              // < 0: lr / epochs for folders (the tutorial), 0 for Fashion-MNIST
  float val_split = 0.2f;
  float dropout = -1.f;
  uint64_t seed = 42;
  size_t limit = 0, test_limit = 0;
  std::string val_dataset;         // a separate validation folder instead of a split
  AugmentArgs augment;
  EngineArgs engine;
};

struct EvaluateArgs {
  std::string model, dataset = "fashion-mnist", data_dir = "/usr/share/datasets/fashion-mnist";
  size_t limit = 0;
  bool json = false;
  EngineArgs engine;
};

struct ClassifyArgs {
  std::string model;
  std::vector<std::string> images;   // files or folders
  int top = 2;
  float threshold = 0.5f;
  std::string output;                // annotated picture (one input) or folder (several)
  bool json = false;
  EngineArgs engine;
};

struct PreviewArgs {
  std::string dataset, out = "preview.png", labels = "multi";
  int count = 16, augmented = 8, size = 96;
  uint64_t seed = 42;
  AugmentArgs augment;
};

struct MakeDatasetArgs {
  std::string kind, out, data_dir = "/usr/share/datasets/fashion-mnist";
  uint64_t seed = 1;
  int per_class = 350;
  bool overwrite = false;
};

// The engine of a command; `announce` prints its backend and threads to stderr. Made once the
// inputs have been checked, so a bad input gives its one-line error alone.
std::unique_ptr<Engine> make_engine(const EngineArgs& a, bool announce = false);
// Fails before any work is done when `path` could not be written at the end.
void require_writable(const std::string& path);
// Writes `text` to `path` through a temporary file and a rename: never half-written.
void write_text(const std::string& path, const std::string& text);

// The run's title: --title if given, else `fallback`.
std::string run_title(const TrainArgs& a, const std::string& fallback);

// `tagnet train` on Fashion-MNIST or a folder of pictures; with `xa.base`, a folder run starts
// from a saved model (training goes on, or a new head for the folder's labels).
int cmd_train(const TrainArgs& a, const TransferTrainArgs& xa);
int cmd_evaluate(const EvaluateArgs& a);
int cmd_classify(const ClassifyArgs& a);
int cmd_preview(const PreviewArgs& a);
int cmd_make_dataset(const MakeDatasetArgs& a);

}  // namespace tagnet::native
