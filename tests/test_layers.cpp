// Every layer and loss through the finite-difference gradient checker, on every backend.
#include <gtest/gtest.h>

#include "grad_check.h"
#include "tagnet/nn/architectures.h"
#include "tagnet/nn/layers.h"
#include "tagnet/nn/loss.h"

namespace tagnet {
namespace {

using testing::check_layer;
using testing::GradCheck;

class LayerGrad : public ::testing::TestWithParam<std::string> {
 protected:
  Engine engine{Engine::Options{2, GetParam()}};
};

TEST_P(LayerGrad, Conv2DValid) {
  check_layer(std::make_unique<Conv2D>(5, 3, 1, Padding::kValid), {7, 6, 3}, 2, engine);
}

TEST_P(LayerGrad, Conv2DSameEvenKernelStride2Relu) {
  check_layer(std::make_unique<Conv2D>(4, 2, 2, Padding::kSame, Activation::kRelu), {7, 5, 3}, 2,
              engine);
}

TEST_P(LayerGrad, Conv2DSame3x3) {
  check_layer(std::make_unique<Conv2D>(6, 3, 1, Padding::kSame), {5, 7, 4}, 3, engine);
}

TEST_P(LayerGrad, Conv2DNoBias) {
  check_layer(std::make_unique<Conv2D>(3, 3, 2, Padding::kSame, Activation::kNone, false), {7, 7, 2},
              2, engine);
}

TEST_P(LayerGrad, DenseRelu) {
  check_layer(std::make_unique<Dense>(7, Activation::kRelu), {13}, 3, engine);
}

TEST_P(LayerGrad, Dense) { check_layer(std::make_unique<Dense>(5), {11}, 4, engine); }

TEST_P(LayerGrad, BatchNormTrainingConv) {
  GradCheck o;
  o.eps = 5e-3;
  check_layer(std::make_unique<BatchNorm>(), {3, 5, 7}, 4, engine, o);
}

TEST_P(LayerGrad, BatchNormTrainingDense) {
  GradCheck o;
  o.eps = 5e-3;
  check_layer(std::make_unique<BatchNorm>(), {9}, 6, engine, o);
}

TEST_P(LayerGrad, BatchNormInference) {
  GradCheck o;
  o.training = false;
  auto bn = std::make_unique<BatchNorm>();
  bn->trainable = false;   // inference mode
  check_layer(std::move(bn), {3, 3, 5}, 2, engine, o);
}

TEST_P(LayerGrad, ReLU) { check_layer(std::make_unique<ReLU>(), {4, 4, 3}, 2, engine); }
TEST_P(LayerGrad, Sigmoid) { check_layer(std::make_unique<Sigmoid>(), {17}, 3, engine); }
TEST_P(LayerGrad, Softmax) { check_layer(std::make_unique<Softmax>(), {11}, 3, engine); }

TEST_P(LayerGrad, MaxPool2x2) {
  check_layer(std::make_unique<MaxPool2D>(2), {7, 6, 3}, 2, engine);
}

TEST_P(LayerGrad, MaxPool3x3Stride3) {
  check_layer(std::make_unique<MaxPool2D>(3), {9, 10, 5}, 2, engine);
}

TEST_P(LayerGrad, MaxPool3x3Stride2Overlapping) {
  check_layer(std::make_unique<MaxPool2D>(3, 2), {7, 7, 2}, 2, engine);
}

TEST_P(LayerGrad, GlobalAvgPool) {
  check_layer(std::make_unique<GlobalAvgPool2D>(), {5, 3, 7}, 2, engine);
}

TEST_P(LayerGrad, Flatten) { check_layer(std::make_unique<Flatten>(), {3, 2, 5}, 2, engine); }

TEST_P(LayerGrad, DropoutWithFixedMask) {
  Model m({4, 4, 3});
  auto* d = static_cast<Dropout*>(&m.add(std::make_unique<Dropout>(0.4f)));
  m.build(1);
  Rng rng(5);
  Tensor x({2, 4, 4, 3}), y;
  d->forward(x, y, {&engine, true, &rng, 1});
  Tensor mask = d->mask();
  size_t zeros = 0;
  for (size_t i = 0; i < mask.size(); ++i) {
    EXPECT_TRUE(mask.at(i) == 0.f || std::abs(mask.at(i) - 1.f / 0.6f) < 1e-6);
    zeros += mask.at(i) == 0.f;
  }
  EXPECT_GT(zeros, 0u);
  EXPECT_LT(zeros, mask.size());
  auto fixed = std::make_unique<Dropout>(0.4f);
  fixed->set_mask(mask);
  check_layer(std::move(fixed), {4, 4, 3}, 2, engine);
}

INSTANTIATE_TEST_SUITE_P(Backends, LayerGrad, ::testing::ValuesIn(Engine::available_backends()),
                         [](const auto& info) { return info.param; });

TEST(Dropout, IdentityAtInferenceAndScaledInTraining) {
  Engine engine(Engine::Options{1, "ref"});
  Model m({1000});
  Layer& d = m.add(std::make_unique<Dropout>(0.3f));
  m.build(0);
  Tensor x({1, 1000}), y;
  x.fill(1.f);
  Rng rng(3);
  d.forward(x, y, {&engine, false, &rng, 1});
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y.at(i), 1.f);
  d.forward(x, y, {&engine, true, &rng, 1});
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) sum += y.at(i);
  EXPECT_NEAR(sum / 1000, 1.0, 0.1);   // inverted dropout keeps the mean
}

