// Labelled examples for training: the BatchSource interface, and pictures held in memory at
// the model's input size (an ImageSet) with Keras-style augmentation. The native folder loader and the browser's fine-tuning both fill
// one of these.
//
//   tagnet::ImageSet set({96, 96, 3}, /*outputs=*/6);
//   set.add(tagnet::load_image("red_dress/0001.jpg"), {0, 1, 0, 0, 1, 0});
//   tagnet::Augment aug;  aug.rotation_deg = 25;  aug.hflip = true;
//   set.set_augment(aug);
//   tagnet::fit(model, set, nullptr, adam, loss, options, ctx, nullptr);
#pragma once

#include <string>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"

namespace tagnet {

// Examples addressed by index; a source fills batches of inputs and targets.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual size_t size() const = 0;
  // Fills x (B, H, W, C) and y (B, F) for the examples `indices`. `augment` asks for a fresh
  // random variant of each example, drawn from `rng`.
  virtual void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
                    bool augment) = 0;
};

class ImageSet : public BatchSource {
 public:
  ImageSet(const Shape& input, int outputs);   // input (H, W, C), C = 1 or 3

  // Resizes and converts the picture now; `target` has `outputs` values.
  void add(const Image& picture, const std::vector<float>& target);
  size_t size() const override { return targets_.size() / F_; }
  int outputs() const { return F_; }
  const Shape& input_shape() const { return input_; }
  const float* target(size_t i) const { return targets_.data() + i * F_; }
  // The stored picture i at model size, (H, W, C) bytes.
  const uint8_t* pixels(size_t i) const { return pixels_.data() + i * input_.numel(); }

  void set_augment(const Augment& a) { augment_ = a; }
  const Augment& augment() const { return augment_; }

  // The examples `indices`, in that order, as a new set (train/validation splits).
  ImageSet subset(const std::vector<size_t>& indices) const;

  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
            bool augment) override;

 private:
  Shape input_;
  int F_;
  std::vector<uint8_t> pixels_;   // (N, H, W, C), quantised to bytes to keep memory small
  std::vector<float> targets_;    // (N, F)
  Augment augment_;
};

// One probability per label from a model's raw outputs: softmax and sigmoid outputs as they
// are; a single logit (two classes) becomes {1 - p, p} with p = sigmoid(logit).
std::vector<float> label_probabilities(Head head, const float* outputs, int count);

// Preprocesses pictures as training did (resize, scale to [0, 1]) and returns, per picture,
// one probability per label.
std::vector<std::vector<float>> classify_images(Model& model, const std::vector<Image>& pictures,
                                                const Context& ctx);

}  // namespace tagnet
