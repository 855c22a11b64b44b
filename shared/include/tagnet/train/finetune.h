// The fine-tuning policy: which layers of a trained model train when it learns new labels,
// how a classifier head is replaced, and the tutorial's augmentation. The command line and the
// web page both ask these functions; neither works the rules out for itself.
//
//   tagnet::Model m = tagnet::Model::load("fashion.tagnet");
//   tagnet::cut_and_add_head(m, tagnet::head_start(m), 2, tagnet::Head::kSoftmax, 1, true);
//   tagnet::set_trainable(m, "last-block");   // the last conv block and the classifier train
//   tagnet::Augment a = tagnet::tutorial_augment();
//
// The parts of a network, by its layers (SmallerVGGNet: blocks of Conv2D/ReLU/BatchNorm
// closed by MaxPooling2D and Dropout, then Flatten or GlobalAveragePooling2D and the
// classifier):
//   head        the last Dense layer and what follows it;
//   last-block  the first Conv2D of the last convolutional block and everything after it;
//   all         every layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "tagnet/nn/architectures.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"

namespace tagnet {

// The first layer of the classifier: the last Dense layer. Throws std::invalid_argument when
// the model has none (or only as its first layer).
size_t head_start(const Model& model);

// Where the convolutional base of a classifier ends: the index of its first Flatten or
// GlobalAveragePooling2D layer. Throws std::invalid_argument when there is none.
size_t base_end(const Model& model);

// The first layer of the last convolutional block of layers [0, n): the first Conv2D after the
// pooling layer that closes the block before it (0 when the base has one block).
size_t last_block_start(const Model& model, size_t n);

// A layer given by index ("8") or name ("flatten"). Throws std::invalid_argument reading
// "<context> <spec>: expected <expected> (layers: 0 conv2d, 1 re_lu, ...)".
size_t find_layer(const Model& model, const std::string& spec, const std::string& context,
                  const std::string& expected = "a layer index or name");

constexpr size_t kAtHead = std::numeric_limits<size_t>::max();

// The first layer that trains for `part`: "head" (or "none": nothing below the head trains),
// "last-block", "all", "as-saved" (the model's own flags) or a layer index or name (that layer
// on). `head_from` is where the head starts, by default head_start(model); a model joined from
// a base and a top model passes the top model's first layer. `context` prefixes errors.
size_t trainable_from(const Model& model, const std::string& part, size_t head_from = kAtHead,
                      const std::string& context = "trainable");
// trainable_from, then marks layers below it frozen and the rest trainable. Returns the index.
size_t set_trainable(Model& model, const std::string& part, size_t head_from = kAtHead,
                     const std::string& context = "trainable");

// Replaces everything from layer `cut` on with a new classifier: Flatten when the cut leaves a
// spatial output, then Dense(outputs) and the head's activation, Glorot-initialised from
// `seed`. Layers below keep their weights and, when `freeze_base`, stop training (Keras'
// base.trainable = False); otherwise every layer trains. Returns the index of the new Dense.
size_t cut_and_add_head(Model& model, size_t cut, int outputs, Head head, uint64_t seed,
                        bool freeze_base);

// The augmentation of the multi-label tutorial's ImageDataGenerator: rotation 25 degrees,
// width and height shifts 0.1, shear 0.2, zoom 0.2, horizontal flips, nearest fill.
Augment tutorial_augment();

}  // namespace tagnet