// Losses: analytic d(loss)/d(logits) against central differences, including extreme logits.
class LossGrad : public ::testing::TestWithParam<LossKind> {};

TEST_P(LossGrad, MatchesFiniteDifferences) {
  const LossKind kind = GetParam();
  const int N = 5, F = kind == LossKind::kBinaryCrossentropyFromLogits ? 1 : 4;
  Rng rng(11);
  Tensor z({N, F}), t({N, F}), dz;
  for (size_t i = 0; i < z.size(); ++i) z.at(i) = rng.uniform(-3, 3);
  for (int n = 0; n < N; ++n) {
    if (kind == LossKind::kCategoricalCrossentropy) t.at(size_t(n) * F + rng.below(F)) = 1.f;
    else for (int f = 0; f < F; ++f) t.at(size_t(n) * F + f) = rng.below(2);
  }
  loss_forward_backward(kind, z, t, &dz);
  std::vector<float> analytic(dz.data(), dz.data() + dz.size());
  GradCheck o;
  testing::check_points(loss_name(kind), z.data(), analytic.data(), z.size(),
                        [&] { return double(loss_forward_backward(kind, z, t, nullptr)); }, o, rng);
}

TEST_P(LossGrad, StableAtExtremeLogits) {
  const LossKind kind = GetParam();
  const int F = kind == LossKind::kBinaryCrossentropyFromLogits ? 1 : 3;
  Tensor z({2, F}), t({2, F}), dz;
  for (int f = 0; f < F; ++f) {
    z.at(f) = f == 0 ? 500.f : -500.f;
    z.at(F + f) = f == 0 ? -500.f : 500.f;
  }
  t.at(0) = 1.f;   // first example right with huge confidence, second wrong
  if (kind != LossKind::kBinaryCrossentropy) t.at(F) = 1.f;
  const float l = loss_forward_backward(kind, z, t, &dz);
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_GT(l, 100.f);   // the confidently wrong example costs ~500 / N
  for (size_t i = 0; i < dz.size(); ++i) EXPECT_TRUE(std::isfinite(dz.at(i)));
}

INSTANTIATE_TEST_SUITE_P(Kinds, LossGrad,
                         ::testing::Values(LossKind::kBinaryCrossentropy, LossKind::kCategoricalCrossentropy,
                                           LossKind::kBinaryCrossentropyFromLogits),
                         [](const auto& info) {
                           std::string s = loss_name(info.param);
                           s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
                           return s;
                         });

TEST(Loss, KnownValues) {
  // CCE of softmax([0, 0]) against class 0 is log 2; BCE of logit 0 is log 2.
  Tensor z({1, 2}), t({1, 2});
  t.at(0) = 1.f;
  EXPECT_NEAR(loss_forward_backward(LossKind::kCategoricalCrossentropy, z, t, nullptr), std::log(2.0), 1e-6);
  EXPECT_NEAR(loss_forward_backward(LossKind::kBinaryCrossentropy, z, t, nullptr), std::log(2.0), 1e-6);
}

TEST(Loss, RejectsMismatchedTargets) {
  Tensor z({2, 3}), t({2, 4});
  EXPECT_THROW(loss_forward_backward(LossKind::kBinaryCrossentropy, z, t, nullptr), std::invalid_argument);
}

// The whole model's gradient (conv, BN, pool, dense, fused softmax loss) against differences.
TEST(ModelGrad, SmallNetworkEndToEnd) {
  Engine engine(Engine::Options{2, "auto"});
  Model m({6, 6, 2});
  // Smooth layers only: a weight change moves every activation, so ReLU and max-pool kinks
  // would be crossed within eps somewhere; the layer tests cover those.
  m.add(std::make_unique<Conv2D>(3, 3, 1, Padding::kSame));
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<Conv2D>(4, 2, 2, Padding::kValid));
  m.add(std::make_unique<GlobalAvgPool2D>());
  m.add(std::make_unique<Dense>(4));
  m.add(std::make_unique<Softmax>());
  m.build(3);
  Rng rng(4);
  Tensor x({3, 6, 6, 2}), t({3, 4});
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(-1, 1);
  for (int n = 0; n < 3; ++n) t.at(size_t(n) * 4 + n) = 1.f;
  const Context ctx{&engine, true, &rng, 0};
  m.compute_gradients(x, t, LossKind::kCategoricalCrossentropy, ctx);
  std::vector<float> analytic(m.grad_arena(), m.grad_arena() + m.arena_size());
  GradCheck o;
  o.eps = 5e-3;
  o.samples = 60;
  // Only trainable parameter entries (BN moving statistics have no gradient).
  for (size_t li = 0; li < m.num_layers(); ++li)
    for (auto& p : m.layer(li).params()) {
      if (!p.trainable) continue;
      const size_t off = p.value.data() - m.param_arena();
      testing::check_points(m.layer(li).name + "/" + p.name, p.value.data(), analytic.data() + off,
                            p.value.size(),
                            [&] {
                              // check_points writes through a pointer taken before the last
                              // forward; taking write access again marks the weights changed.
                              m.layer(li).params();
                              return double(m.compute_gradients(x, t, LossKind::kCategoricalCrossentropy, ctx));
                            },
                            o, rng);
    }
}

}  // namespace
}  // namespace tagnet
