// Edge cases of the `hwy` backend's own kernels that a generic backend-vs-reference sweep
// can miss: channel counts that are not a multiple of the vector length, ties and
// overlapping windows in max pooling, extreme activations, badly conditioned batch-norm
// statistics, and results that must not depend on the thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels.h"
#include "per_hwy_target.h"
#include "thread_pool.h"

namespace tagnet::kern {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Values on a coarse grid so that pooling windows contain many equal maxima.
std::vector<float> Quantised(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-2, 2);
  std::vector<float> v(n);
  for (float& f : v) f = 0.5f * dist(rng);
  return v;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, float rtol,
                float atol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float tol = atol + rtol * std::fabs(want[i]);
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      if (++bad <= 5) ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << want[i];
    }
  }
  EXPECT_EQ(bad, 0u) << what;
}

PoolDims Pool(int N, int H, int W, int C, int P, int S) {
  PoolDims d{N, H, W, C, P, P, S, S, 0, 0};
  d.OH = (H - P) / S + 1;
  d.OW = (W - P) / S + 1;
  return d;
}

// Runs once per instruction set the CPU runs (per_hwy_target.h).
class HwyExtra : public PerHwyTarget {
 protected:
  ThreadPool pool1_{1}, pool2_{2};
  Exec e1_{&pool1_, 0}, e2_{&pool2_, 0};
  const Backend* hwy_ = GetParam().backend;
};
TAGNET_PER_HWY_TARGET(HwyExtra);

TEST_P(HwyExtra, Name) { EXPECT_STREQ(hwy_->name, "hwy"); }

TEST_P(HwyExtra, MaxPoolTiesTailsAndOverlap) {
  struct Case { int N, H, W, C, P, S; };
  // C = 3 and 13 leave a tail after whole vectors; 3x3/2 windows overlap; N = 1 with many
  // channels makes the backward pass split channels across threads.
  const Case cases[] = {{2, 8, 8, 3, 2, 2},   {3, 9, 7, 13, 3, 2}, {1, 17, 17, 40, 3, 2},
                        {4, 12, 12, 64, 2, 2}, {1, 6, 6, 1, 2, 1},  {2, 33, 33, 37, 3, 3},
                        {1, 64, 64, 32, 2, 2}, {1, 65, 65, 24, 3, 2}};
  for (const Case& c : cases) {
    const PoolDims d = Pool(c.N, c.H, c.W, c.C, c.P, c.S);
    const size_t nx = size_t(d.N) * d.H * d.W * d.C, ny = size_t(d.N) * d.OH * d.OW * d.C;
    const auto x = Quantised(nx, 1 + c.C);
    const auto dy = Random(ny, 2 + c.C);
    const auto dx0 = Random(nx, 3 + c.C);
    std::vector<float> y_ref(ny), dx_ref = dx0;
    maxpool_forward_ref(d, x.data(), y_ref.data());
    maxpool_backward_ref(d, x.data(), y_ref.data(), dy.data(), dx_ref.data());
    for (const Exec* e : {&e1_, &e2_}) {
      std::vector<float> y(ny, -7.0f), dx = dx0;
      OpStatePtr st;
      hwy_->maxpool_forward(d, x.data(), y.data(), st, *e);
      hwy_->maxpool_backward(d, x.data(), y.data(), dy.data(), dx.data(), *e);
      EXPECT_EQ(y, y_ref) << "forward C=" << c.C;
      EXPECT_EQ(dx, dx_ref) << "backward C=" << c.C << " P=" << c.P << " S=" << c.S;
    }
  }
}

TEST_P(HwyExtra, GlobalAveragePool) {
  for (int C : {1, 5, 16, 67}) {
    for (int N : {1, 3, 64}) {
      const int HW = 49;
      const auto x = Random(size_t(N) * HW * C, 10 + C);
      const auto dy = Random(size_t(N) * C, 11 + C);
      const auto dx0 = Random(size_t(N) * HW * C, 12 + C);
      std::vector<float> y_ref(size_t(N) * C), dx_ref = dx0;
      gap_forward_ref(N, HW, C, x.data(), y_ref.data());
      gap_backward_ref(N, HW, C, dy.data(), dx_ref.data());
      for (const Exec* e : {&e1_, &e2_}) {
        std::vector<float> y(y_ref.size()), dx = dx0;
        OpStatePtr st;
        hwy_->gap_forward(N, HW, C, x.data(), y.data(), st, *e);
        hwy_->gap_backward(N, HW, C, dy.data(), dx.data(), *e);
        ExpectNear(y, y_ref, 1e-5f, 1e-6f, "gap forward");
        ExpectNear(dx, dx_ref, 1e-5f, 1e-6f, "gap backward");
      }
    }
  }
}

