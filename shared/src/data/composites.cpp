#include "tagnet/data/composites.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace tagnet {

GridComposites::GridComposites(std::vector<uint8_t> pixels, std::vector<uint8_t> labels, int h, int w,
                               int classes, const Options& o)
    : pixels_(std::move(pixels)), labels_(std::move(labels)), h_(h), w_(w), classes_(classes), options_(o) {
  if (h < 1 || w < 1 || classes < 1) throw std::invalid_argument("composites: bad picture size or class count");
  if (o.grid < 1 || o.grid > 8) throw std::invalid_argument("composites: the grid must have 1 to 8 cells per side");
  const int cells = o.grid * o.grid;
  if (o.min_items < 0 || o.max_items < o.min_items || o.max_items > cells)
    throw std::invalid_argument("composites: items per picture must satisfy 0 <= min <= max <= " +
                                std::to_string(cells));
  if (labels_.empty()) throw std::invalid_argument("composites: no source pictures");
  if (pixels_.size() != labels_.size() * size_t(h) * size_t(w))
    throw std::invalid_argument("composites: " + std::to_string(labels_.size()) + " labels but " +
                                std::to_string(pixels_.size()) + " pixel bytes");
  for (uint8_t l : labels_)
    if (l >= classes) throw std::invalid_argument("composites: label " + std::to_string(l) + " out of range");
  if (o.count == 0) throw std::invalid_argument("composites: the set needs at least one picture");
}

GridComposites::Layout GridComposites::draw_layout(Rng& rng) const {
  const int cells = options_.grid * options_.grid;
  const int items = options_.min_items + static_cast<int>(rng.below(options_.max_items - options_.min_items + 1));
  std::vector<int> order(cells);
  std::iota(order.begin(), order.end(), 0);
  // A partial Fisher-Yates shuffle picks `items` distinct cells.
  for (int k = 0; k < items; ++k) std::swap(order[k], order[k + rng.below(cells - k)]);
  Layout out(cells, -1);
  for (int k = 0; k < items; ++k)
    out[order[k]] = static_cast<int64_t>(rng.below(static_cast<uint32_t>(labels_.size())));
  return out;
}

GridComposites::Layout GridComposites::layout(size_t i) const {
  // Decorrelates neighbouring indices and seeds before the first draw.
  Rng rng(options_.seed * 0x9E3779B97F4A7C15ull ^ (i + 1) * 0xD1B54A32D192ED03ull);
  rng.next();
  return draw_layout(rng);
}

void GridComposites::render(const Layout& layout, float* picture, float* target) const {
  const int G = options_.grid, H = G * h_, W = G * w_;
  std::fill(picture, picture + size_t(H) * W, 0.f);
  std::fill(target, target + classes_, 0.f);
  for (int cell = 0; cell < G * G; ++cell) {
    const int64_t src = layout[cell];
    if (src < 0) continue;
    const int r0 = (cell / G) * h_, c0 = (cell % G) * w_;
    const uint8_t* s = pixels_.data() + size_t(src) * h_ * w_;
    for (int r = 0; r < h_; ++r)
      for (int c = 0; c < w_; ++c) picture[size_t(r0 + r) * W + c0 + c] = s[r * w_ + c] * (1.f / 255.f);
    target[labels_[src]] = 1.f;
  }
}

void GridComposites::fill(const std::vector<size_t>& indices, Tensor& x, Tensor& y, Rng& rng, bool) {
  const int B = static_cast<int>(indices.size());
  const int H = height(), W = width();
  x.resize({B, H, W, 1});
  y.resize({B, classes_});
  for (int b = 0; b < B; ++b) {
    if (indices[b] >= size()) throw std::out_of_range("composite index out of range");
    const Layout l = options_.fresh ? draw_layout(rng) : layout(indices[b]);
    render(l, x.data() + size_t(b) * H * W, y.data() + size_t(b) * classes_);
  }
}

}  // namespace tagnet
