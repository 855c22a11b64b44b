// Small models for the tests and fuzz targets that need every kind of layer of a conv block.
#pragma once

#include <memory>

#include "tagnet/nn/layers.h"
#include "tagnet/nn/model.h"

namespace tagnet {

// 8x8x3 pictures through Conv2D, ReLU, BatchNorm, MaxPool2D, Dropout and Flatten into a Dense
// of 5 sigmoid outputs, labelled a to e.
inline Model small_vgg_like() {
  Model m({8, 8, 3});
  m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Dropout>(0.25f));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(5));
  m.add(std::make_unique<Sigmoid>());
  m.build(9);
  m.card().labels = {"a", "b", "c", "d", "e"};
  return m;
}

}  // namespace tagnet
