#include "tagnet/train/bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels.h"
#include "tagnet/nn/architectures.h"

namespace tagnet {

namespace {

using clock_type = std::chrono::steady_clock;

// Median seconds of fn() over repeated runs within the budget (one warm-up run first).
template <typename F>
double time_median(F&& fn, double budget) {
  fn();
  std::vector<double> t;
  const auto start = clock_type::now();
  do {
    const auto a = clock_type::now();
    fn();
    t.push_back(std::chrono::duration<double>(clock_type::now() - a).count());
  } while (t.size() < 3 ||
           (std::chrono::duration<double>(clock_type::now() - start).count() < budget && t.size() < 1000));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Multiply-adds x2 of a layer's forward pass for a batch; backward is twice that.
double layer_flops(const Layer& l, int N) {
  if (l.kind() == LayerKind::kConv2D) {
    const Shape& o = l.output_shape;
    return 2.0 * N * o[0] * o[1] * o[2] * (l.params()[0].shape.numel() / o[2]);
  }
  if (l.kind() == LayerKind::kDense) return 2.0 * N * l.params()[0].shape.numel();
  return 0;
}

nlohmann::json bench_network(const Engine& engine, const std::string& arch, const ArchOptions& ao,
                             const BenchOptions& o) {
  Model m = make_architecture(arch, ao);
  m.build(1);
  const LossKind loss = loss_for(ao.head);
  Rng rng(7);
  const int B = 32;
  Tensor x32(m.input_shape().batched(B)), x1(m.input_shape().batched(1));
  for (size_t i = 0; i < x32.size(); ++i) x32.at(i) = rng.uniform();
  for (size_t i = 0; i < x1.size(); ++i) x1.at(i) = x32.at(i);
  const int F = m.output_shape()[0];
  Tensor y({B, F});
  for (int n = 0; n < B; ++n) {
    if (ao.head == Head::kSoftmax) y.at(size_t(n) * F + rng.below(F)) = 1.f;
    else for (int f = 0; f < F; ++f) y.at(size_t(n) * F + f) = rng.uniform() < 0.3f ? 1.f : 0.f;
  }
  Adam adam;
  Context ctx{&engine, false, &rng, 0};
  nlohmann::json r;
  r["params"] = m.param_count();
  const double train_s = time_median([&] { m.train_step(x32, y, loss, adam, ctx); }, o.seconds_per_figure);
  r["train_images_per_s"] = B / train_s;
  r["train_batch_ms"] = train_s * 1000;
  const double b1 = time_median([&] { m.forward(x1, ctx); }, o.seconds_per_figure);
  r["infer_b1_ms"] = b1 * 1000;
  const double b32 = time_median([&] { m.forward(x32, ctx); }, o.seconds_per_figure);
  r["infer_b32_images_per_s"] = B / b32;

  if (o.per_layer) {
    // Each layer timed alone on the activations of a training forward pass.
    m.compute_gradients(x32, y, loss, ctx);
    nlohmann::json layers = nlohmann::json::array();
    BackwardContext bc;
    static_cast<Context&>(bc) = ctx;
    bc.training = true;
    Context fc = bc;
    for (size_t i = 0; i < m.num_layers(); ++i) {
      Layer& l = m.layer(i);
      const Tensor& in = i == 0 ? x32 : m.activation(i - 1);
      Tensor out, dy(m.activation(i).shape()), dx(in.shape());
      for (size_t k = 0; k < dy.size(); ++k) dy.at(k) = rng.uniform(-1, 1);
      const double budget = o.seconds_per_figure / 8;
      const double fwd = time_median([&] { l.forward(in, out, fc); }, budget);
      const double bwd = time_median([&] { l.backward(in, out, dy, i ? &dx : nullptr, bc); }, budget);
      const double flops = layer_flops(l, B);
      nlohmann::json lj = {{"name", l.name}, {"type", l.type()}, {"forward_ms", fwd * 1000},
                           {"backward_ms", bwd * 1000}};
      if (flops > 0) {
        lj["forward_gflops"] = flops / fwd * 1e-9;
        lj["backward_gflops"] = (i ? 2 : 1) * flops / bwd * 1e-9;
      }
      layers.push_back(lj);
    }
    r["layers"] = layers;
  }
  return r;
}

}  // namespace

nlohmann::json run_bench(const Engine& engine, const BenchOptions& o) {
  nlohmann::json r;
  r["backend"] = engine.backend_name();
  r["threads"] = engine.threads();
  r["instruction_set"] = engine.instruction_set();
  r["engine"] = engine.describe();
  {
    const int n = 1024;
    std::vector<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
    Rng rng(3);
    for (auto& v : a) v = rng.uniform(-1, 1);
    for (auto& v : b) v = rng.uniform(-1, 1);
    const kern::Exec e{&engine.pool(), 0};
    const double s = time_median(
        [&] { engine.backend().gemm(n, n, n, a.data(), n, 1, b.data(), n, 1, c.data(), n, false, e); },
        o.seconds_per_figure);
    r["gemm_gflops"] = 2.0 * n * n * n / s * 1e-9;
  }
  if (o.smallervggnet)
    r["smallervggnet"] = bench_network(engine, "smallervggnet", {6, Head::kSigmoid, {}, -1}, o);
  if (o.fashionnet)
    r["fashionnet"] = bench_network(engine, "fashionnet", {10, Head::kSoftmax, {}, -1}, o);
  return r;
}

}  // namespace tagnet
