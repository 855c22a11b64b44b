// Transfer learning from the command line, after two tutorials: cache a trained network's
// convolutional-base outputs ("bottleneck features"), train a small top model on them and
// fine-tune the last block; and give a Fashion-MNIST classifier a new sigmoid head that finds
// several garments in one 2x2 picture.
//
//   tagnet features --model BACKBONE --dataset DIR --out F [--labels single|multi]
//   tagnet train --features F [--val-features F2]                     # top model, SGD
//   tagnet finetune --base BACKBONE --top TOP --dataset DIR [--val-dataset DIR]
//                   [--unfreeze last-block] [--lr 1e-4] [--momentum 0.9]
//   tagnet replace-head --model M --out M2 [--cut LAYER] --labels a,b,c [--head sigmoid]
//   tagnet train --dataset fashion-mnist-2x2 [--base M] [--trainable head|last-block|all]
//   tagnet train --dataset fashion-mnist --base M                     # go on training M
//   tagnet train --dataset DIR --base M [--trainable ...]             # go on, or a new head for DIR's labels
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "tagnet/architectures.h"
#include "tagnet/composites.h"
#include "tagnet/model.h"
#include "tagnet/optim.h"

namespace CLI {
class App;
}

namespace tagnet::native {

// The options `tagnet train` takes for its transfer-learning variants.
struct TransferTrainArgs {
  // --features: train a top model on cached features.
  std::string features, val_features;
  float momentum = 0.9f;
  int hidden = 256;
  float top_dropout = 0.5f;
  // Start from a trained model (empty: a new network).
  std::string base;
  std::string trainable;      // head, last-block, all, as-saved or a layer (see start_from_base)
  std::string cut;            // layer index or name where the new head goes
  size_t epoch_size = 60000;  // fresh pictures per epoch
  size_t test_size = 10000;   // the fixed, seeded test set
  // Set by add_transfer_train_options: tells options given on the command line from defaults.
  const CLI::App* app = nullptr;
};

// Registers --features, --val-features, --momentum, --hidden, --top-dropout, --base,
// --trainable, --cut, --epoch-size and --test-size on `tagnet train`.
void add_transfer_train_options(CLI::App* train, TransferTrainArgs& a);

// Where a `train --base M` run starts: M itself when its head already answers `labels` with
// `head` (training goes on), else M cut at --cut (default: before its last Dense layer) with a
// new Dense head; --trainable picks the layers that train (default: the new head alone, or the
// layers that trained before). `opt` holds M's saved Adam state when training simply goes on.
struct BaseStart {
  Model model;
  std::unique_ptr<Optimizer> opt;
  Head head;   // `head`, or softmax where M has a softmax head for the same two labels
  bool kept_head = false;
  std::string trainable;
  size_t first_trainable = 0;
};
BaseStart start_from_base(const TrainArgs& ta, const TransferTrainArgs& xa, const std::vector<std::string>& labels,
                          Head head);
// "training layers 13-25 (conv2d_3 ... softmax): 2319874 of 2377346 parameters"
std::string trainable_summary(const Model& m, size_t from);
// The saved optimizer state to go on with (--lr and --decay replace its own when given), or a
// new Adam when there is none.
std::unique_ptr<Optimizer> base_optimizer(const TrainArgs& ta, const TransferTrainArgs& xa,
                                          std::unique_ptr<Optimizer> saved, float decay);

// `tagnet train --features F`: Flatten -> Dense(hidden, relu) -> Dropout -> Dense(classes)
// softmax (or sigmoid for multi-label features), SGD with momentum.
int cmd_train_features(const TrainArgs& ta, const TransferTrainArgs& xa);
// `tagnet train --dataset fashion-mnist-2x2 [--base M]`: multi-label training on 2x2
// composites drawn afresh every epoch, scored on a fixed seeded test set; and
// `tagnet train --dataset fashion-mnist --base M`: training goes on from a saved model. A base
// with another head gets a new one (cut at --cut); --trainable picks the layers that train.
int cmd_train_transfer(const TrainArgs& ta, const TransferTrainArgs& xa);

struct FeaturesArgs {
  std::string model, dataset, out, labels = "single";
  std::string layer;            // where the base ends (index or name); default: before Flatten
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string split = "train";  // fashion-mnist and fashion-mnist-2x2
  size_t limit = 0;             // fashion-mnist: first N pictures; 2x2: composites (default 10000)
  uint64_t seed = 1;            // fashion-mnist-2x2: the fixed set's seed
  int batch = 64;
  EngineArgs engine;
};

struct FinetuneArgs {
  std::string base, top, dataset, val_dataset, model_out = "finetuned.tagnet", history;
  std::string unfreeze = "last-block";   // none, last-block, all, or a layer index
  float lr = 1e-4f, momentum = 0.9f, val_split = 0.2f;
  int epochs = 10, batch = 16;
  uint64_t seed = 42;
  AugmentArgs augment;
  EngineArgs engine;
};

struct ReplaceHeadArgs {
  std::string model, out, cut, labels, head = "sigmoid";
  int outputs = 0;              // when no label names are given
  bool no_freeze = false;
  uint64_t seed = 42;
};

int cmd_features(const FeaturesArgs& a);
int cmd_finetune(const FinetuneArgs& a);
int cmd_replace_head(const ReplaceHeadArgs& a);

// Registers `features`, `finetune` and `replace-head`. Each runs from its CLI11 callback and
// leaves its exit status in `exit_code` (errors are printed, not thrown).
void add_transfer_commands(CLI::App& app, int& exit_code);

// The 2x2 Fashion-MNIST pictures: 56x56, 0 to 4 garments of `split` ("train" or "test") in
// random cells; `fresh` draws a new set every epoch, else picture i is fixed by (seed, i).
// limit > 0 keeps the first `limit` source garments.
GridComposites make_fashion_2x2(const std::string& data_dir, const std::string& split, size_t count,
                                uint64_t seed, bool fresh, size_t limit = 0);

// A layer given by index ("8") or name ("flatten"); throws std::invalid_argument naming the
// option, what it expects and the model's layers.
size_t parse_layer(const Model& model, const std::string& spec, const std::string& option,
                   const std::string& expected = "a layer index or name");

}  // namespace tagnet::native
