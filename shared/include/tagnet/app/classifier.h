// tagnet's use-cases, in one place for its edges (the command line, the WebAssembly module):
// open or import a model, classify pictures, give the model new labels, evaluate it, save it.
// Training goes through Trainer (train/train.h) and teaching through Teacher (train/teach.h)
// on classifier.model(); both leave the card as this policy wants it.
//
//   tagnet::Engine engine;
//   tagnet::Classifier c = tagnet::Classifier::open("fashion.tagnet");
//   for (const tagnet::Answer& a : c.classify({tagnet::load_image("dress.jpg")}, {&engine}))
//     for (size_t i : a.predicted) std::cout << c.labels()[i] << " " << a.probabilities[i] << "\n";
//   c.give_new_labels({{"sandal", "bag"}, tagnet::Head::kSoftmax});
//   c.save("shoes.tagnet");
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tagnet/data/dataset.h"
#include "tagnet/io/image.h"
#include "tagnet/io/onnx.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/finetune.h"
#include "tagnet/train/train.h"

namespace tagnet {

// What a classifier says about one picture.
struct Answer {
  std::vector<float> probabilities;   // one per label, in labels() order
  std::vector<size_t> ranking;        // every label, the most probable first
  // Label sets (sigmoid): the labels above their thresholds; one label: the most probable.
  // Most probable first.
  std::vector<size_t> predicted;
  bool unseen_combination = false;    // label sets: the predicted set never occurred in training
  float novelty = -1;                 // over 1: unlike the pictures the model learnt from; -1: no statistics
  bool unfamiliar() const { return novelty > 1; }
};

// New labels for a model: what replace-head, the page and a new head for teaching all ask for.
struct NewLabels {
  std::vector<std::string> names;     // one per output, two for a logit head; empty: `outputs` unnamed
  Head head = Head::kSigmoid;
  int outputs = 0;                    // when no names are given
  size_t cut = kAtHead;               // layers [0, cut) are kept; kAtHead: those below the head
  bool freeze_base = true;            // the kept layers stop training
  uint64_t seed = 42;                 // the new head's initialisation
  std::string from;                   // the model's source in the card's record; empty: its origin
};

class Classifier {
 public:
  // `origin` names the model in errors and in its provenance (a path, a file name).
  explicit Classifier(Model model, std::string origin = "model");
  static Classifier open(const std::string& path);
  static Classifier open(const uint8_t* data, size_t size, const std::string& origin);
  static Classifier import_onnx(const uint8_t* data, size_t size, const std::string& origin,
                                const OnnxImportOptions& options);
  // A known architecture (nn/architectures.h), Glorot-initialised from `seed`.
  static Classifier create(const std::string& architecture, const std::vector<std::string>& labels, Head head,
                           uint64_t seed);

  Model& model() { return model_; }
  const Model& model() const { return model_; }
  const ModelCard& card() const { return model_.card(); }
  ModelCard& card() { return model_.card(); }
  const std::string& origin() const { return origin_; }
  Head head() const;                  // of its last layer
  LabelMode mode() const;             // as recorded, else as its head reads
  // One name per probability: the card's labels, else "0", "1", ...
  std::vector<std::string> labels() const;
  // Throws ModelFileError naming the origin when the model does not take pictures (H, W, 1 or 3).
  void check_takes_pictures() const;

  // Each label over its threshold (the card's, unless `threshold` is given) is predicted.
  std::vector<Answer> classify(const std::vector<Image>& pictures, const Context& ctx,
                               std::optional<double> threshold = std::nullopt);

  // Cuts the model and adds a new head for `n`'s labels: at least one label set name (sigmoid),
  // two classes (softmax), exactly two names for one logit. The card keeps what still holds
  // (preprocessing, novelty, provenance) and records the change. Returns the new Dense layer.
  size_t give_new_labels(const NewLabels& n);

  // The model's report on `data` with its own labels (train/train.h's Scores).
  Scores evaluate(BatchSource& data, const Context& ctx);

  void save(const std::string& path) const { model_.save(path); }
  std::vector<uint8_t> save_bytes() const { return model_.save_bytes(); }

 private:
  Model model_;
  std::string origin_;
};

}  // namespace tagnet
