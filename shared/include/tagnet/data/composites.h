// Pictures composed of small ones on a grid, labelled with the set of classes they show: the
// Fashion-MNIST multi-label tutorial's 2x2 pictures, each cell a garment or left black.
//
//   tagnet::GridComposites::Options o;          // 2x2 grid, 0 to 4 items per picture
//   o.count = 60000;  o.fresh = true;            // a new random set every epoch
//   tagnet::GridComposites train(pixels, labels, 28, 28, 10, o);
//   o.count = 10000;  o.fresh = false;  o.seed = 1;
//   tagnet::GridComposites test(test_pixels, test_labels, 28, 28, 10, o);   // fixed, seeded
#pragma once

#include <cstdint>
#include <vector>

#include "tagnet/data/dataset.h"

namespace tagnet {

class GridComposites : public BatchSource {
 public:
  struct Options {
    int grid = 2;            // cells per side: pictures are (grid*h, grid*w, 1)
    int min_items = 0, max_items = 4;
    size_t count = 1000;     // pictures per epoch (fresh) or in the set (fixed)
    uint64_t seed = 0;       // fixed sets: picture i depends only on (seed, i)
    // Draw every picture anew from the generator fill() is given (the tutorial's per-epoch
    // generator) instead of from (seed, index).
    bool fresh = false;
  };

  // pixels (M, h, w) bytes with labels (M,) in [0, classes). Throws std::invalid_argument for
  // inconsistent sizes or options.
  GridComposites(std::vector<uint8_t> pixels, std::vector<uint8_t> labels, int h, int w,
                 int classes, const Options& options);

  size_t size() const override { return options_.count; }
  int classes() const { return classes_; }
  int height() const { return options_.grid * h_; }
  int width() const { return options_.grid * w_; }

  // x (B, grid*h, grid*w, 1) scaled to [0, 1]; y (B, classes) with 1 for each class present.
  void fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng,
            bool augment) override;

  // What one picture holds: the source picture in each cell, -1 for an empty cell.
  using Layout = std::vector<int64_t>;   // (grid*grid,), row-major cells
  // The layout of picture i of a fixed set.
  Layout layout(size_t i) const;
  // A random layout: how many items, then distinct cells, then a source picture for each.
  Layout draw_layout(Rng& rng) const;
  // Renders a layout into (grid*h, grid*w) floats and its target into (classes,) floats.
  void render(const Layout& layout, float* picture, float* target) const;

 private:
  std::vector<uint8_t> pixels_, labels_;
  int h_, w_, classes_;
  Options options_;
};

}  // namespace tagnet
