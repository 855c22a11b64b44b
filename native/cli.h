// What every tagnet command shares: how it registers, its engine and augmentation options,
// output checks, and the folder-dataset helpers. Each command lives in cmd/<name>.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "folder_dataset.h"
#include "tagnet/kernels/engine.h"
#include "tagnet/train/finetune.h"
#include "tagnet/io/image.h"

namespace CLI {
class App;
class Validator;
}

namespace tagnet::native {

// A command adds its subcommand and options to the app and returns what runs it once the
// command line is parsed. Errors are thrown; main prints them as one line and exits 1.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

struct EngineArgs {
  int threads = 0;
  std::string backend = "auto";
};
void add_engine_options(CLI::App* cmd, EngineArgs& a);
// Checks of numeric options with one-line messages ("must be at least 1, not 0"); NaN fails all.
CLI::Validator at_least(double lo);
CLI::Validator between(double lo, double hi);
CLI::Validator positive();   // finite and above 0
// --bn-statistics of the training commands: "population" or "moving" (Keras' moving averages),
// as TrainOptions::batchnorm_examples.
void add_bn_statistics_option(CLI::App* cmd, std::string& value);
int batchnorm_examples_from_name(const std::string& name);
// The engine of a command; `announce` prints its backend and threads to stderr. Made once the
// inputs have been checked, so a bad input gives its one-line error alone.
std::unique_ptr<Engine> make_engine(const EngineArgs& a, bool announce = false);

// Augmentation options, defaulting to the tutorial's (tagnet::tutorial_augment).
struct AugmentArgs {
  Augment values = tutorial_augment();
  std::string fill = fill_mode_name(values.fill);
  bool off = false;
  Augment to_augment() const;   // nothing when off
};
void add_augment_options(CLI::App* cmd, AugmentArgs& a);

// Fails before any work is done when `path` could not be written at the end.
void require_writable(const std::string& path);
// Writes `text` to `path` through a temporary file and a rename: never half-written.
void write_text(const std::string& path, const std::string& text);

std::string join(const std::vector<std::string>& v, const char* sep = ", ");
std::vector<std::string> split_list(const std::string& comma_separated);

// A folder dataset at `input` with the given labels; unreadable pictures are warned about.
// Single-label sets get one-hot softmax targets, also for two classes.
FolderDataset load_labelled_folder(const std::string& dir, LabelMode mode, const Shape& input,
                                   const std::vector<std::string>& labels, int threads);
// Options that warn on stderr about each unreadable picture.
FolderOptions folder_options(LabelMode mode, const Shape& input, int threads);
// A seeded split of n examples: `val_split` of them for validation.
void split_indices(size_t n, float val_split, uint64_t seed, std::vector<size_t>& train_idx,
                   std::vector<size_t>& val_idx);

}  // namespace tagnet::native
