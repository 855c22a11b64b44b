// The networks of the tutorials tagnet follows, by name.
//
//   tagnet::Model m = tagnet::make_architecture("fashionnet", {10, tagnet::Head::kSoftmax});
//   m.build(seed);
//
//   fashionnet     56x56x1: 3 x (Conv2D 2x2 same relu -> MaxPool 2 [-> Dropout .3]) -> Flatten -> Dense
//   smallervggnet  96x96x3: the pyimagesearch multi-label network (~8.7M parameters)
//   catsdogs       150x150x3: the TensorFlow tutorial's 3 conv blocks 16/32/64 -> Dense 512 -> Dense
#pragma once

#include <string>
#include <vector>

#include "tagnet/nn/model.h"

namespace tagnet {


struct ArchOptions {
  int outputs = 10;
  Head head = Head::kSoftmax;
  Shape input;             // empty: the architecture's default input size
  float dropout = -1.f;    // < 0: the architecture's default
};

// Throws std::invalid_argument for an unknown name. The model is not built yet.
Model make_architecture(const std::string& name, const ArchOptions& options);
Shape default_input_shape(const std::string& name);

// The head a model ends with, from its last layer.
Head model_head(const Model& model);

LossKind loss_for(Head head);

}  // namespace tagnet
