// Saying when a picture is unlike anything a model learnt from. After training, the features
// below the head (finetune.h's head_start) of the training pictures are summarised in the
// model's metadata ("novelty"): one mean per group of pictures with the same labels and one
// spread per feature. A picture's novelty is its distance to the nearest group mean, in
// per-feature spreads, divided by the distance below which 99% of the training pictures lie:
// above 1 it is unfamiliar.
//
//   tagnet::learn_novelty(model, training_pictures, ctx);        // after training
//   auto probs = tagnet::classify_images(model, pictures, ctx);
//   if (tagnet::novelty_of_last_forward(model, pictures.size())[0] > 1)
//     ...  // "this looks unlike the pictures this model learnt from"
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "tagnet/data/dataset.h"
#include "tagnet/nn/model.h"

namespace tagnet {

struct NoveltyStats {
  std::vector<std::vector<float>> means;   // per group, (D)
  std::vector<float> spread;               // (D)
  float threshold = 1;                     // distance at the 99th percentile of the training pictures

  nlohmann::json to_json() const;
  // Nothing when the metadata holds no statistics of `dims` features (or malformed ones).
  static bool from_json(const nlohmann::json& j, int dims, NoveltyStats& out);
  // The distance of features f (D) to the nearest group mean, over the threshold.
  float novelty(const float* f) const;
};

// The novelty of each of the `pictures` of the model's last forward pass (-1 for all when the
// model has no statistics).
std::vector<float> novelty_of_last_forward(const Model& model, size_t pictures);

// Runs the model over every example of `pictures` (no augmentation), groups them by their
// target vector and stores the statistics in metadata()["novelty"].
void learn_novelty(Model& model, BatchSource& pictures, const Context& ctx, int batch_size = 64);

// Statistics from features (n, D) grouped by `group` (n values, any integers).
NoveltyStats novelty_statistics(const float* features, size_t n, int dims, const std::vector<int>& group);

}  // namespace tagnet
