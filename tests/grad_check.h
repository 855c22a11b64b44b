// One finite-difference gradient checker for every layer and loss.
//
// The scalar checked is L = sum(y * r) for a fixed random r, so dL/dy = r. Derivatives are
// central differences in double of float forward passes. A point where the differences at
// eps and eps/2 disagree straddles a kink (ReLU at 0, a max-pool tie) and is skipped; at most
// a tenth of the points may be skipped.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tagnet/nn/model.h"

namespace tagnet::testing {

struct GradCheck {
  double eps = 1e-2;
  double rtol = 2e-2;     // relative to max(|analytic|, |numeric|, floor)
  double floor = 1e-2;
  int samples = 40;       // points checked per tensor
  bool training = true;
  float input_lo = -1.f, input_hi = 1.f;
};

// f(L) returns the scalar; `value` is perturbed in place. Compares analytic[i] against the
// central difference for `samples` indices of value.
inline void check_points(const std::string& what, float* value, const float* analytic, size_t n,
                         const std::function<double()>& f, const GradCheck& o, Rng& rng) {
  int skipped = 0, checked = 0;
  const int count = static_cast<int>(std::min<size_t>(n, o.samples));
  for (int s = 0; s < count; ++s) {
    const size_t i = n <= size_t(o.samples) ? size_t(s) : rng.below(static_cast<uint32_t>(n));
    const float orig = value[i];
    auto diff = [&](double eps) {
      value[i] = static_cast<float>(orig + eps);
      const double up = f();
      value[i] = static_cast<float>(orig - eps);
      const double down = f();
      value[i] = orig;
      const double h = (double(static_cast<float>(orig + eps)) - double(static_cast<float>(orig - eps)));
      return (up - down) / h;
    };
    const double num = diff(o.eps);
    const double num2 = diff(o.eps / 2);
    const double a = analytic[i];
    const double scale = std::max({std::abs(a), std::abs(num), o.floor});
    if (std::abs(num - num2) > o.rtol * scale) {
      ++skipped;   // a kink lies within eps
      continue;
    }
    ++checked;
    EXPECT_NEAR(a, num, o.rtol * scale) << what << " index " << i;
  }
  EXPECT_LE(skipped, std::max(1, count / 10)) << what << ": too many points at kinks";
  EXPECT_GT(checked, 0) << what;
}

// Builds a one-layer model around `layer` and checks d/dx and d/dparams.
inline void check_layer(std::unique_ptr<Layer> layer, const Shape& in, int N, const Engine& engine,
                        const GradCheck& o = {}, uint64_t seed = 1,
                        const std::function<void(Tensor&, Rng&)>& make_input = nullptr) {
  Model m(in);
  Layer& l = m.add(std::move(layer));
  m.build(seed);
  Rng rng(seed + 100);
  // Non-default parameter values, so gamma != 1, bias != 0 and so on are exercised.
  for (auto& p : l.params())
    for (size_t i = 0; i < p.value.size(); ++i)
      p.value.at(i) += p.trainable ? rng.uniform(-0.5f, 0.5f) : rng.uniform(0.f, 0.5f);
  Tensor x(in.batched(N));
  if (make_input) make_input(x, rng);
  else
    for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(o.input_lo, o.input_hi);
  Context ctx{&engine, o.training, &rng, 1};
  Tensor y;
  l.forward(x, y, ctx);
  Tensor r(y.shape());
  for (size_t i = 0; i < r.size(); ++i) r.at(i) = rng.uniform(-1.f, 1.f);
  auto loss = [&]() {
    Tensor yy;
    // check_points writes through pointers taken before the last forward; taking write access
    // again marks the weights changed.
    l.params();
    l.forward(x, yy, ctx);
    double s = 0;
    for (size_t i = 0; i < yy.size(); ++i) s += double(yy.at(i)) * r.at(i);
    return s;
  };
  // Forward again so the cached state matches x, then backward with dy = r.
  l.forward(x, y, ctx);
  Tensor dx(x.shape());
  dx.fill(0.25f);   // backward must OVERWRITE dx, whatever it held
  BackwardContext bc;
  static_cast<Context&>(bc) = ctx;
  l.backward(x, y, r, &dx, bc);
  check_points(l.type() + " dx", x.data(), dx.data(), x.size(), loss, o, rng);
  for (auto& p : l.params()) {
    if (!p.trainable || !l.trainable) continue;
    Tensor g = p.grad;   // a view: copy it out before the loss evaluations
    std::vector<float> analytic(g.data(), g.data() + g.size());
    check_points(l.type() + " d" + p.name, p.value.data(), analytic.data(), p.value.size(), loss, o, rng);
  }
}

}  // namespace tagnet::testing
