// Teaching a trained classifier new labels from a handful of pictures per label, in seconds.
//
//   tagnet::Teacher t(model, {"sandal", "bag"}, /*one_per_picture=*/true, {}, ctx);
//   t.add(picture, {"sandal"});  ...
//   while (t.step()) show(t.progress());     // small pieces of work
//   tagnet::Model taught = t.result();        // the old labels' outputs unchanged, new ones added
//   std::cout << t.report().to_json();        // held-out accuracy per label, warnings
//
// The recipe: the layers below the head (finetune.h's head_start) stay frozen, so their output,
// the features, is computed once per picture and per augmented copy; then only the taught
// labels' rows of the head's Dense layer train, hundreds of steps over the cached features,
// which takes milliseconds. A share of each label's pictures is kept aside and scored by a
// head trained without them (the held-out accuracy); the model handed back then learns from
// every picture. Outputs of labels without pictures keep their weights bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/train/finetune.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"

namespace tagnet {

struct TeachOptions {
  int copies = 8;                       // augmented copies of each picture, besides itself
  Augment augment = tutorial_augment();
  int steps = 300;                      // optimizer steps over the cached features
  int batch_size = 32;
  float lr = 3e-3f;                     // Adam
  double held_out = 0.2;                // of each label's pictures, at least 2, kept aside
  bool keep_labels = true;              // false: the head holds the taught labels only
  uint64_t seed = 1;
};

struct TeachReport {
  struct Label {
    std::string name;
    int pictures = 0;
    int right = 0, held_out = 0;        // held-out pictures scored right, out of
  };
  std::vector<Label> labels;
  int right = 0, held_out = 0;          // over every held-out picture (multi-label: every label)
  double chance = 0;                    // the accuracy of guessing the most common answer
  std::vector<std::string> warnings;    // plain sentences for the user
  size_t trained_params = 0;
  double feature_seconds = 0, train_seconds = 0;
  nlohmann::json to_json() const;
};

class Teacher {
 public:
  // `labels`: the labels taught (new, or the model's own, which then train too). With
  // `one_per_picture` every picture has exactly one of them (softmax-like classes); otherwise
  // any subset, the empty one included (a picture of none of them). Throws
  // std::invalid_argument when the model has no head to extend (a one-logit head) or the
  // labels are empty or repeated.
  Teacher(const Model& model, const std::vector<std::string>& labels, bool one_per_picture,
          const TeachOptions& options, const Context& ctx);
  ~Teacher();
  Teacher(const Teacher&) = delete;
  Teacher& operator=(const Teacher&) = delete;

  // Throws std::invalid_argument for a label not taught, or for a picture with no label or
  // several when one_per_picture. Pictures are taken until the first step().
  void add(const Image& picture, const std::vector<std::string>& labels);
  size_t size() const;

  // Does a bounded piece of the work; false once everything is done. Throws
  // std::invalid_argument when there are no pictures or a taught label has none.
  bool step();
  struct Progress {
    std::string phase;                  // "features", "training", "done"
    size_t done = 0, total = 0;         // pictures (features) or fits (training)
  };
  Progress progress() const;

  const TeachReport& report() const;    // complete once step() returned false
  Model result() const;                 // the taught model; throws std::logic_error before

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace tagnet
