// gemm_hwy and the GEMM-based convolution and dense kernels against the reference kernels, on
// every instruction set the CPU runs:
// odd sizes that exercise every edge tile, all transpose combinations, accumulate on and off,
// one and two threads, and the network's layer shapes at batch 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "per_hwy_target.h"
#include "thread_pool.h"

namespace tagnet {
namespace kern {
namespace {

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

Exec Threaded(bool threaded) {
  Exec e;
  e.pool = threaded ? &Pool() : nullptr;
  return e;
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<float> Abs(std::vector<float> v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Every element within float rounding of a blocked sum: tol scales with the sum of the
// magnitudes of the terms (bound), not with the result, which may cancel to ~0.
::testing::AssertionResult Near(const std::vector<float>& got, const std::vector<float>& want,
                                const std::vector<float>& bound, double rtol = 2e-5) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size mismatch";
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rtol * bound[i] + 1e-6;
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
      return ::testing::AssertionFailure()
             << "at " << i << ": got " << got[i] << ", want " << want[i] << " (tol " << tol
             << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Every suite runs once per instruction set (per_hwy_target.h).
class ConvHwy : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(ConvHwy);
class DenseHwy : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(DenseHwy);
class GemmHwy : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(GemmHwy);

// One gemm_hwy case: A (M, K) stored transposed or not, B (K, N) likewise, C with a padded
// leading dimension whose padding must survive.
void CheckGemm(int M, int N, int K, bool ta, bool tb, bool accumulate, bool threaded) {
  SCOPED_TRACE("M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" +
               std::to_string(K) + " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
               " acc=" + std::to_string(accumulate) + " threads=" + std::to_string(threaded));
  // Leading dimensions one larger than needed, so strides are not the matrix widths.
  const long lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 1, ldc = N + 3;
  const std::vector<float> a = Random(static_cast<size_t>(ta ? K : M) * lda, 1 + M);
  const std::vector<float> b = Random(static_cast<size_t>(tb ? N : K) * ldb, 2 + N);
  const long rsa = ta ? 1 : lda, csa = ta ? lda : 1;
  const long rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
  std::vector<float> c0 = Random(static_cast<size_t>(M) * ldc, 3 + K);
  if (!accumulate) {
    // Overwritten outputs must not be read: NaN inside the matrix would poison the result.
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) c0[i * ldc + j] = kNaN;
  }
  std::vector<float> want = c0, got = c0;
  gemm_ref(M, N, K, a.data(), rsa, csa, b.data(), rsb, csb, want.data(), ldc, accumulate);
  test_hwy->gemm(M, N, K, a.data(), rsa, csa, b.data(), rsb, csb, got.data(), ldc, accumulate,
           Threaded(threaded));
  std::vector<float> bound = Abs(accumulate ? c0 : std::vector<float>(c0.size(), 0.0f));
  const std::vector<float> aa = Abs(a), ab = Abs(b);
  gemm_ref(M, N, K, aa.data(), rsa, csa, ab.data(), rsb, csb, bound.data(), ldc, true);
  for (int i = 0; i < M; ++i) {
    for (int j = N; j < ldc; ++j) {
      // Padding columns compare equal to their untouched selves (NaN-free by construction).
      bound[i * ldc + j] = 0.0f;
    }
  }
  EXPECT_TRUE(Near(got, want, bound));
}

TEST_P(GemmHwy, OddSizesAllTransposes) {
  const int sizes[] = {1, 2, 7, 13, 31, 67};
  for (int M : sizes)
    for (int N : sizes)
      for (int K : sizes)
        for (int t = 0; t < 4; ++t) CheckGemm(M, N, K, t & 1, t & 2, (M + N + K + t) % 2, false);
}

TEST_P(GemmHwy, LargerOddSizes) {
  const int shapes[][3] = {{129, 257, 67},  {257, 129, 257}, {257, 257, 1},  {1, 257, 257},
                           {257, 1, 129},   {67, 129, 257},  {129, 129, 129}, {257, 257, 257},
                           {2, 257, 129},   {257, 2, 13},    {31, 257, 257}, {257, 31, 129}};
  int i = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t, ++i)
      for (int threaded = 0; threaded < 2; ++threaded)
        CheckGemm(s[0], s[1], s[2], t & 1, t & 2, (i + threaded) % 2, threaded);
}

// Shapes that reach the blocked paths: several K blocks, B packed in several column blocks,
// a transposed C staged in several row blocks, and the thread splits over M and over N.
TEST_P(GemmHwy, BlockingPaths) {
  CheckGemm(7, 2100, 2100, false, false, true, true);
  CheckGemm(7, 2100, 2100, true, true, false, true);
  CheckGemm(32, 2500, 64, false, true, true, true);
  CheckGemm(2500, 32, 64, true, false, false, true);
  CheckGemm(12, 600, 300, false, false, false, true);
  CheckGemm(600, 12, 300, false, true, true, true);
  CheckGemm(300, 300, 1000, true, false, true, true);
}

TEST_P(GemmHwy, EmptyK) {
  std::vector<float> c(6, 5.0f);
  test_hwy->gemm(2, 3, 0, nullptr, 0, 1, nullptr, 3, 1, c.data(), 3, true, Threaded(true));
  EXPECT_EQ(c, std::vector<float>(6, 5.0f));
  test_hwy->gemm(2, 3, 0, nullptr, 0, 1, nullptr, 3, 1, c.data(), 3, false, Threaded(true));
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

ConvDims Conv(int N, int H, int W, int C, int K, int KH, int KW, int SH, int SW, int PT, int PL,
              int PB, int PR) {
  ConvDims d{N, H, W, C, K, KH, KW, SH, SW, PT, PL, PB, PR, 0, 0};
  d.OH = (H + PT + PB - KH) / SH + 1;
  d.OW = (W + PL + PR - KW) / SW + 1;
  return d;
}

// 'same' padding for stride 1 (the extra row/column of an even kernel goes bottom/right).
ConvDims Same(int N, int H, int W, int C, int K, int KS) {
  const int lo = (KS - 1) / 2, hi = KS - 1 - lo;
  return Conv(N, H, W, C, K, KS, KS, 1, 1, lo, lo, hi, hi);
}

std::string Describe(const ConvDims& d) {
  return "conv N" + std::to_string(d.N) + " " + std::to_string(d.H) + "x" + std::to_string(d.W) +
         "x" + std::to_string(d.C) + " -> K" + std::to_string(d.K) + " k" +
         std::to_string(d.KH) + "x" + std::to_string(d.KW) + " s" + std::to_string(d.SH) + "," +
         std::to_string(d.SW) + " p" + std::to_string(d.PT) + "," + std::to_string(d.PL) + "," +
         std::to_string(d.PB) + "," + std::to_string(d.PR);
}

void CheckConv(const ConvDims& d, bool threaded) {
  SCOPED_TRACE(Describe(d) + (threaded ? " threaded" : ""));
  const size_t nx = static_cast<size_t>(d.N) * d.H * d.W * d.C;
  const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
  const size_t nw = static_cast<size_t>(d.K) * d.R();
  const std::vector<float> x = Random(nx, 11), w = Random(nw, 12), b = Random(d.K, 13);
  const std::vector<float> dy = Random(ny, 14);
  const std::vector<float> ax = Abs(x), aw = Abs(w), ady = Abs(dy);
  const Exec e = Threaded(threaded);

  {
    // One bound serves both variants: it includes |b| either way.
    std::vector<float> bound(ny);
    const std::vector<float> ab = Abs(b);
    conv2d_forward_ref(d, ax.data(), aw.data(), ab.data(), Act::kNone, bound.data());
    for (int variant = 0; variant < 2; ++variant) {
      const bool relu = variant == 1;
      const float* bias = variant == 1 ? b.data() : nullptr;
      std::vector<float> want(ny), got(ny, kNaN);
      conv2d_forward_ref(d, x.data(), w.data(), bias, relu ? Act::kRelu : Act::kNone,
                         want.data());
      OpStatePtr state;
      test_hwy->conv2d_forward(d, x.data(), w.data(), bias, relu ? Act::kRelu : Act::kNone,
                         got.data(), state, e);
      EXPECT_TRUE(Near(got, want, bound)) << "forward relu=" << relu;
    }
  }

  {
    const std::vector<float> dx0 = Random(nx, 15);
    std::vector<float> want = dx0, got = dx0, bound = Abs(dx0);
    conv2d_backward_data_ref(d, dy.data(), w.data(), want.data());
    test_hwy->conv2d_backward_data(d, dy.data(), w.data(), got.data(), e);
    conv2d_backward_data_ref(d, ady.data(), aw.data(), bound.data());
    EXPECT_TRUE(Near(got, want, bound)) << "backward data";
  }

  {
    std::vector<float> want(nw), bound(nw), want_db(d.K), bound_db(d.K);
    conv2d_backward_filter_ref(d, x.data(), dy.data(), want.data(), want_db.data());
    conv2d_backward_filter_ref(d, ax.data(), ady.data(), bound.data(), bound_db.data());
    for (int with_db = 0; with_db < 2; ++with_db) {
      std::vector<float> got(nw, kNaN), got_db(d.K, kNaN);
      test_hwy->conv2d_backward_filter(d, x.data(), dy.data(), got.data(),
                                 with_db ? got_db.data() : nullptr, e);
      EXPECT_TRUE(Near(got, want, bound)) << "backward filter dw";
      if (with_db) {
        EXPECT_TRUE(Near(got_db, want_db, bound_db)) << "backward filter db";
      } else {
        EXPECT_TRUE(std::isnan(got_db[0])) << "db written although null was passed";
      }
    }
  }
}

TEST_P(ConvHwy, OddShapes) {
  for (int threaded = 0; threaded < 2; ++threaded) {
    CheckConv(Conv(1, 5, 7, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1), threaded);
    CheckConv(Conv(3, 9, 8, 5, 7, 3, 2, 2, 1, 1, 0, 1, 1), threaded);
    CheckConv(Conv(2, 11, 13, 2, 17, 5, 5, 2, 3, 2, 1, 2, 0), threaded);
    CheckConv(Conv(2, 6, 6, 13, 3, 1, 1, 1, 1, 0, 0, 0, 0), threaded);  // pointwise
    CheckConv(Conv(3, 7, 5, 9, 19, 1, 1, 2, 2, 0, 0, 0, 0), threaded);  // strided 1x1
    CheckConv(Conv(2, 4, 4, 3, 2, 4, 4, 1, 1, 0, 0, 0, 0), threaded);   // one output pixel
    CheckConv(Conv(5, 17, 19, 7, 33, 3, 3, 1, 1, 1, 1, 1, 1), threaded);
    CheckConv(Conv(1, 3, 3, 1, 1, 3, 3, 1, 1, 2, 2, 2, 2), threaded);   // mostly padding
    // Enough input channels for backward data to run as a convolution of dy.
    CheckConv(Conv(3, 9, 11, 14, 5, 3, 3, 1, 1, 2, 0, 1, 2), threaded);
    CheckConv(Conv(2, 10, 7, 24, 21, 4, 2, 1, 1, 1, 1, 2, 0), threaded);
  }
}

// Threads share the filter gradient's work dynamically; the sums must not depend on which
// thread ran what, or training with a seed would not be reproducible.
TEST_P(ConvHwy, ThreadedFilterGradientIsReproducible) {
  const ConvDims d = Same(8, 16, 16, 32, 64, 3);
  const std::vector<float> x = Random(static_cast<size_t>(d.N) * d.H * d.W * d.C, 21);
  const std::vector<float> dy = Random(static_cast<size_t>(d.N) * d.OH * d.OW * d.K, 22);
  const size_t nw = static_cast<size_t>(d.K) * d.R();
  std::vector<float> first(nw), first_db(d.K);
  test_hwy->conv2d_backward_filter(d, x.data(), dy.data(), first.data(), first_db.data(), Threaded(true));
  for (int repeat = 0; repeat < 30; ++repeat) {
    std::vector<float> dw(nw), db(d.K);
    test_hwy->conv2d_backward_filter(d, x.data(), dy.data(), dw.data(), db.data(), Threaded(true));
    ASSERT_EQ(std::memcmp(dw.data(), first.data(), nw * sizeof(float)), 0) << "repeat " << repeat;
    ASSERT_EQ(std::memcmp(db.data(), first_db.data(), d.K * sizeof(float)), 0) << "repeat " << repeat;
  }
}

// The network's layers at batch 2: 'same' 3x3 convs of the image tagger and the 2x2 convs of
// the FashionNet model.
TEST_P(ConvHwy, NetworkShapes) {
  CheckConv(Same(2, 96, 96, 3, 32, 3), true);
  CheckConv(Same(2, 32, 32, 32, 64, 3), true);
  CheckConv(Same(2, 32, 32, 64, 64, 3), true);
  CheckConv(Same(2, 16, 16, 64, 128, 3), true);
  CheckConv(Same(2, 16, 16, 128, 128, 3), true);
  CheckConv(Same(2, 56, 56, 1, 16, 2), true);
  CheckConv(Same(2, 28, 28, 16, 32, 2), true);
  CheckConv(Same(2, 14, 14, 32, 64, 2), true);
}

void CheckDense(int N, int I, int O, bool threaded) {
  SCOPED_TRACE("dense N" + std::to_string(N) + " I" + std::to_string(I) + " O" +
               std::to_string(O) + (threaded ? " threaded" : ""));
  const std::vector<float> x = Random(static_cast<size_t>(N) * I, 21);
  const std::vector<float> w = Random(static_cast<size_t>(O) * I, 22);
  const std::vector<float> b = Random(O, 23);
  const std::vector<float> dy = Random(static_cast<size_t>(N) * O, 24);
  const std::vector<float> ax = Abs(x), aw = Abs(w), ab = Abs(b), ady = Abs(dy);
  const Exec e = Threaded(threaded);
  for (int variant = 0; variant < 2; ++variant) {
    const bool relu = variant == 1;
    const float* bias = variant == 1 ? b.data() : nullptr;
    std::vector<float> want(static_cast<size_t>(N) * O), got(want.size(), kNaN),
        bound(want.size());
    dense_forward_ref(N, I, O, x.data(), w.data(), bias, relu ? Act::kRelu : Act::kNone,
                      want.data());
    OpStatePtr state;
    test_hwy->dense_forward(N, I, O, x.data(), w.data(), bias, relu ? Act::kRelu : Act::kNone,
                      got.data(), state, e);
    dense_forward_ref(N, I, O, ax.data(), aw.data(), bias ? ab.data() : nullptr, Act::kNone,
                      bound.data());
    EXPECT_TRUE(Near(got, want, bound)) << "forward relu=" << relu;
  }
  {
    const std::vector<float> dx0 = Random(static_cast<size_t>(N) * I, 25);
    std::vector<float> want = dx0, got = dx0, bound = Abs(dx0);
    dense_backward_data_ref(N, I, O, dy.data(), w.data(), want.data());
    test_hwy->dense_backward_data(N, I, O, dy.data(), w.data(), got.data(), e);
    dense_backward_data_ref(N, I, O, ady.data(), aw.data(), bound.data());
    EXPECT_TRUE(Near(got, want, bound)) << "backward data";
  }
  for (int with_db = 0; with_db < 2; ++with_db) {
    const size_t nw = static_cast<size_t>(O) * I;
    std::vector<float> want(nw), got(nw, kNaN), bound(nw);
    std::vector<float> want_db(O), got_db(O, kNaN), bound_db(O);
    dense_backward_filter_ref(N, I, O, x.data(), dy.data(), want.data(), want_db.data());
    test_hwy->dense_backward_filter(N, I, O, x.data(), dy.data(), got.data(),
                              with_db ? got_db.data() : nullptr, e);
    dense_backward_filter_ref(N, I, O, ax.data(), ady.data(), bound.data(), bound_db.data());
    EXPECT_TRUE(Near(got, want, bound)) << "backward filter dw";
    if (with_db) {
      EXPECT_TRUE(Near(got_db, want_db, bound_db)) << "backward filter db";
    } else {
      EXPECT_TRUE(std::isnan(got_db[0])) << "db written although null was passed";
    }
  }
}

TEST_P(DenseHwy, OddShapes) {
  for (int threaded = 0; threaded < 2; ++threaded) {
    CheckDense(1, 1, 1, threaded);
    CheckDense(3, 17, 5, threaded);
    CheckDense(33, 129, 67, threaded);
    CheckDense(7, 257, 300, threaded);
    CheckDense(64, 31, 513, threaded);
  }
}

TEST_P(DenseHwy, NetworkShapes) {
  CheckDense(2, 8192, 1024, true);
  CheckDense(32, 576, 10, true);
  CheckDense(32, 2048, 256, true);
}

}  // namespace
}  // namespace kern
}  // namespace tagnet