TEST_P(HwyExtra, ActivationsExtremeAndOddLengths) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{1001}, size_t{300007}}) {
    auto x = Random(n, 20, -30.0f, 30.0f);
    // Far outside exp's range in both directions; sigmoid must saturate, not overflow.
    const float extremes[] = {-1e30f, -200.0f, -104.5f, -88.0f, 0.0f, -0.0f, 88.0f, 200.0f, 1e30f};
    for (size_t i = 0; i < std::min<size_t>(n, 9); ++i) x[i] = extremes[i];
    const auto dy = Random(n, 21);
    const auto dx0 = Random(n, 22);
    for (const Exec* e : {&e1_, &e2_}) {
      OpStatePtr st;
      std::vector<float> y(n), y_ref(n);
      relu_forward_ref(n, x.data(), y_ref.data());
      hwy_->relu_forward(n, x.data(), y.data(), st, *e);
      EXPECT_EQ(y, y_ref) << "relu forward n=" << n;
      std::vector<float> dx = dx0, dx_ref = dx0;
      relu_backward_ref(n, y_ref.data(), dy.data(), dx_ref.data());
      hwy_->relu_backward(n, y_ref.data(), dy.data(), dx.data(), *e);
      EXPECT_EQ(dx, dx_ref) << "relu backward n=" << n;

      sigmoid_forward_ref(n, x.data(), y_ref.data());
      hwy_->sigmoid_forward(n, x.data(), y.data(), st, *e);
      for (float v : y) ASSERT_TRUE(std::isfinite(v) && v >= 0.0f && v <= 1.0f) << v;
      ExpectNear(y, y_ref, 1e-5f, 1e-30f, "sigmoid forward");
      dx = dx0;
      dx_ref = dx0;
      sigmoid_backward_ref(n, y_ref.data(), dy.data(), dx_ref.data());
      hwy_->sigmoid_backward(n, y_ref.data(), dy.data(), dx.data(), *e);
      ExpectNear(dx, dx_ref, 1e-5f, 1e-6f, "sigmoid backward");
    }
  }
}

TEST_P(HwyExtra, SoftmaxWideRangeAndShapes) {
  struct Case { int rows, cols; float scale; };
  const Case cases[] = {{5, 1, 1.0f}, {9, 7, 50.0f}, {64, 10, 1e4f}, {3, 1000, 20.0f},
                        {2048, 100, 5.0f}};
  for (const Case& c : cases) {
    const size_t n = size_t(c.rows) * c.cols;
    auto x = Random(n, 30 + c.cols, -c.scale, c.scale);
    const auto dy = Random(n, 31 + c.cols);
    const auto dx0 = Random(n, 32 + c.cols);
    std::vector<float> y_ref(n), dx_ref = dx0;
    softmax_forward_ref(c.rows, c.cols, x.data(), y_ref.data());
    softmax_backward_ref(c.rows, c.cols, y_ref.data(), dy.data(), dx_ref.data());
    for (const Exec* e : {&e1_, &e2_}) {
      std::vector<float> y(n), dx = dx0;
      OpStatePtr st;
      hwy_->softmax_forward(c.rows, c.cols, x.data(), y.data(), st, *e);
      for (float v : y) ASSERT_TRUE(std::isfinite(v));
      ExpectNear(y, y_ref, 1e-5f, 1e-7f, "softmax forward");
      hwy_->softmax_backward(c.rows, c.cols, y_ref.data(), dy.data(), dx.data(), *e);
      ExpectNear(dx, dx_ref, 1e-5f, 1e-6f, "softmax backward");
    }
  }
}

// Statistics in double straight from the definition, as the accuracy yardstick.
void ExactStats(int M, int C, const std::vector<float>& x, std::vector<double>& mean,
                std::vector<double>& var) {
  mean.assign(C, 0.0);
  var.assign(C, 0.0);
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) mean[c] += x[size_t(i) * C + c];
  for (int c = 0; c < C; ++c) mean[c] /= M;
  for (int i = 0; i < M; ++i)
    for (int c = 0; c < C; ++c) {
      const double t = x[size_t(i) * C + c] - mean[c];
      var[c] += t * t;
    }
  for (int c = 0; c < C; ++c) var[c] /= M;
}

