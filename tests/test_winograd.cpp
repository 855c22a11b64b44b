// The `hwy` backend's Winograd F(4x4, 3x3) forward convolution, and the input and filter
// gradients that run on Winograd too, against the double-precision reference: which shapes
// take it, border tiles of odd and even sizes under any padding, channel counts off the vector
// width, bias and ReLU, one and two threads, and the cached transformed (or packed) weights,
// which must follow a parameter change announced through Exec::param_version or a new weight
// pointer, and only then. Also the dense forward pass for a few rows (batch-1 inference), which
// runs as dot products instead of a GEMM, on 16-bit weights for large layers outside training.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_tester.h"
#include "kernels.h"
#include "thread_pool.h"
#include "per_hwy_target.h"
#include "winograd_hwy.h"

namespace tagnet::kern {
namespace {

using ktest::Buf;
using ktest::MakeConvDims;
using ktest::NaNs;
using ktest::Rng;

ThreadPool& Pool(int threads) {
  static ThreadPool one(1), two(2);
  return threads == 1 ? one : two;
}

Exec ExecOn(int threads, uint64_t version) {
  Exec e;
  e.pool = &Pool(threads);
  e.param_version = version;
  return e;
}

// Winograd rounds differently from a direct sum (its transforms scale values up and down), so
// the bound is relative to the output's scale rather than to each element.
constexpr double kRtol = 1e-4;

::testing::AssertionResult CloseToScale(const Buf& got, const Buf& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size mismatch";
  if (!got.GuardsIntact()) return ::testing::AssertionFailure() << "wrote outside the buffer";
  double ss = 0.0;
  for (size_t i = 0; i < want.size(); ++i) ss += static_cast<double>(want[i]) * want[i];
  const double rms = want.size() ? std::sqrt(ss / want.size()) : 0.0;
  const double allowed = kRtol * std::max(rms, 1e-6);
  size_t bad = 0;
  std::ostringstream msg;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= allowed)) {  // also catches NaN
      if (bad < 6) msg << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << want.size()
                                       << " elements off by more than " << allowed
                                       << " (output rms " << rms << ")" << msg.str();
}

struct Shape {
  int N, H, W, C, K;
  int PT, PL, PB, PR;
  bool bias, relu;
};

std::string Describe(const Shape& s, int threads) {
  std::ostringstream o;
  o << "N=" << s.N << " H=" << s.H << " W=" << s.W << " C=" << s.C << " K=" << s.K << " pad="
    << s.PT << "," << s.PL << "," << s.PB << "," << s.PR << " bias=" << s.bias
    << " relu=" << s.relu << " threads=" << threads;
  return o.str();
}

ConvDims Dims3x3(const Shape& s) {
  return MakeConvDims(s.N, s.H, s.W, s.C, s.K, 3, 3, 1, 1, s.PT, s.PL, s.PB, s.PR);
}

// One forward call on a fresh state against the reference.
void CheckShape(const Shape& s, int threads, uint32_t seed) {
  SCOPED_TRACE(Describe(s, threads));
  const ConvDims d = Dims3x3(s);
  ASSERT_TRUE(wino::applies(d)) << "the shape should take the Winograd path";
  Rng rng(seed);
  const Buf x = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
  const Buf w = rng.Make(static_cast<size_t>(d.K) * d.R());
  const Buf b = rng.Make(d.K, -0.5f, 0.5f);
  const float* bp = s.bias ? b.data() : nullptr;
  const Act act = s.relu ? Act::kRelu : Act::kNone;
  const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
  Buf want = NaNs(ny), got = NaNs(ny);
  conv2d_forward_ref(d, x.data(), w.data(), bp, act, want.data());
  OpStatePtr state;
  test_hwy->conv2d_forward(d, x.data(), w.data(), bp, act, got.data(), state, ExecOn(threads, 1));
  EXPECT_TRUE(CloseToScale(got, want));
}

TEST(Winograd, TakesTheLargeStrideOneThreeByThreeConvolutions) {
  // SmallerVGGNet's 3x3 'same' convolutions after the first.
  EXPECT_TRUE(wino::applies(MakeConvDims(1, 32, 32, 32, 64, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(wino::applies(MakeConvDims(32, 32, 32, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(wino::applies(MakeConvDims(1, 16, 16, 64, 128, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(wino::applies(MakeConvDims(8, 16, 16, 128, 128, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(wino::applies(MakeConvDims(2, 9, 7, 20, 24, 3, 3, 1, 1, 0, 0, 0, 0)));
  // The 3-channel first convolution, few output channels, other kernels and strides, and
  // outputs too small for 2x2 tiles stay on the direct path.
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 96, 96, 3, 32, 3, 3, 1, 1, 1, 1, 1, 1)));
  // The filter gradient up to 128 x 128 channel pairs.
  EXPECT_TRUE(wino::filter_applies(MakeConvDims(8, 16, 16, 128, 128, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::filter_applies(MakeConvDims(8, 16, 16, 128, 256, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(wino::applies(MakeConvDims(8, 16, 16, 128, 256, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 32, 32, 64, 4, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 32, 32, 64, 64, 1, 1, 1, 1, 0, 0, 0, 0)));
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 32, 32, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 32, 32, 64, 64, 5, 5, 1, 1, 2, 2, 2, 2)));
  EXPECT_FALSE(wino::applies(MakeConvDims(1, 32, 32, 64, 64, 3, 2, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::applies(MakeConvDims(4, 1, 1, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(wino::applies(MakeConvDims(4, 3, 3, 64, 64, 3, 3, 1, 1, 0, 0, 0, 0)));
  // Dimensions whose output size does not follow from the padding are not a convolution
  // this path can compute.
  ConvDims odd = MakeConvDims(1, 16, 16, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1);
  odd.OH -= 1;
  EXPECT_FALSE(wino::applies(odd));
}

class WinogradShapes : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(WinogradShapes);

TEST_P(WinogradShapes, MatchesReference) {
  const Shape shapes[] = {
      // Even sizes, 'same' padding, channels a multiple of every vector width.
      {1, 8, 8, 16, 16, 1, 1, 1, 1, true, false},
      {2, 16, 16, 32, 64, 1, 1, 1, 1, true, true},
      {1, 16, 16, 128, 128, 1, 1, 1, 1, false, true},
      // Odd sizes: the last tile row and column overhang the output.
      {2, 7, 9, 17, 19, 1, 1, 1, 1, true, false},
      {3, 15, 15, 20, 33, 1, 1, 1, 1, false, false},
      {1, 13, 5, 16, 17, 1, 1, 1, 1, true, true},
      // No padding, odd and even outputs.
      {3, 6, 5, 24, 40, 0, 0, 0, 0, true, true},
      {2, 11, 12, 31, 16, 0, 0, 0, 0, false, false},
      // Asymmetric padding, including more than the kernel reaches: tiles wholly in padding.
      {2, 10, 12, 32, 24, 0, 0, 2, 2, true, false},
      {1, 9, 8, 18, 21, 2, 0, 1, 3, true, true},
      {2, 4, 4, 16, 16, 3, 3, 3, 3, true, false},
      // Enough tiles for many tasks on two threads, channels off the vector width.
      {3, 21, 19, 37, 45, 1, 1, 1, 1, true, true},
      {1, 32, 32, 32, 64, 1, 1, 1, 1, true, false},
  };
  for (const int threads : {1, 2}) {
    uint32_t seed = 11;
    for (const Shape& s : shapes) CheckShape(s, threads, seed++);
  }
}

class WinogradOnTarget : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(WinogradOnTarget);
class ConvForwardCache : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(ConvForwardCache);
class DenseForwardFewRows : public PerHwyTarget {};
TAGNET_PER_HWY_TARGET(DenseForwardFewRows);

TEST_P(WinogradOnTarget, SameResultOnOneAndTwoThreads) {
  // Every output comes out of the same arithmetic whichever task holds its tile.
  const ConvDims d = MakeConvDims(3, 20, 18, 48, 40, 3, 3, 1, 1, 1, 1, 1, 1);
  ASSERT_TRUE(wino::applies(d));
  Rng rng(5);
  const Buf x = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
  const Buf w = rng.Make(static_cast<size_t>(d.K) * d.R());
  const Buf b = rng.Make(d.K);
  const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
  Buf one = NaNs(ny), two = NaNs(ny);
  OpStatePtr s1, s2;
  test_hwy->conv2d_forward(d, x.data(), w.data(), b.data(), Act::kRelu, one.data(), s1, ExecOn(1, 1));
  test_hwy->conv2d_forward(d, x.data(), w.data(), b.data(), Act::kRelu, two.data(), s2, ExecOn(2, 1));
  for (size_t i = 0; i < ny; ++i) ASSERT_EQ(one[i], two[i]) << "at " << i;
}

// The input gradient of a stride-1 3x3 convolution is the forward convolution of dy with the
// flipped kernel, which runs as Winograd too and overwrites whatever dx held.
TEST_P(WinogradOnTarget, BackwardDataOverwritesDx) {
  const Shape shapes[] = {{2, 16, 16, 32, 64, 1, 1, 1, 1, false, false},
                          {3, 9, 7, 24, 40, 1, 1, 1, 1, false, false},
                          {2, 10, 12, 32, 24, 0, 0, 0, 0, false, false},
                          {1, 9, 8, 18, 21, 2, 0, 1, 1, false, false}};
  uint32_t seed = 70;
  for (const int threads : {1, 2}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(Describe(s, threads));
      const ConvDims d = Dims3x3(s);
      Rng rng(seed++);
      const Buf dy = rng.Make(static_cast<size_t>(d.N) * d.OH * d.OW * d.K);
      const Buf w = rng.Make(static_cast<size_t>(d.K) * d.R());
      const Buf dx0 = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
      Buf want = dx0, got = dx0;
      conv2d_backward_data_ref(d, dy.data(), w.data(), want.data());
      test_hwy->conv2d_backward_data(d, dy.data(), w.data(), got.data(), ExecOn(threads, 1));
      EXPECT_TRUE(CloseToScale(got, want));
    }
  }
}

// The filter gradient of a stride-1 3x3 convolution runs as Winograd F(3x3, 4x4) and
// overwrites dw and db; border tiles, padding, channel counts off the vector width, and the
// partial sums of several tasks and threads.
TEST_P(WinogradOnTarget, FilterGradientMatchesReference) {
  const Shape shapes[] = {{2, 16, 16, 32, 64, 1, 1, 1, 1, true, false},
                          {3, 9, 7, 24, 40, 1, 1, 1, 1, true, false},
                          {2, 10, 12, 32, 24, 0, 0, 0, 0, false, false},
                          {1, 9, 8, 18, 21, 2, 0, 1, 3, true, false},
                          {2, 4, 4, 16, 16, 3, 3, 3, 3, true, false},
                          {3, 21, 19, 37, 45, 1, 1, 1, 1, true, false},
                          {4, 24, 24, 64, 64, 1, 1, 1, 1, true, false}};
  uint32_t seed = 90;
  for (const int threads : {1, 2}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(Describe(s, threads));
      const ConvDims d = Dims3x3(s);
      ASSERT_TRUE(wino::filter_applies(d));
      Rng rng(seed++);
      const Buf x = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
      const Buf dy = rng.Make(static_cast<size_t>(d.N) * d.OH * d.OW * d.K);
      const size_t nw = static_cast<size_t>(d.K) * d.R();
      Buf want_w = NaNs(nw), got_w = NaNs(nw), want_b = NaNs(d.K), got_b = NaNs(d.K);
      conv2d_backward_filter_ref(d, x.data(), dy.data(), want_w.data(),
                                 s.bias ? want_b.data() : nullptr);
      test_hwy->conv2d_backward_filter(d, x.data(), dy.data(), got_w.data(),
                                       s.bias ? got_b.data() : nullptr, ExecOn(threads, 1));
      EXPECT_TRUE(CloseToScale(got_w, want_w));
      if (s.bias) EXPECT_TRUE(CloseToScale(got_b, want_b));
    }
  }
}

// Runs a sequence of forward calls of one layer on one OpState and checks each against the
// reference computed with the weights the call is expected to use.
class CachedWeights {
 public:
  CachedWeights(int C, int K, int KH, int KW, int pad) : C_(C), K_(K), KH_(KH), KW_(KW), pad_(pad) {
    Rng rng(99);
    w_ = rng.Make(static_cast<size_t>(K) * KH * KW * C);
    b_ = rng.Make(K, -0.5f, 0.5f);
  }
  ConvDims Dims(int N, int H, int W) const {
    return MakeConvDims(N, H, W, C_, K_, KH_, KW_, 1, 1, pad_, pad_, pad_, pad_);
  }
  // Overwrites the weights in place; returns the previous ones.
  Buf Change(uint32_t seed) {
    Buf old = w_;
    Rng rng(seed);
    for (size_t i = 0; i < w_.size(); ++i) w_[i] = rng.Uniform(-1.0f, 1.0f);
    return old;
  }
  // Moves the weights to a new buffer with new values (allocated while the old one still
  // exists, so at another address); returns the old values.
  Buf Replace(uint32_t seed) {
    Buf old = w_;
    Rng rng(seed);
    const Buf fresh = rng.Make(w_.size());
    w_ = fresh;
    return old;
  }
  Buf& weights() { return w_; }
  // One call with the current weights at `version`, compared with the reference over
  // `expected` weights.
  ::testing::AssertionResult Call(const ConvDims& d, uint64_t version, const Buf& expected,
                                  int threads = 2) {
    Rng rng(static_cast<uint32_t>(1000 + calls_++));
    const Buf x = rng.Make(static_cast<size_t>(d.N) * d.H * d.W * d.C);
    const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
    Buf want = NaNs(ny), got = NaNs(ny);
    conv2d_forward_ref(d, x.data(), expected.data(), b_.data(), Act::kRelu, want.data());
    test_hwy->conv2d_forward(d, x.data(), w_.data(), b_.data(), Act::kRelu, got.data(), state_,
                       ExecOn(threads, version));
    return CloseToScale(got, want);
  }

 private:
  int C_, K_, KH_, KW_, pad_;
  Buf w_, b_;
  OpStatePtr state_;
  int calls_ = 0;
};

TEST_P(WinogradOnTarget, CachedWeightsFollowParameterVersion) {
  CachedWeights layer(24, 20, 3, 3, 1);
  const ConvDims d = layer.Dims(2, 10, 9);
  ASSERT_TRUE(wino::applies(d));
  EXPECT_TRUE(layer.Call(d, 1, layer.weights())) << "first call";
  EXPECT_TRUE(layer.Call(d, 1, layer.weights(), 1)) << "again, one thread";
  // Changed in place and announced: the transformed weights are remade.
  layer.Change(7);
  EXPECT_TRUE(layer.Call(d, 2, layer.weights())) << "after a bumped parameter version";
  // Changed in place and not announced: the cached transform of the previous weights is what
  // the layer runs with, which shows that the transform is not redone on every call.
  const Buf before = layer.Change(8);
  EXPECT_TRUE(layer.Call(d, 2, before)) << "unannounced change, cache reused";
  EXPECT_TRUE(layer.Call(layer.Dims(1, 14, 16), 2, before)) << "other sizes, cache reused";
  EXPECT_TRUE(layer.Call(d, 3, layer.weights())) << "announced at last";
}

TEST_P(WinogradOnTarget, CacheFollowsThePathAndTheWeightPointer) {
  CachedWeights layer(32, 32, 3, 3, 1);
  const ConvDims big = layer.Dims(2, 8, 8), tiny = layer.Dims(3, 1, 1);
  ASSERT_TRUE(wino::applies(big));
  ASSERT_FALSE(wino::applies(tiny));
  EXPECT_TRUE(layer.Call(big, 4, layer.weights())) << "Winograd";
  EXPECT_TRUE(layer.Call(tiny, 4, layer.weights())) << "direct path, same version";
  EXPECT_TRUE(layer.Call(big, 4, layer.weights())) << "Winograd again";
  // The same version with the weights in a different buffer is a different kernel.
  const float* cached = layer.weights().data();
  layer.Replace(21);
  ASSERT_NE(cached, layer.weights().data());
  EXPECT_TRUE(layer.Call(big, 4, layer.weights())) << "new weight buffer, same version";
}

TEST_P(ConvForwardCache, DirectPathsFollowParameterVersion) {
  // The 3-channel first layer (implicit GEMM) and a pointwise layer cache their packed
  // weights the same way.
  for (const int k : {3, 1}) {
    SCOPED_TRACE(k == 3 ? "3x3, C=3" : "1x1");
    CachedWeights layer(k == 3 ? 3 : 40, 24, k, k, k / 2);
    const ConvDims d = layer.Dims(2, 12, 11);
    ASSERT_FALSE(wino::applies(d));
    EXPECT_TRUE(layer.Call(d, 1, layer.weights()));
    layer.Change(3);
    EXPECT_TRUE(layer.Call(d, 2, layer.weights())) << "after a bumped parameter version";
    const Buf before = layer.Change(4);
    EXPECT_TRUE(layer.Call(d, 2, before)) << "unannounced change, cache reused";
    EXPECT_TRUE(layer.Call(d, 3, layer.weights())) << "announced at last";
  }
}

TEST_P(DenseForwardFewRows, MatchesReference) {
  // Rows of x one to five (five takes the GEMM), outputs off the 4-row blocks, inputs off
  // the vector width, enough outputs for several pool tasks.
  struct Case {
    int N, I, O;
    bool bias, relu;
  };
  const Case cases[] = {{1, 8192, 131, true, true}, {2, 1031, 67, true, false},
                        {3, 67, 9, false, true},    {4, 515, 258, true, false},
                        {4, 3, 5, true, true},      {5, 129, 70, false, false},
                        {1, 1, 1, true, false}};
  uint32_t seed = 40;
  for (const int threads : {1, 2}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << "N=" << c.N << " I=" << c.I << " O=" << c.O
                                        << " bias=" << c.bias << " relu=" << c.relu
                                        << " threads=" << threads);
      Rng rng(seed++);
      const Buf x = rng.Make(static_cast<size_t>(c.N) * c.I);
      const Buf w = rng.Make(static_cast<size_t>(c.O) * c.I);
      const Buf b = rng.Make(c.O);
      const float* bp = c.bias ? b.data() : nullptr;
      const Act act = c.relu ? Act::kRelu : Act::kNone;
      Buf want = NaNs(static_cast<size_t>(c.N) * c.O), got = NaNs(want.size());
      dense_forward_ref(c.N, c.I, c.O, x.data(), w.data(), bp, act, want.data());
      OpStatePtr state;
      Exec e = ExecOn(threads, 1);
      e.training = true;  // the float weights, whatever the layer's size
      test_hwy->dense_forward(c.N, c.I, c.O, x.data(), w.data(), bp, act, got.data(), state, e);
      EXPECT_TRUE(ktest::Close(got, want, c.I));
    }
  }
}

TEST_P(DenseForwardFewRows, LargeLayersInInferenceRunOnSixteenBitWeights) {
  // 8197 x 131 weights, past the 2^20 from which inference quantizes, inputs off the vector
  // width; a bias, no activation, so that every output is compared.
  const int I = 8197, O = 131;
  Rng rng(77);
  const Buf w = rng.Make(static_cast<size_t>(O) * I);
  const Buf b = rng.Make(O);
  // The quantized weights the kernel is documented to use: q = round(w * 32767 / max|w|) per
  // output, and the scale of each output.
  std::vector<double> scale(O);
  std::vector<int> q(w.size());
  for (int o = 0; o < O; ++o) {
    float amax = 0.0f;
    for (int i = 0; i < I; ++i) amax = std::max(amax, std::fabs(w[static_cast<size_t>(o) * I + i]));
    scale[o] = amax / 32767.0;
    const float inv = 32767.0f / amax;
    for (int i = 0; i < I; ++i) {
      const size_t k = static_cast<size_t>(o) * I + i;
      q[k] = static_cast<int>(std::lrint(w[k] * inv));
    }
  }
  for (const int threads : {1, 2}) {
    for (int N = 1; N <= 4; ++N) {
      SCOPED_TRACE(::testing::Message() << "N=" << N << " threads=" << threads);
      const Buf x = rng.Make(static_cast<size_t>(N) * I);
      Buf exact = NaNs(static_cast<size_t>(N) * O), inference = NaNs(exact.size()),
          training = NaNs(exact.size());
      dense_forward_ref(N, I, O, x.data(), w.data(), b.data(), Act::kNone, exact.data());
      OpStatePtr state;
      Exec e = ExecOn(threads, 1);
      test_hwy->dense_forward(N, I, O, x.data(), w.data(), b.data(), Act::kNone, inference.data(),
                              state, e);
      e.training = true;
      test_hwy->dense_forward(N, I, O, x.data(), w.data(), b.data(), Act::kNone, training.data(),
                              state, e);
      ASSERT_TRUE(inference.GuardsIntact() && training.GuardsIntact());
      // Worst distances, in units of the largest |output|, of each result from the exact
      // output and from the dot products on q.
      double ymax = 0.0;
      for (size_t k = 0; k < exact.size(); ++k) ymax = std::max(ymax, std::fabs(static_cast<double>(exact[k])));
      double inf_exact = 0, inf_q = 0, train_exact = 0, train_q = 0;
      for (int n = 0; n < N; ++n) {
        for (int o = 0; o < O; ++o) {
          const float* xn = x.data() + static_cast<size_t>(n) * I;
          double dq = 0.0, xsum = 0.0;
          for (int i = 0; i < I; ++i) {
            dq += q[static_cast<size_t>(o) * I + i] * static_cast<double>(xn[i]);
            xsum += std::fabs(xn[i]);
          }
          const double yq = scale[o] * dq + b[o];
          const size_t k = static_cast<size_t>(n) * O + o;
          // The documented bound: half a step of q on every weight, plus float rounding.
          EXPECT_LE(std::fabs(inference[k] - exact[k]), scale[o] / 2 * xsum + 1e-5 * ymax)
              << "output " << k;
          inf_exact = std::max(inf_exact, std::fabs(inference[k] - exact[k]) / ymax);
          inf_q = std::max(inf_q, std::fabs(inference[k] - yq) / ymax);
          train_exact = std::max(train_exact, std::fabs(training[k] - exact[k]) / ymax);
          train_q = std::max(train_q, std::fabs(training[k] - yq) / ymax);
        }
      }
      // Inference is the dot products on q, training those on w: each result is at least twice
      // as near its own as the other's (SCALAR's single running sum rounds the most).
      EXPECT_LT(inf_q * 2, inf_exact) << "inference: " << inf_q << " from q, " << inf_exact << " from w";
      EXPECT_LT(train_exact * 2, train_q) << "training: " << train_exact << " from w, " << train_q << " from q";
      EXPECT_LT(inf_exact, 1e-4);
    }
  }
}

TEST_P(DenseForwardFewRows, SixteenBitWeightsFollowTheParameterVersion) {
  const int N = 1, I = 4096, O = 300;
  Rng rng(78);
  Buf w = rng.Make(static_cast<size_t>(O) * I);
  const Buf x = rng.Make(static_cast<size_t>(N) * I);
  Buf want = NaNs(static_cast<size_t>(N) * O), got = NaNs(want.size());
  OpStatePtr state;
  test_hwy->dense_forward(N, I, O, x.data(), w.data(), nullptr, Act::kNone, got.data(), state,
                          ExecOn(2, 1));
  for (size_t k = 0; k < w.size(); ++k) w[k] = -w[k];
  dense_forward_ref(N, I, O, x.data(), w.data(), nullptr, Act::kNone, want.data());
  test_hwy->dense_forward(N, I, O, x.data(), w.data(), nullptr, Act::kNone, got.data(), state,
                          ExecOn(2, 2));
  EXPECT_TRUE(ktest::Close(got, want, I));
}

}  // namespace
}  // namespace tagnet::kern
