// Kernel tests. RefKernels checks the oracle itself against hand-computed cases, adjoint
// identities and finite differences; KernelTest runs every Backend that this build has
// against the oracle, on odd sizes that leave vector tails and uneven thread splits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "kernel_tester.h"
#include "kernels.h"
#include "per_hwy_target.h"

namespace tagnet {
namespace kern {
namespace {

using ktest::Buf;
using ktest::MakeConvDims;
using ktest::MakePoolDims;
using ktest::Rng;

double Dot(const Buf& a, const Buf& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

Buf FromList(std::initializer_list<float> v) {
  Buf b(v.size());
  std::copy(v.begin(), v.end(), b.data());
  return b;
}

void ExpectEq(const Buf& got, std::initializer_list<float> want, float tol = 1e-6f) {
  ASSERT_EQ(got.size(), want.size());
  size_t i = 0;
  for (float w : want) {
    EXPECT_NEAR(got[i], w, tol) << "at " << i;
    ++i;
  }
}

// Central-difference gradient of loss(x) = sum(dy * f(x)) with respect to one operand.
Buf NumericGradient(Buf& v, const Buf& dy, const std::function<void(Buf&)>& f, float h) {
  Buf g(v.size()), y(dy.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float keep = v[i];
    v[i] = keep + h;
    f(y);
    const double up = Dot(dy, y);
    v[i] = keep - h;
    f(y);
    const double down = Dot(dy, y);
    v[i] = keep;
    g[i] = static_cast<float>((up - down) / (2.0 * h));
  }
  return g;
}

void ExpectNearBuf(const Buf& got, const Buf& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << " at " << i;
  }
}

// ---- the oracle ----

TEST(RefKernels, GemmByHand) {
  // A = [1 2 3; 4 5 6], B = [1 0; 0 1; 2 -1]  =>  A*B = [7 -1; 16 -1].
  const Buf A = FromList({1, 2, 3, 4, 5, 6});
  const Buf At = FromList({1, 4, 2, 5, 3, 6});  // A stored transposed (3, 2)
  const Buf B = FromList({1, 0, 0, 1, 2, -1});
  const Buf Bt = FromList({1, 0, 2, 0, 1, -1});  // B stored transposed (2, 3)
  Buf C(6, 9.0f);  // (2, ldc 3): the third column is padding
  gemm_ref(2, 2, 3, A.data(), 3, 1, B.data(), 2, 1, C.data(), 3, false);
  ExpectEq(C, {7, -1, 9, 16, -1, 9});
  gemm_ref(2, 2, 3, At.data(), 1, 2, Bt.data(), 1, 3, C.data(), 3, true);
  ExpectEq(C, {14, -2, 9, 32, -2, 9});
  Buf nan = ktest::NaNs(4);
  gemm_ref(2, 2, 3, A.data(), 3, 1, Bt.data(), 1, 3, nan.data(), 2, false);
  ExpectEq(nan, {7, -1, 16, -1});
}

TEST(RefKernels, Conv3x3ByHand) {
  // x = 1..9 in a 3x3 single-channel image, a Laplacian kernel, bias 0.5, padding 1.
  const ConvDims d = MakeConvDims(1, 3, 3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1);
  ASSERT_EQ(d.OH, 3);
  ASSERT_EQ(d.OW, 3);
  const Buf x = FromList({1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Buf w = FromList({0, 1, 0, 1, -4, 1, 0, 1, 0});
  const Buf b = FromList({0.5f});
  Buf y(9);
  conv2d_forward_ref(d, x.data(), w.data(), b.data(), Act::kNone, y.data());
  ExpectEq(y, {2.5f, 1.5f, -3.5f, -2.5f, 0.5f, -6.5f, -15.5f, -10.5f, -21.5f});
  conv2d_forward_ref(d, x.data(), w.data(), b.data(), Act::kRelu, y.data());
  ExpectEq(y, {2.5f, 1.5f, 0, 0, 0.5f, 0, 0, 0, 0});
}

TEST(RefKernels, ConvSamePaddingEvenKernelByHand) {
  // Keras "same" for a 2x2 kernel with stride 2 on 3x3 pads only bottom and right.
  const ConvDims d = MakeConvDims(1, 3, 3, 1, 1, 2, 2, 2, 2, 0, 0, 1, 1);
  ASSERT_EQ(d.OH, 2);
  ASSERT_EQ(d.OW, 2);
  const Buf x = FromList({1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Buf w = FromList({1, 1, 1, 1});
  const Buf b = FromList({0});
  Buf y(4);
  conv2d_forward_ref(d, x.data(), w.data(), b.data(), Act::kNone, y.data());
  ExpectEq(y, {12, 9, 15, 9});
}

TEST(RefKernels, ConvWeightLayoutIsKHWC) {
  // 1x1 kernel, C=2, K=3 on one pixel: y[k] = sum_c w[k][c] * x[c].
  const ConvDims d = MakeConvDims(1, 1, 1, 2, 3, 1, 1, 1, 1, 0, 0, 0, 0);
  const Buf x = FromList({2, 3});
  const Buf w = FromList({1, 0, 0, 1, 1, -1});
  const Buf b = FromList({0, 0, 10});
  Buf y(3);
  conv2d_forward_ref(d, x.data(), w.data(), b.data(), Act::kNone, y.data());
  ExpectEq(y, {2, 3, 9});
  // And a 1x2 kernel over two channels: w (1, 1, 2, 2) pairs (kw, c).
  const ConvDims d2 = MakeConvDims(1, 1, 2, 2, 1, 1, 2, 1, 1, 0, 0, 0, 0);
  const Buf x2 = FromList({1, 2, 3, 4});  // pixel 0: (1, 2), pixel 1: (3, 4)
  const Buf w2 = FromList({1, 10, 100, 1000});
  Buf y2(1);
  conv2d_forward_ref(d2, x2.data(), w2.data(), FromList({0}).data(), Act::kNone, y2.data());
  ExpectEq(y2, {1 + 20 + 300 + 4000});
}

// For a linear map y = conv(x, w): <dy, y> = <dx, x> = <dw, w>, and db sums dy per channel.
TEST(RefKernels, ConvBackwardIsTheAdjoint) {
  Rng rng(11);
  const ConvDims d = MakeConvDims(2, 7, 9, 3, 5, 3, 2, 2, 1, 1, 0, 1, 1);
  Buf x = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
  Buf w = rng.Make(static_cast<size_t>(d.K) * d.R());
  const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
  Buf y(ny), dy = rng.Make(ny), dx(x.size(), 0.0f), dw(w.size()), db(d.K);
  conv2d_forward_ref(d, x.data(), w.data(), nullptr, Act::kNone, y.data());  // no bias
  conv2d_backward_data_ref(d, dy.data(), w.data(), dx.data());
  conv2d_backward_filter_ref(d, x.data(), dy.data(), dw.data(), db.data());
  const double ref = Dot(dy, y);
  EXPECT_NEAR(Dot(dx, x), ref, 1e-4 * (1 + std::fabs(ref)));
  EXPECT_NEAR(Dot(dw, w), ref, 1e-4 * (1 + std::fabs(ref)));
  for (int k = 0; k < d.K; ++k) {
    double s = 0.0;
    for (size_t i = k; i < ny; i += d.K) s += dy[i];
    EXPECT_NEAR(db[k], s, 1e-5);
  }
  // A null db is allowed.
  conv2d_backward_filter_ref(d, x.data(), dy.data(), dw.data(), nullptr);
  EXPECT_NEAR(Dot(dw, w), ref, 1e-4 * (1 + std::fabs(ref)));
}

TEST(RefKernels, DenseByHandAndAdjoint) {
  // x (1, 2) = [1 2], w (3, 2) = [1 1; 2 -1; 0 3], b = [0 1 -7].
  const Buf x = FromList({1, 2}), w = FromList({1, 1, 2, -1, 0, 3}), b = FromList({0, 1, -7});
  Buf y(3);
  dense_forward_ref(1, 2, 3, x.data(), w.data(), b.data(), Act::kNone, y.data());
  ExpectEq(y, {3, 1, -1});
  dense_forward_ref(1, 2, 3, x.data(), w.data(), b.data(), Act::kRelu, y.data());
  ExpectEq(y, {3, 1, 0});

  Rng rng(12);
  const int N = 5, I = 7, O = 3;
  Buf xr = rng.Make(N * I), wr = rng.Make(O * I), yr(N * O);
  Buf dy = rng.Make(N * O), dx(N * I, 0.0f), dw(O * I), db(O);
  dense_forward_ref(N, I, O, xr.data(), wr.data(), nullptr, Act::kNone, yr.data());
  dense_backward_data_ref(N, I, O, dy.data(), wr.data(), dx.data());
  dense_backward_filter_ref(N, I, O, xr.data(), dy.data(), dw.data(), db.data());
  const double ref = Dot(dy, yr);
  EXPECT_NEAR(Dot(dx, xr), ref, 1e-5 * (1 + std::fabs(ref)));
  EXPECT_NEAR(Dot(dw, wr), ref, 1e-5 * (1 + std::fabs(ref)));
  for (int o = 0; o < O; ++o) {
    double s = 0.0;
    for (int n = 0; n < N; ++n) s += dy[n * O + o];
    EXPECT_NEAR(db[o], s, 1e-6);
  }
}

TEST(RefKernels, MaxPoolTieRouting) {
  // One channel, 4x4, 2x2 windows with stride 2. Windows: all-equal (gradient to the
  // top-left), max at the bottom-right, a tie between the bottom two, all negative.
  const PoolDims d = MakePoolDims(1, 4, 4, 1, 2, 2, 2, 2);
  ASSERT_EQ(d.OH, 2);
  ASSERT_EQ(d.OW, 2);
  const Buf x = FromList({5, 5, 1, 2,   //
                          5, 5, 3, 4,   //
                          0, 1, -3, -2, //
                          7, 7, -1, -1});
  Buf y(4);
  maxpool_forward_ref(d, x.data(), y.data());
  ExpectEq(y, {5, 4, 7, -1});
  const Buf dy = FromList({10, 20, 30, 40});
  Buf dx(16, 0.5f);
  maxpool_backward_ref(d, x.data(), y.data(), dy.data(), dx.data());
  ExpectEq(dx, {10, 0, 0, 0,  //
                0, 0, 0, 20,  //
                0, 0, 0, 0,   //
                30, 0, 40, 0});
}

TEST(RefKernels, MaxPoolOverlappingWindowsAndValidPadding) {
  // 3x3 windows with stride 2 on 5x6: OW = (6-3)/2+1 = 2, the last column is never covered.
  // The centre element (2, 2) is the maximum of all four windows and collects all of dy.
  const PoolDims d = MakePoolDims(1, 5, 6, 1, 3, 3, 2, 2);
  ASSERT_EQ(d.OH, 2);
  ASSERT_EQ(d.OW, 2);
  Buf x(30, 0.0f);
  x[2 * 6 + 2] = 9.0f;
  x[0 * 6 + 5] = 100.0f;  // outside every window
  Buf y(4);
  maxpool_forward_ref(d, x.data(), y.data());
  ExpectEq(y, {9, 9, 9, 9});
  const Buf dy = FromList({1, 2, 3, 4});
  Buf dx(30, 0.5f);  // overwritten, the uncovered column too
  maxpool_backward_ref(d, x.data(), y.data(), dy.data(), dx.data());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(dx[i], i == 2 * 6 + 2 ? 10.0f : 0.0f) << i;
}

TEST(RefKernels, GapByHand) {
  // N=1, HW=3, C=2.
  const Buf x = FromList({1, 10, 2, 20, 6, 60});
  Buf y(2);
  gap_forward_ref(1, 3, 2, x.data(), y.data());
  ExpectEq(y, {3, 30});
  Buf dx(6, 1.0f);
  gap_backward_ref(1, 3, 2, FromList({3, -6}).data(), dx.data());
  ExpectEq(dx, {1, -2, 1, -2, 1, -2});
}

TEST(RefKernels, ReluAndSigmoidByHand) {
  const Buf x = FromList({-2, -0.0f, 0, 3});
  Buf y(4);
  relu_forward_ref(4, x.data(), y.data());
  ExpectEq(y, {0, 0, 0, 3});
  Buf dx(4, 1.0f);
  relu_backward_ref(4, y.data(), FromList({5, 5, 5, 5}).data(), dx.data());
  ExpectEq(dx, {0, 0, 0, 5});

  const Buf xs = FromList({0, 100, -100, std::log(3.0f)});
  sigmoid_forward_ref(4, xs.data(), y.data());
  ExpectEq(y, {0.5f, 1, 0, 0.75f});
  Buf ds(4, 1.0f);
  sigmoid_backward_ref(4, y.data(), FromList({4, 4, 4, 4}).data(), ds.data());
  ExpectEq(ds, {1, 0, 0, 0.75f});
}

TEST(RefKernels, SoftmaxRowsSumToOne) {
  Rng rng(13);
  const int rows = 5, cols = 11;
  Buf x = rng.Make(rows * cols, -30, 30), y(rows * cols);
  softmax_forward_ref(rows, cols, x.data(), y.data());
  for (int r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int c = 0; c < cols; ++c) {
      EXPECT_GE(y[r * cols + c], 0.0f);
      s += y[r * cols + c];
    }
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  // Logits far beyond exp()'s float range.
  const Buf big = FromList({1000, 1000, -1000, 0, std::log(3.0f), 0});
  Buf yb(6);
  softmax_forward_ref(2, 3, big.data(), yb.data());
  ExpectEq(yb, {0.5f, 0.5f, 0, 0.2f, 0.6f, 0.2f});
}

TEST(RefKernels, BatchNormNormalisesTheBatch) {
  Rng rng(14);
  const int M = 31, C = 3;
  Buf x = rng.Make(M * C, 2, 6), y(M * C), mean(C), invstd(C);
  const Buf ones(C, 1.0f), zeros(C, 0.0f);
  batchnorm_forward_train_ref(M, C, x.data(), ones.data(), zeros.data(), 1e-7f, y.data(),
                              mean.data(), invstd.data());
  for (int c = 0; c < C; ++c) {
    double s = 0.0, ss = 0.0, xs = 0.0;
    for (int m = 0; m < M; ++m) {
      s += y[m * C + c];
      ss += static_cast<double>(y[m * C + c]) * y[m * C + c];
      xs += x[m * C + c];
    }
    EXPECT_NEAR(s / M, 0.0, 1e-5) << c;
    EXPECT_NEAR(ss / M, 1.0, 1e-4) << c;  // biased variance
    EXPECT_NEAR(mean[c], xs / M, 1e-5) << c;
  }
  // gamma and beta scale and shift the normalised values.
  const Buf gamma = FromList({2, 0.5f, -1}), beta = FromList({1, -3, 0});
  Buf y2(M * C);
  batchnorm_forward_train_ref(M, C, x.data(), gamma.data(), beta.data(), 1e-7f, y2.data(),
                              mean.data(), invstd.data());
  for (int i = 0; i < M * C; ++i) {
    EXPECT_NEAR(y2[i], gamma[i % C] * y[i] + beta[i % C], 1e-5) << i;
  }
  // Two rows {0, 2}: mean 1, biased variance 1, invstd = 1/sqrt(1 + eps).
  const float eps = 0.25f;
  Buf m1(1), is1(1), y1(2);
  batchnorm_forward_train_ref(2, 1, FromList({0, 2}).data(), FromList({1}).data(),
                              FromList({0}).data(), eps, y1.data(), m1.data(), is1.data());
  EXPECT_FLOAT_EQ(m1[0], 1.0f);
  EXPECT_FLOAT_EQ(is1[0], 1.0f / std::sqrt(1.25f));
  ExpectEq(y1, {-1.0f / std::sqrt(1.25f), 1.0f / std::sqrt(1.25f)});
}

TEST(RefKernels, BatchNormInferByHand) {
  // x = 5 with moving mean 3, moving var 3.75 and eps 0.25: (5 - 3) / 2 = 1.
  Buf y(1);
  batchnorm_forward_infer_ref(1, 1, FromList({5}).data(), FromList({3}).data(),
                              FromList({-1}).data(), FromList({3}).data(), FromList({3.75f}).data(),
                              0.25f, y.data());
  ExpectEq(y, {2});
}

TEST(RefKernels, BatchNormBackwardInferMatchesFiniteDifferences) {
  // A frozen layer: the forward pass is batchnorm_forward_infer_ref.
  Rng rng(18);
  const int M = 5, C = 3;
  const float eps = 1e-3f;
  Buf x = rng.Make(M * C, -2, 2), dy = rng.Make(M * C);
  const Buf gamma = rng.Make(C, 0.5f, 1.5f), beta = rng.Make(C);
  const Buf mmean = rng.Make(C), mvar = rng.Make(C, 0.2f, 2.0f);
  Buf dx(M * C, 0.0f);
  batchnorm_backward_infer_ref(M, C, dy.data(), gamma.data(), mvar.data(), eps, dx.data());
  auto forward = [&](Buf& out) {
    batchnorm_forward_infer_ref(M, C, x.data(), gamma.data(), beta.data(), mmean.data(),
                                mvar.data(), eps, out.data());
  };
  ExpectNearBuf(dx, NumericGradient(x, dy, forward, 1e-2f), 2e-3, "dx");
}

TEST(RefKernels, DropoutAndIdentityByHand) {
  const Buf x = FromList({1, -2, 3, 4}), mask = FromList({0, 2, 0, 2});
  Buf y(4);
  dropout_forward_ref(4, x.data(), mask.data(), y.data());
  ExpectEq(y, {0, -4, 0, 8});
  Buf dx(4, 1.0f);
  dropout_backward_ref(4, mask.data(), FromList({5, 5, 5, 5}).data(), dx.data());
  ExpectEq(dx, {0, 10, 0, 10});
  identity_forward_ref(4, x.data(), y.data());
  ExpectEq(y, {1, -2, 3, 4});
  identity_backward_ref(4, x.data(), dx.data());
  ExpectEq(dx, {1, -2, 3, 4});
}

TEST(RefKernels, BatchNormBackwardMatchesFiniteDifferences) {
  Rng rng(15);
  const int M = 6, C = 3;
  const float eps = 1e-3f;
  Buf x = rng.Make(M * C, -2, 2), gamma = rng.Make(C, 0.5f, 1.5f), beta = rng.Make(C);
  Buf dy = rng.Make(M * C);
  Buf y(M * C), mean(C), invstd(C);
  auto forward = [&](Buf& out) {
    Buf mu(C), is(C);
    batchnorm_forward_train_ref(M, C, x.data(), gamma.data(), beta.data(), eps, out.data(),
                                mu.data(), is.data());
  };
  batchnorm_forward_train_ref(M, C, x.data(), gamma.data(), beta.data(), eps, y.data(),
                              mean.data(), invstd.data());
  Buf dx(M * C, 0.0f), dgamma(C), dbeta(C);
  batchnorm_backward_ref(M, C, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                         dx.data(), dgamma.data(), dbeta.data());
  ExpectNearBuf(dx, NumericGradient(x, dy, forward, 1e-2f), 2e-3, "dx");
  ExpectNearBuf(dgamma, NumericGradient(gamma, dy, forward, 1e-2f), 2e-3, "dgamma");
  ExpectNearBuf(dbeta, NumericGradient(beta, dy, forward, 1e-2f), 2e-3, "dbeta");
}

TEST(RefKernels, SoftmaxAndSigmoidBackwardMatchFiniteDifferences) {
  Rng rng(16);
  const int rows = 3, cols = 7;
  Buf x = rng.Make(rows * cols, -3, 3), dy = rng.Make(rows * cols), y(rows * cols);
  softmax_forward_ref(rows, cols, x.data(), y.data());
  Buf dx(rows * cols, 0.0f);
  softmax_backward_ref(rows, cols, y.data(), dy.data(), dx.data());
  auto softmax = [&](Buf& out) { softmax_forward_ref(rows, cols, x.data(), out.data()); };
  ExpectNearBuf(dx, NumericGradient(x, dy, softmax, 1e-2f), 2e-3, "softmax dx");

  const size_t n = 13;
  Buf xs = rng.Make(n, -5, 5), dys = rng.Make(n), ys(n), dxs(n, 0.0f);
  sigmoid_forward_ref(n, xs.data(), ys.data());
  sigmoid_backward_ref(n, ys.data(), dys.data(), dxs.data());
  auto sigmoid = [&](Buf& out) { sigmoid_forward_ref(n, xs.data(), out.data()); };
  ExpectNearBuf(dxs, NumericGradient(xs, dys, sigmoid, 1e-2f), 2e-3, "sigmoid dx");
}

// Every input-gradient kernel overwrites: running it on a pattern gives the gradient alone.
TEST(RefKernels, InputGradientsOverwriteDx) {
  Rng rng(17);
  auto check = [&](size_t n, const char* what, const std::function<void(float*)>& run) {
    Buf zero(n, 0.0f);
    run(zero.data());
    const Buf pattern = rng.Make(n);
    Buf got = pattern;
    run(got.data());
    size_t nonzero = 0;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(got[i], zero[i]) << what << " at " << i;
      nonzero += zero[i] != 0.0f;
    }
    EXPECT_GT(nonzero, 0u) << what << ": the gradient should not vanish on this input";
  };
  const ConvDims cd = MakeConvDims(2, 5, 7, 3, 4, 3, 3, 2, 1, 1, 1, 1, 1);
  Buf cdy = rng.Make(static_cast<size_t>(cd.N) * cd.OH * cd.OW * cd.K);
  Buf cw = rng.Make(static_cast<size_t>(cd.K) * cd.R());
  check(static_cast<size_t>(cd.N) * cd.H * cd.W * cd.C, "conv",
        [&](float* dx) { conv2d_backward_data_ref(cd, cdy.data(), cw.data(), dx); });
  Buf ddy = rng.Make(3 * 4), dw = rng.Make(4 * 5);
  check(3 * 5, "dense",
        [&](float* dx) { dense_backward_data_ref(3, 5, 4, ddy.data(), dw.data(), dx); });
  const PoolDims pd = MakePoolDims(2, 5, 5, 3, 2, 2, 2, 2);
  Buf px = rng.Make(2 * 5 * 5 * 3), py(2 * 2 * 2 * 3), pdy = rng.Make(2 * 2 * 2 * 3);
  maxpool_forward_ref(pd, px.data(), py.data());
  check(px.size(), "maxpool",
        [&](float* dx) { maxpool_backward_ref(pd, px.data(), py.data(), pdy.data(), dx); });
  Buf gdy = rng.Make(2 * 3);
  check(2 * 4 * 3, "gap", [&](float* dx) { gap_backward_ref(2, 4, 3, gdy.data(), dx); });
  Buf ax = rng.Make(20), ay(20), ady = rng.Make(20);
  relu_forward_ref(20, ax.data(), ay.data());
  check(20, "relu", [&](float* dx) { relu_backward_ref(20, ay.data(), ady.data(), dx); });
  sigmoid_forward_ref(20, ax.data(), ay.data());
  check(20, "sigmoid", [&](float* dx) { sigmoid_backward_ref(20, ay.data(), ady.data(), dx); });
  softmax_forward_ref(4, 5, ax.data(), ay.data());
  check(20, "softmax", [&](float* dx) { softmax_backward_ref(4, 5, ay.data(), ady.data(), dx); });
  Buf g = rng.Make(4, 0.5f, 1.5f), be = rng.Make(4), bm(4), bis(4), dg(4), dbt(4);
  batchnorm_forward_train_ref(5, 4, ax.data(), g.data(), be.data(), 1e-3f, ay.data(), bm.data(),
                              bis.data());
  check(20, "batchnorm", [&](float* dx) {
    batchnorm_backward_ref(5, 4, ax.data(), ady.data(), g.data(), bm.data(), bis.data(), dx,
                           dg.data(), dbt.data());
  });
  Buf mv = rng.Make(4, 0.2f, 2.0f);
  check(20, "frozen batchnorm", [&](float* dx) {
    batchnorm_backward_infer_ref(5, 4, ady.data(), g.data(), mv.data(), 1e-3f, dx);
  });
  Buf mask = rng.MakeInts(20, 0, 1);
  check(20, "dropout", [&](float* dx) { dropout_backward_ref(20, mask.data(), ady.data(), dx); });
  check(20, "identity", [&](float* dx) { identity_backward_ref(20, ady.data(), dx); });
}

TEST(RefKernels, TableWrapsTheRefKernels) {
  const Backend* be = backend_ref();
  ASSERT_NE(be, nullptr);
  EXPECT_STREQ(be->name, "ref");
  // relu and sigmoid slots share one type, so only their values show a swap.
  const Buf x = FromList({-1, 2});
  Buf y(2);
  OpStatePtr state;
  const Exec e = ktest::MakeExec(0);
  be->relu_forward(2, x.data(), y.data(), state, e);
  ExpectEq(y, {0, 2});
  be->sigmoid_forward(2, x.data(), y.data(), state, e);
  EXPECT_NEAR(y[0], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
}

// A backend may leave slots empty: they are the fallback's, and the slots it fills stay its own.
TEST(Backends, EmptySlotsAreTheFallbacks) {
  Backend partial{};
  partial.name = "partial";
  partial.relu_forward = backend_hwy()->relu_forward;
  const Backend whole = complete_backend(partial, *backend_ref());
  EXPECT_STREQ(whole.name, "partial");
  EXPECT_EQ(whole.relu_forward, backend_hwy()->relu_forward);
  EXPECT_EQ(whole.gemm, backend_ref()->gemm);
  EXPECT_EQ(whole.identity_backward, backend_ref()->identity_backward);
}

// ---- every backend against the oracle ----

// The hwy kernels once per instruction set the CPU runs.
std::vector<const Backend*> BackendsUnderTest() {
  std::vector<const Backend*> v = {backend_ref()};
  for (const HwyTarget& t : hwy_targets()) v.push_back(t.backend);
  if (const Backend* x = backend_xnnpack()) v.push_back(x);
  return v;
}

class KernelTest : public ::testing::TestWithParam<const Backend*> {
 protected:
  const Backend* be() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Backends, KernelTest, ::testing::ValuesIn(BackendsUnderTest()),
                         [](const ::testing::TestParamInfo<const Backend*>& info) {
                           return BackendLabel(info.param);
                         });

// A table filled by position that misses an entry leaves its last slots null, which would
// only show when that op first runs. The table is a name and function pointers, all of one size.
TEST_P(KernelTest, TableFillsEverySlot) {
  static_assert(std::is_standard_layout<Backend>::value, "Backend must stay a plain table");
  constexpr size_t kSlots = sizeof(Backend) / sizeof(void*);
  static_assert(kSlots * sizeof(void*) == sizeof(Backend), "every slot is one pointer wide");
  void* slots[kSlots];
  std::memcpy(slots, be(), sizeof(Backend));
  for (size_t i = 0; i < kSlots; ++i) {
    EXPECT_NE(slots[i], nullptr) << "slot " << i << " in the order of struct Backend (0 = name)";
  }
}

struct Mnk {
  int m, n, k;
};
// Odd sizes, degenerate ones, and ones large enough for the kernels' blocking and threads.
const Mnk kGemmSizes[] = {{1, 1, 1},    {7, 11, 13},   {1, 67, 31},   {67, 1, 17},
                          {31, 67, 1},  {17, 13, 131}, {131, 67, 67}, {67, 131, 523},
                          {257, 31, 7},  {13, 1031, 67}};

void TestGemm(const Backend* be, bool ta, bool tb) {
  for (const Mnk& s : kGemmSizes) {
    for (bool acc : {false, true}) {
      ktest::GemmTester().mnk(s.m, s.n, s.k).transpose_a(ta).transpose_b(tb).accumulate(acc).Test(
          be);
    }
  }
}

TEST_P(KernelTest, GemmNN) { TestGemm(be(), false, false); }
TEST_P(KernelTest, GemmNT) { TestGemm(be(), false, true); }
TEST_P(KernelTest, GemmTN) { TestGemm(be(), true, false); }
TEST_P(KernelTest, GemmTT) { TestGemm(be(), true, true); }

TEST_P(KernelTest, GemmDenseRows) {
  // Leading dimensions equal to the row length, as the layers call it.
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      ktest::GemmTester().mnk(31, 17, 67).transpose_a(ta).transpose_b(tb).row_padding(0).Test(
          be());
      ktest::GemmTester().mnk(67, 67, 13).transpose_a(ta).transpose_b(tb).row_padding(0)
          .accumulate(true).Test(be());
    }
  }
}

TEST_P(KernelTest, ConvSame3x3) {
  ktest::ConvTester().batch(2).hw(7, 9).channels(3, 5).kernel(3, 3).padding(1, 1, 1, 1).Test(be());
  ktest::ConvTester().batch(1).hw(13, 11).channels(1, 7).kernel(3, 3).padding(1, 1, 1, 1)
      .relu(true).Test(be());
  ktest::ConvTester().batch(3).hw(11, 7).channels(17, 13).kernel(3, 3).padding(1, 1, 1, 1)
      .relu(true).Test(be());
  ktest::ConvTester().batch(2).hw(9, 9).channels(5, 11).kernel(3, 3).padding(1, 1, 1, 1)
      .bias(false).Test(be());
  ktest::ConvTester().batch(1).hw(7, 13).channels(3, 7).kernel(3, 3).padding(1, 1, 1, 1)
      .bias(false).relu(true).Test(be());
}

// Patches of at most 8 values (FashionNet's first layer: 2x2 on one channel) take the direct
// path: output channels in whole vectors and a remainder, padding, strides, two channels.
TEST_P(KernelTest, ConvSmallPatch) {
  ktest::ConvTester().batch(3).hw(12, 10).channels(1, 16).kernel(2, 2).padding(0, 0, 1, 1)
      .relu(true).Test(be());
  ktest::ConvTester().batch(2).hw(9, 7).channels(1, 21).kernel(2, 2).padding(0, 0, 1, 1).Test(be());
  ktest::ConvTester().batch(2).hw(11, 8).channels(2, 5).kernel(2, 2).stride(2, 2).Test(be());
  ktest::ConvTester().batch(1).hw(7, 9).channels(1, 33).kernel(3, 2).stride(1, 2)
      .padding(1, 0, 1, 1).relu(true).Test(be());
}

TEST_P(KernelTest, ConvSameEvenKernel) {
  // Keras "same" for even kernels pads only bottom and right.
  ktest::ConvTester().batch(2).hw(7, 11).channels(3, 5).kernel(2, 2).padding(0, 0, 1, 1).Test(be());
  ktest::ConvTester().batch(1).hw(13, 13).channels(7, 11).kernel(2, 2).stride(2, 2)
      .padding(0, 0, 1, 1).relu(true).Test(be());
  ktest::ConvTester().batch(2).hw(9, 7).channels(5, 3).kernel(4, 4).padding(1, 1, 2, 2).Test(be());
  // Stride 2, kernel 3 on an even size: "same" pads 0 top/left, 1 bottom/right.
  ktest::ConvTester().batch(2).hw(14, 10).channels(3, 7).kernel(3, 3).stride(2, 2)
      .padding(0, 0, 1, 1).relu(true).Test(be());
}

TEST_P(KernelTest, ConvValidAndStrided) {
  ktest::ConvTester().batch(2).hw(7, 9).channels(3, 5).kernel(3, 2).stride(2, 1)
      .padding(1, 0, 1, 1).relu(true).Test(be());
  ktest::ConvTester().batch(1).hw(17, 13).channels(5, 7).kernel(5, 5).Test(be());
  ktest::ConvTester().batch(2).hw(13, 17).channels(3, 11).kernel(5, 3).stride(3, 2)
      .padding(2, 1, 2, 1).Test(be());
  ktest::ConvTester().batch(1).hw(11, 11).channels(2, 3).kernel(11, 11).Test(be());  // OH=OW=1
  ktest::ConvTester().batch(1).hw(7, 7).channels(3, 5).kernel(7, 1).padding(3, 0, 3, 0).Test(be());
}

TEST_P(KernelTest, ConvPointwise) {
  ktest::ConvTester().batch(2).hw(7, 11).channels(13, 17).kernel(1, 1).Test(be());
  ktest::ConvTester().batch(1).hw(13, 9).channels(31, 7).kernel(1, 1).stride(2, 2).relu(true)
      .Test(be());
  ktest::ConvTester().batch(3).hw(1, 1).channels(67, 31).kernel(1, 1).Test(be());
  ktest::ConvTester().batch(2).hw(5, 7).channels(11, 13).kernel(1, 1).bias(false).Test(be());
}

TEST_P(KernelTest, ConvLarger) {
  // Enough rows and channels for every blocking level and both threads.
  ktest::ConvTester().batch(2).hw(31, 31).channels(13, 17).kernel(3, 3).padding(1, 1, 1, 1)
      .relu(true).Test(be());
  ktest::ConvTester().batch(2).hw(13, 13).channels(31, 67).kernel(3, 3).padding(1, 1, 1, 1)
      .Test(be());
  ktest::ConvTester().batch(1).hw(31, 29).channels(1, 31).kernel(5, 5).padding(2, 2, 2, 2)
      .relu(true).Test(be());
}

TEST_P(KernelTest, Dense) {
  ktest::DenseTester().batch(7).inputs(67).outputs(13).Test(be());
  ktest::DenseTester().batch(1).inputs(1031).outputs(11).relu(true).Test(be());
  ktest::DenseTester().batch(31).inputs(17).outputs(1).Test(be());
  ktest::DenseTester().batch(2).inputs(1).outputs(67).relu(true).Test(be());
  ktest::DenseTester().batch(67).inputs(131).outputs(67).relu(true).Test(be());
  ktest::DenseTester().batch(13).inputs(523).outputs(257).Test(be());
  ktest::DenseTester().batch(7).inputs(31).outputs(11).bias(false).Test(be());
  ktest::DenseTester().batch(3).inputs(67).outputs(17).bias(false).relu(true).Test(be());
}

TEST_P(KernelTest, MaxPool2x2Stride2) {
  ktest::MaxPoolTester().batch(2).hw(7, 9).channels(3).pool(2, 2).stride(2, 2).Test(be());
  ktest::MaxPoolTester().batch(1).hw(31, 30).channels(17).pool(2, 2).stride(2, 2).Test(be());
  ktest::MaxPoolTester().batch(3).hw(8, 2).channels(67).pool(2, 2).stride(2, 2).Test(be());
}

TEST_P(KernelTest, MaxPool3x3Stride3) {
  ktest::MaxPoolTester().batch(2).hw(7, 11).channels(5).pool(3, 3).stride(3, 3).Test(be());
  ktest::MaxPoolTester().batch(1).hw(17, 13).channels(13).pool(3, 3).stride(3, 3).Test(be());
}

TEST_P(KernelTest, MaxPool3x3Stride2) {
  ktest::MaxPoolTester().batch(2).hw(7, 9).channels(3).pool(3, 3).stride(2, 2).Test(be());
  ktest::MaxPoolTester().batch(1).hw(13, 17).channels(31).pool(3, 3).stride(2, 2).Test(be());
}

TEST_P(KernelTest, MaxPoolTies) {
  ktest::MaxPoolTester().batch(2).hw(7, 9).channels(3).pool(2, 2).stride(2, 2).ties(true)
      .Test(be());
  ktest::MaxPoolTester().batch(2).hw(9, 7).channels(11).pool(3, 3).stride(3, 3).ties(true)
      .Test(be());
  ktest::MaxPoolTester().batch(1).hw(11, 13).channels(17).pool(3, 3).stride(2, 2).ties(true)
      .Test(be());
  ktest::MaxPoolTester().batch(1).hw(7, 7).channels(1).pool(2, 3).stride(1, 2).ties(true)
      .Test(be());
}

TEST_P(KernelTest, GlobalAveragePool) {
  ktest::GapTester().batch(2).hw(7, 7).channels(67).Test(be());
  ktest::GapTester().batch(3).hw(1, 1).channels(1).Test(be());
  ktest::GapTester().batch(1).hw(13, 11).channels(31).Test(be());
  ktest::GapTester().batch(5).hw(3, 3).channels(1031).Test(be());
}

TEST_P(KernelTest, Relu) {
  for (size_t n : {1, 7, 31, 67, 1031, 100003}) {
    ktest::ActivationTester().op(ktest::Pointwise::kRelu).size(n).Test(be());
  }
}

TEST_P(KernelTest, Sigmoid) {
  for (size_t n : {1, 7, 31, 67, 1031, 100003}) {
    ktest::ActivationTester().op(ktest::Pointwise::kSigmoid).size(n).Test(be());
  }
  // Saturated inputs must give 0 or 1, not NaN.
  ktest::ActivationTester().op(ktest::Pointwise::kSigmoid).size(67).range(120.0f).Test(be());
}

TEST_P(KernelTest, Softmax) {
  ktest::SoftmaxTester().rows(7).cols(11).Test(be());
  ktest::SoftmaxTester().rows(31).cols(1).Test(be());
  ktest::SoftmaxTester().rows(1).cols(67).Test(be());
  ktest::SoftmaxTester().rows(13).cols(1031).Test(be());
  ktest::SoftmaxTester().rows(67).cols(17).Test(be());
}

TEST_P(KernelTest, SoftmaxLargeLogits) {
  ktest::SoftmaxTester().rows(7).cols(13).range(200.0f).Test(be());
  ktest::SoftmaxTester().rows(3).cols(67).range(1000.0f).Test(be());
}

TEST_P(KernelTest, Dropout) {
  for (size_t n : {1, 7, 31, 67, 1031, 100003}) {
    ktest::DropoutTester().size(n).rate(0.3f).Test(be());
    ktest::DropoutTester().size(n).rate(0.0f).Test(be());  // the identity kernels
  }
  ktest::DropoutTester().size(1031).rate(0.9f).Test(be());
}

TEST_P(KernelTest, BatchNorm) {
  ktest::BatchNormTester().rows(2 * 7 * 7).channels(13).Test(be());
  ktest::BatchNormTester().rows(1031).channels(67).Test(be());
  ktest::BatchNormTester().rows(31).channels(1).offset(5.0f).Test(be());
  ktest::BatchNormTester().rows(7).channels(17).eps(1e-5f).Test(be());
  ktest::BatchNormTester().rows(1).channels(11).Test(be());  // a single row: variance 0
}

}  // namespace
}  // namespace kern
}  // namespace tagnet
