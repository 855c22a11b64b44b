#include "tagnet/train/novelty.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "tagnet/train/finetune.h"

namespace tagnet {

namespace {

constexpr double kQuantile = 0.99;

// The features feeding the head in the model's last forward pass: (batch, D).
const Tensor& head_input(const Model& m) { return m.activation(head_start(m) - 1); }

}  // namespace

nlohmann::json NoveltyStats::to_json() const {
  return {{"means", means}, {"spread", spread}, {"threshold", threshold}, {"quantile", kQuantile}};
}

bool NoveltyStats::from_json(const nlohmann::json& j, int dims, NoveltyStats& out) {
  if (!j.is_object() || !j.contains("means") || !j.contains("spread") || !j.contains("threshold")) return false;
  NoveltyStats s;
  try {
    s.means = j["means"].get<std::vector<std::vector<float>>>();
    s.spread = j["spread"].get<std::vector<float>>();
    s.threshold = j["threshold"].get<float>();
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  if (int(s.spread.size()) != dims || s.means.empty() || !(s.threshold > 0)) return false;
  for (const auto& m : s.means)
    if (int(m.size()) != dims) return false;
  for (float v : s.spread)
    if (!(v > 0)) return false;
  out = std::move(s);
  return true;
}

float NoveltyStats::novelty(const float* f) const {
  double best = INFINITY;
  const size_t D = spread.size();
  for (const auto& m : means) {
    double d = 0;
    for (size_t i = 0; i < D; ++i) {
      const double z = (f[i] - m[i]) / spread[i];
      d += z * z;
    }
    best = std::min(best, d);
  }
  return float(std::sqrt(best / double(D)) / threshold);
}

NoveltyStats novelty_statistics(const float* features, size_t n, int dims, const std::vector<int>& group) {
  NoveltyStats s;
  if (n == 0 || dims < 1) return s;
  const size_t D = size_t(dims);
  std::map<int, size_t> slot;
  for (size_t i = 0; i < n; ++i) slot.emplace(group[i], slot.size());
  std::vector<std::vector<double>> sum(slot.size(), std::vector<double>(D, 0.0));
  std::vector<double> count(slot.size(), 0.0);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = slot[group[i]];
    for (size_t d = 0; d < D; ++d) sum[g][d] += features[i * D + d];
    count[g] += 1;
  }
  for (size_t g = 0; g < sum.size(); ++g) {
    std::vector<float> m(D);
    for (size_t d = 0; d < D; ++d) m[d] = float(sum[g][d] / count[g]);
    s.means.push_back(std::move(m));
  }
  // The spread of each feature around its group's mean, pooled over the groups; a floor keeps
  // features that hardly vary (units that never fire) from dominating.
  std::vector<double> var(D, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const auto& m = s.means[slot[group[i]]];
    for (size_t d = 0; d < D; ++d) {
      const double e = features[i * D + d] - m[d];
      var[d] += e * e;
    }
  }
  double mean_spread = 0;
  s.spread.resize(D);
  for (size_t d = 0; d < D; ++d) {
    s.spread[d] = float(std::sqrt(var[d] / double(n)));
    mean_spread += s.spread[d];
  }
  mean_spread /= double(D);
  for (float& v : s.spread) v = std::max(v, float(0.1 * mean_spread) + 1e-6f);
  std::vector<float> distances(n);
  s.threshold = 1;
  for (size_t i = 0; i < n; ++i) distances[i] = s.novelty(features + i * D);
  const size_t k = std::min(n - 1, size_t(kQuantile * double(n)));
  std::nth_element(distances.begin(), distances.begin() + long(k), distances.end());
  s.threshold = std::max(distances[k], 1e-6f);
  return s;
}

void learn_novelty(Model& model, BatchSource& pictures, const Context& ctx, int batch_size) {
  const size_t n = pictures.size();
  const size_t hs = head_start(model);
  if (hs == 0 || n == 0) return;
  std::vector<float> features;
  std::vector<int> group;
  std::map<std::vector<float>, int> groups;
  Context c = ctx;
  c.training = false;
  Rng rng(0);
  Tensor x, y;
  int D = 0;
  for (size_t start = 0; start < n; start += size_t(batch_size)) {
    std::vector<size_t> idx;
    for (size_t i = start; i < std::min(n, start + size_t(batch_size)); ++i) idx.push_back(i);
    pictures.fill(idx, x, y, rng, false);
    model.forward(x, c);
    const Tensor& f = head_input(model);
    D = int(f.size() / idx.size());
    features.insert(features.end(), f.data(), f.data() + f.size());
    const size_t F = y.size() / idx.size();
    for (size_t b = 0; b < idx.size(); ++b) {
      std::vector<float> key(y.data() + b * F, y.data() + (b + 1) * F);
      group.push_back(groups.emplace(std::move(key), int(groups.size())).first->second);
    }
  }
  model.card().novelty = novelty_statistics(features.data(), n, D, group).to_json();
}

std::vector<float> novelty_of_last_forward(const Model& model, size_t pictures) {
  std::vector<float> novelty(pictures, -1.f);
  if (pictures == 0 || model.card().novelty.is_null()) return novelty;
  const Tensor& f = head_input(model);
  const int D = int(f.size() / pictures);
  NoveltyStats s;
  if (!NoveltyStats::from_json(model.card().novelty, D, s)) return novelty;
  for (size_t i = 0; i < pictures; ++i) novelty[i] = s.novelty(f.data() + i * size_t(D));
  return novelty;
}

}  // namespace tagnet