TEST_P(HwyExtra, BatchNormAccuracyAndThreadInvariance) {
  struct Case { int M, C; float offset, spread; };
  // A mean far larger than the spread is where one-pass variance formulas break down.
  const Case cases[] = {{1, 3, 0.0f, 1.0f},       {37, 5, 0.0f, 1.0f},    {1000, 13, 3.0f, 2.0f},
                        {32768, 64, 100.0f, 0.1f}, {4096, 67, -50.0f, 0.5f}, {8192, 8, 0.0f, 1e-3f}};
  for (const Case& c : cases) {
    const size_t n = size_t(c.M) * c.C;
    auto x = Random(n, 40 + c.C, c.offset - c.spread, c.offset + c.spread);
    const auto gamma = Random(c.C, 41, 0.5f, 1.5f);
    const auto beta = Random(c.C, 42);
    const auto dy = Random(n, 43);
    const auto dx0 = Random(n, 44);
    const float eps = 1e-5f;

    std::vector<double> mean_x, var_x;
    ExactStats(c.M, c.C, x, mean_x, var_x);

    std::vector<float> y_ref(n), mean_ref(c.C), invstd_ref(c.C);
    batchnorm_forward_train_ref(c.M, c.C, x.data(), gamma.data(), beta.data(), eps, y_ref.data(),
                                mean_ref.data(), invstd_ref.data());
    std::vector<float> dx_ref = dx0, dg_ref(c.C), db_ref(c.C);
    batchnorm_backward_ref(c.M, c.C, x.data(), dy.data(), gamma.data(), mean_ref.data(),
                           invstd_ref.data(), dx_ref.data(), dg_ref.data(), db_ref.data());

    std::vector<float> first_y, first_dx;
    for (const Exec* e : {&e1_, &e2_}) {
      std::vector<float> y(n), mean(c.C), invstd(c.C);
      hwy_->batchnorm_forward_train(c.M, c.C, x.data(), gamma.data(), beta.data(), eps, y.data(),
                                    mean.data(), invstd.data(), *e);
      for (int ch = 0; ch < c.C; ++ch) {
        EXPECT_NEAR(mean[ch], mean_x[ch], 1e-6 * (std::fabs(mean_x[ch]) + std::sqrt(var_x[ch])))
            << "channel " << ch;
        const double is = 1.0 / std::sqrt(var_x[ch] + eps);
        EXPECT_NEAR(invstd[ch], is, 1e-5 * is) << "channel " << ch;
      }
      ExpectNear(y, y_ref, 1e-5f, 1e-5f, "batchnorm forward");

      std::vector<float> dx = dx0, dg(c.C, 123.0f), db(c.C, -9.0f);
      hwy_->batchnorm_backward(c.M, c.C, x.data(), dy.data(), gamma.data(), mean_ref.data(),
                               invstd_ref.data(), dx.data(), dg.data(), db.data(), false, *e);
      const float sum_tol = 1e-5f * std::sqrt(float(c.M));
      ExpectNear(dg, dg_ref, 1e-5f, sum_tol, "dgamma");
      ExpectNear(db, db_ref, 1e-5f, sum_tol, "dbeta");
      ExpectNear(dx, dx_ref, 1e-5f, 1e-5f, "batchnorm dx");
      if (first_y.empty()) {
        first_y = y;
        first_dx = dx;
      } else {
        EXPECT_EQ(y, first_y) << "thread count changed the forward result";
        EXPECT_EQ(dx, first_dx) << "thread count changed the backward result";
      }
    }

    std::vector<float> y_inf(n), y_inf_ref(n);
    std::vector<float> mvar(c.C);
    for (int ch = 0; ch < c.C; ++ch) mvar[ch] = float(var_x[ch]);
    batchnorm_forward_infer_ref(c.M, c.C, x.data(), gamma.data(), beta.data(), mean_ref.data(),
                                mvar.data(), eps, y_inf_ref.data());
    hwy_->batchnorm_forward_infer(c.M, c.C, x.data(), gamma.data(), beta.data(), mean_ref.data(),
                                  mvar.data(), eps, y_inf.data(), e2_);
    ExpectNear(y_inf, y_inf_ref, 1e-5f, 1e-5f, "batchnorm infer");
  }
}

// With relu_input, BatchNorm's input gradient also takes the gate of the ReLU whose output x
// is: zero wherever x is not positive, the training-mode gradient elsewhere; the parameter
// gradients do not change.
TEST_P(HwyExtra, BatchNormBackwardCarriesTheReluGate) {
  const int M = 1000, C = 19;
  const size_t n = size_t(M) * C;
  auto x = Random(n, 60, -1.0f, 1.0f);
  for (float& v : x) v = std::max(v, 0.0f);   // a ReLU's output: about half are zero
  const auto gamma = Random(C, 61, 0.5f, 1.5f), beta = Random(C, 62), dy = Random(n, 63);
  std::vector<float> y(n), mean(C), invstd(C);
  batchnorm_forward_train_ref(M, C, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(),
                              mean.data(), invstd.data());
  std::vector<float> open(n), gated(n), dg_ref(C), db_ref(C);
  batchnorm_backward_ref(M, C, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                         open.data(), dg_ref.data(), db_ref.data(), false);
  batchnorm_backward_ref(M, C, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                         gated.data(), dg_ref.data(), db_ref.data(), true);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(gated[i], x[i] > 0.0f ? open[i] : 0.0f) << i;
  for (const Exec* e : {&e1_, &e2_}) {
    std::vector<float> dx(n, 7.0f), dg(C), db(C);
    hwy_->batchnorm_backward(M, C, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                             dx.data(), dg.data(), db.data(), true, *e);
    ExpectNear(dx, gated, 1e-5f, 1e-5f, "gated batchnorm dx");
    for (size_t i = 0; i < n; ++i)
      if (!(x[i] > 0.0f)) ASSERT_EQ(dx[i], 0.0f) << i;
    const float sum_tol = 1e-5f * std::sqrt(float(M));
    ExpectNear(dg, dg_ref, 1e-5f, sum_tol, "dgamma");
    ExpectNear(db, db_ref, 1e-5f, sum_tol, "dbeta");
  }
}

}  // namespace
}  // namespace tagnet::kern
