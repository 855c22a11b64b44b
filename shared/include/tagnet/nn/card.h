// A model's card: what its outputs mean and how it came to be, saved in the model file's
// "metadata" object. Every key tagnet reads or writes is a field here, named once in card.cpp's
// key table; keys it does not know are kept as they were, so a file from a newer tagnet (or
// another tool) loses nothing when an older one saves it again.
//
//   tagnet::Model m = tagnet::Model::load("fashion.tagnet");
//   const tagnet::ModelCard& card = m.card();
//   card.labels;                          // {"black", "blue", "dress", ...}
//   card.mode();                          // LabelMode::kMulti: each picture a set of labels
//   card.threshold_for(2);                // that label's decision threshold (0.5 unless calibrated)
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tagnet {

// What a classifier's last layer gives, and so how its outputs are read and trained.
enum class Head {
  kSoftmax,   // multi-class: softmax outputs, categorical cross-entropy
  kSigmoid,   // multi-label: sigmoid outputs, binary cross-entropy
  kLogit,     // two classes: one raw logit, binary cross-entropy from logits
};
Head head_from_name(const std::string& name);   // "softmax", "sigmoid", "logit"
std::string head_name(Head head);

// How a picture's labels are read: a set of labels (multi: "red_dress" -> red, dress) or one
// label (single: "red_dress" is one class).
enum class LabelMode { kMulti, kSingle };
LabelMode label_mode_from_name(const std::string& name);   // "multi", "single"
std::string label_mode_name(LabelMode mode);
// The label mode a head reads: label sets for sigmoid, one label for softmax and logit.
LabelMode label_mode_of(Head head);

// How pixels become the model's input: resized to the input size by `resize`, times `scale`,
// then, per channel, minus `mean` and over `stddev` when they are given (ImageNet networks).
struct Preprocessing {
  std::string color = "rgb";        // "rgb" or "grayscale"
  double scale = 1.0 / 255;         // 0..255 -> 0..1
  std::string resize = "area";      // how pictures are brought to the input size
  std::vector<double> mean, stddev;   // per channel; empty: none
  nlohmann::json other = nlohmann::json::object();   // keys tagnet does not know, kept

  static Preprocessing for_channels(int channels);   // tagnet's own: grayscale or rgb, 1/255, area
  // Throws std::invalid_argument naming the key of a value of another type.
  static Preprocessing from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// How the model came to be: each step that made or changed it writes its own record (a JSON
// object of that step's settings), and later steps keep the earlier ones.
struct Provenance {
  nlohmann::json training;        // "training": `tagnet train` (epochs, optimizer, seed, arch, ...)
  nlohmann::json data;            // "data": the dataset it was trained on
  nlohmann::json imported;        // "imported": the file and producer it was read from
  nlohmann::json replaced_head;   // "replaced_head": the model cut and given a new head
  nlohmann::json fine_tuned;      // "fine_tuned": taught or fine-tuned (page, `tagnet teach`), with the date
  nlohmann::json base;            // "base": for a top model, the base whose features it learnt from
};

// The time now, in UTC, as provenance records it: "2026-12-07T10:00:00Z".
std::string utc_now();

struct ModelCard {
  std::vector<std::string> labels;          // one name per output (two for a logit head)
  std::optional<LabelMode> label_mode;      // how the labels were read when it was trained
  std::optional<Head> head;                 // the head it was made with
  std::string architecture;                 // empty: unknown
  std::string description;                  // what it knows, in a sentence; empty: none
  std::string input;                        // "features" for a top model; empty: pictures
  std::optional<Preprocessing> preprocessing;
  // The label sets seen together in training, each sorted (multi-label); none: not recorded.
  std::optional<std::set<std::vector<std::string>>> combinations;
  std::optional<double> threshold;          // the decision threshold of every label
  std::vector<double> thresholds;           // per label, calibrated; empty: `threshold`
  nlohmann::json novelty;                   // NoveltyStats (train/novelty.h); null: none
  Provenance provenance;
  nlohmann::json metrics;                   // validation metrics of its training; null: none
  nlohmann::json metrics_before_finetuning;
  nlohmann::json history;                   // per-epoch history of its training; null: none
  nlohmann::json other = nlohmann::json::object();   // keys tagnet does not know, kept as they were

  // The label mode recorded, else the one `fallback` reads.
  LabelMode mode(Head fallback) const { return label_mode.value_or(label_mode_of(fallback)); }
  // Label i's threshold: its calibrated one, else the model's, else 0.5.
  double threshold_for(size_t i) const;
  // The results of training (metrics, history, combinations, description) no longer hold: the
  // outputs were given new labels or trained again.
  void forget_training_results();
  // After the model trained again (taught, fine-tuned): forgets the earlier training's results
  // and keeps `record`, the step's settings, with the date, as provenance.fine_tuned.
  void record_fine_tuning(nlohmann::json record);

  // Throws std::invalid_argument naming the key for a key of another JSON type or a value
  // tagnet cannot read ("metadata label_mode must be multi or single, not 'x'").
  static ModelCard from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

}  // namespace tagnet
