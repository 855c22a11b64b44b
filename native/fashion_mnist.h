// Fashion-MNIST from Debian's dataset-fashion-mnist IDX files, as the tutorial network sees it:
// each 28x28 picture pasted into one quadrant of a black 56x56 canvas, the quadrant drawn once
// per picture from a seeded generator, or afresh for every augmented batch (training sees every
// garment in every quadrant over the epochs, as the test set may place it).
#pragma once

#include <string>
#include <vector>

#include "tagnet/data/composites.h"
#include "tagnet/train/train.h"

namespace tagnet::native {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
extern const std::vector<std::string> kFashionMnistClasses;

struct IdxImages {
  int count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;   // (count, rows, cols)
};

// Reads a gzip-compressed (or plain) IDX file; throws std::runtime_error naming the file.
IdxImages read_idx_images(const std::string& path);
std::vector<uint8_t> read_idx_labels(const std::string& path);

class FashionMnistQuadrants : public BatchSource {
 public:
  // split: "train" or "test". limit > 0 keeps the first `limit` pictures.
  FashionMnistQuadrants(const std::string& dir, const std::string& split, uint64_t seed,
                        size_t limit = 0);
  size_t size() const override { return labels_.size(); }
  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
            bool augment) override;

 private:
  IdxImages images_;
  std::vector<uint8_t> labels_;
  std::vector<uint8_t> quadrant_;
};

// The 2x2 Fashion-MNIST pictures: 56x56, 0 to 4 garments of `split` ("train" or "test") in
// random cells; `fresh` draws a new set every epoch, else picture i is fixed by (seed, i).
// limit > 0 keeps the first `limit` source garments.
GridComposites make_fashion_2x2(const std::string& data_dir, const std::string& split, size_t count,
                                uint64_t seed, bool fresh, size_t limit = 0);

}  // namespace tagnet::native
