// Losses, each in a numerically stable form fused with the output activation: they take the
// logits (the input of the final Sigmoid/Softmax) and return the batch-mean loss and
// d(loss)/d(logits), so exp/log never overflow.
//
//   Tensor dlogits;
//   float loss = tagnet::loss_forward_backward(tagnet::LossKind::kCategoricalCrossentropy,
//                                              logits, onehot, &dlogits);
#pragma once

#include <stdexcept>
#include <string>

#include "tagnet/kernels/tensor.h"

namespace tagnet {

enum class LossKind {
  kBinaryCrossentropy,            // multi-label: sigmoid outputs, mean over labels and batch
  kCategoricalCrossentropy,       // multi-class: softmax outputs, sum over classes, batch mean
  kBinaryCrossentropyFromLogits,  // two classes: one raw logit per example
};

std::string loss_name(LossKind k);

// Training diverged: a batch's loss is NaN or infinite. Thrown before the optimizer step, so
// the weights are those of the last good step.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};            // Keras names: "binary_crossentropy", ...

// logits and targets are (N, F). dlogits, when not null, is resized and overwritten.
float loss_forward_backward(LossKind kind, const Tensor& logits, const Tensor& targets,
                            Tensor* dlogits);

}  // namespace tagnet
