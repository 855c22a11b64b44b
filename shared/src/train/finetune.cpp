// The fine-tuning policy: see tagnet/train/finetune.h.
#include "tagnet/train/finetune.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace tagnet {

namespace {

bool is_kind(const Model& m, size_t i, LayerKind k) { return m.layer(i).kind() == k; }

bool is_pool(const Model& m, size_t i) { return is_kind(m, i, LayerKind::kMaxPool2D); }

}  // namespace

size_t head_start(const Model& m) {
  for (size_t i = m.num_layers(); i-- > 1;)
    if (is_kind(m, i, LayerKind::kDense)) return i;
  throw std::invalid_argument("the model has no Dense classifier head");
}

size_t base_end(const Model& m) {
  for (size_t i = 0; i < m.num_layers(); ++i)
    if (is_kind(m, i, LayerKind::kFlatten) || is_kind(m, i, LayerKind::kGlobalAvgPool2D)) {
      if (i == 0) break;
      return i;
    }
  throw std::invalid_argument(
      "the model has no convolutional base to cut off (no Flatten or GlobalAveragePooling2D after its first layer)");
}

size_t last_block_start(const Model& m, size_t n) {
  n = std::min(n, m.num_layers());
  // The pooling layer that ends the last block, then the one before it.
  size_t last_pool = n;
  for (size_t i = n; i-- > 0;)
    if (is_pool(m, i)) {
      last_pool = i;
      break;
    }
  if (last_pool == n) return 0;
  for (size_t i = last_pool; i-- > 0;)
    if (is_pool(m, i)) {
      for (size_t k = i + 1; k < last_pool; ++k)
        if (is_kind(m, k, LayerKind::kConv2D)) return k;
      return i + 1;
    }
  return 0;
}

size_t find_layer(const Model& m, const std::string& spec, const std::string& context,
                  const std::string& expected) {
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (spec.size() < 10) {
      const size_t i = std::stoul(spec);
      if (i < m.num_layers()) return i;
    }
  } else {
    for (size_t i = 0; i < m.num_layers(); ++i)
      if (m.layer(i).name == spec) return i;
  }
  std::string names;
  for (size_t i = 0; i < m.num_layers(); ++i) names += (i ? ", " : "") + std::to_string(i) + " " + m.layer(i).name;
  throw std::invalid_argument((context.empty() ? "" : context + " ") + spec + ": expected " + expected +
                              " (layers: " + names + ")");
}

size_t trainable_from(const Model& m, const std::string& part, size_t head_from, const std::string& context) {
  if (part == "as-saved") {
    size_t from = 0;
    while (from + 1 < m.num_layers() && !m.layer(from).trainable) ++from;
    return from;
  }
  if (part == "head" || part == "none") return head_from == kAtHead ? head_start(m) : head_from;
  if (part == "all") return 0;
  if (part == "last-block") return last_block_start(m, base_end(m));
  return find_layer(m, part, context, "none, head, last-block, all, as-saved or a layer index or name");
}

size_t set_trainable(Model& m, const std::string& part, size_t head_from, const std::string& context) {
  const size_t from = trainable_from(m, part, head_from, context);
  if (part != "as-saved") m.freeze_below(from);
  return from;
}

size_t cut_and_add_head(Model& m, size_t cut, int outputs, Head head, uint64_t seed, bool freeze_base) {
  if (!m.built()) throw std::logic_error("cut_and_add_head: the model is not built");
  if (cut == 0 || cut > m.num_layers())
    throw std::out_of_range("cannot cut a model of " + std::to_string(m.num_layers()) + " layers at layer " +
                            std::to_string(cut) + " (keep at least one layer)");
  if (head != Head::kLogit && outputs < 1) throw std::invalid_argument("a new head needs at least one output");
  const Shape out = m.layer(cut - 1).output_shape;
  m.truncate(cut);
  if (out.rank() > 1) m.add(std::make_unique<Flatten>());
  const size_t dense = m.num_layers();
  // Names not taken by the base, so the model file stays loadable.
  std::set<std::string> names;
  for (size_t i = 0; i < m.num_layers(); ++i) names.insert(m.layer(i).name);
  auto add_named = [&](std::unique_ptr<Layer> l, const std::string& base) {
    std::string n = base;
    for (int k = 1; names.count(n); ++k) n = base + "_" + std::to_string(k);
    names.insert(n);
    l->name = n;
    m.add(std::move(l));
  };
  add_named(std::make_unique<Dense>(head == Head::kLogit ? 1 : outputs), "dense");
  if (head == Head::kSoftmax) add_named(std::make_unique<Softmax>(), "softmax");
  if (head == Head::kSigmoid) add_named(std::make_unique<Sigmoid>(), "sigmoid");
  m.build(seed);
  m.freeze_below(freeze_base ? dense : 0);
  m.card().head = head;
  return dense;
}

Augment tutorial_augment() {
  Augment a;
  a.rotation_deg = 25;
  a.width_shift = 0.1f;
  a.height_shift = 0.1f;
  a.shear_deg = 0.2f;
  a.zoom = 0.2f;
  a.hflip = true;
  a.fill = FillMode::kNearest;
  return a;
}

}  // namespace tagnet
