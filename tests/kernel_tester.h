// Builder-style kernel testers: each describes one problem shape, fills its operands from a
// fixed-seed generator, runs a Backend's kernel and the `_ref` oracle on them and compares.
//
//   ConvTester().batch(2).hw(7, 9).channels(3, 5).kernel(3, 2).stride(2, 1)
//       .padding(1, 0, 1, 1).relu(true).Test(backend);
//
// Conventions every tester checks:
//  - outputs that a kernel OVERWRITES start as NaN, so reading them before writing shows;
//  - input gradients start as a nonzero pattern that must be OVERWRITTEN by the gradient;
//  - every buffer has guard words on both sides that must survive the call;
//  - forward kernels run several times on one OpStatePtr, with fresh input buffers, changed
//    parameters (and a bumped Exec::param_version) and changed batch sizes, because cached
//    per-op state is where stale-weight and stale-shape bugs live;
//  - the backend runs with a ThreadPool of 2 threads.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

namespace tagnet {
namespace kern {

// Parameterised test names and failure messages show the backend by name.
inline void PrintTo(const Backend* be, std::ostream* os) { *os << (be ? be->name : "null"); }

namespace ktest {

inline ThreadPool& TestPool() {
  static ThreadPool pool(2);
  return pool;
}

inline Exec MakeExec(uint64_t param_version) {
  Exec e;
  e.pool = &TestPool();
  e.param_version = param_version;
  return e;
}

// A float array with guard words on both sides; the data starts 64-byte aligned, like a
// tensor allocation would.
class Buf {
 public:
  static constexpr size_t kGuard = 16;
  static constexpr float kGuardValue = -7777.25f;

  explicit Buf(size_t n = 0, float fill = 0.0f) : n_(n) {
    const size_t bytes = ((n + 2 * kGuard) * sizeof(float) + 63) / 64 * 64;
    mem_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    std::fill(mem_.get(), mem_.get() + kGuard, kGuardValue);
    std::fill(data(), data() + n, fill);
    std::fill(data() + n, data() + n + kGuard, kGuardValue);
  }
  Buf(const Buf& o) : Buf(o.n_) { std::copy(o.data(), o.data() + o.n_, data()); }
  Buf& operator=(const Buf& o) {
    Buf t(o);
    std::swap(n_, t.n_);
    std::swap(mem_, t.mem_);
    return *this;
  }

  float* data() { return mem_.get() + kGuard; }
  const float* data() const { return mem_.get() + kGuard; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return data()[i]; }
  float operator[](size_t i) const { return data()[i]; }
  void Fill(float v) { std::fill(data(), data() + n_, v); }

  bool GuardsIntact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (!(mem_.get()[i] == kGuardValue) || !(data()[n_ + i] == kGuardValue)) return false;
    }
    return true;
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  size_t n_;
  std::unique_ptr<float, Free> mem_;
};

class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  float Uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen_); }
  Buf Make(size_t n, float lo = -1.0f, float hi = 1.0f) {
    Buf b(n);
    for (size_t i = 0; i < n; ++i) b[i] = Uniform(lo, hi);
    return b;
  }
  // Small integers, so that many values tie exactly.
  Buf MakeInts(size_t n, int lo, int hi) {
    Buf b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<float>(Int(lo, hi));
    return b;
  }

 private:
  std::mt19937 gen_;
};

inline Buf NaNs(size_t n) { return Buf(n, std::numeric_limits<float>::quiet_NaN()); }

inline Buf Sum(const Buf& a, const Buf& b) {
  Buf r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

// Element i passes when |got - want| <= rtol * sqrt(L) * (|want| + rms(want)), L being the
// length of the reduction behind each element. The sqrt(L) follows how rounding errors of a
// long sum grow; the rms term scales the bound to the array's magnitude where `want` itself is
// near zero through cancellation. `floor` adds the magnitude of the terms that cancel, for
// results that are all near zero.
inline ::testing::AssertionResult Close(const Buf& got, const Buf& want, double L,
                                        double rtol = 1e-4, double floor = 0.0) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
  }
  if (!got.GuardsIntact()) return ::testing::AssertionFailure() << "wrote outside the buffer";
  const size_t n = want.size();
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(want[i]) * want[i];
  const double rms = n ? std::sqrt(ss / n) : 0.0;
  const double scale = rtol * std::sqrt(std::max(1.0, L));
  size_t bad = 0;
  double worst = 0.0;
  std::ostringstream msg;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double allowed = scale * (std::fabs(want[i]) + rms + floor) + 1e-30;
    if (!(err <= allowed)) {  // also catches NaN
      if (bad < 6) msg << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
      worst = std::max(worst, std::isnan(err) ? std::numeric_limits<double>::infinity()
                                              : err / allowed);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements off (worst "
                                       << worst << "x the tolerance)" << msg.str();
}

// For input gradients, which started as pattern: got must be grad alone.
inline ::testing::AssertionResult CloseOverwritten(const Buf& got, const Buf& pattern,
                                                   const Buf& grad, double L, double floor = 0.0) {
  ::testing::AssertionResult r = Close(got, grad, L, 1e-4, floor);
  if (!r && Close(got, Sum(pattern, grad), L)) {
    r << "\n  (equals pattern + gradient: dx was added to, not overwritten)";
  }
  return r;
}

inline ConvDims MakeConvDims(int N, int H, int W, int C, int K, int KH, int KW, int SH, int SW,
                             int PT, int PL, int PB, int PR) {
  ConvDims d{N, H, W, C, K, KH, KW, SH, SW, PT, PL, PB, PR, 0, 0};
  d.OH = (H + PT + PB - KH) / SH + 1;
  d.OW = (W + PL + PR - KW) / SW + 1;
  return d;
}

inline PoolDims MakePoolDims(int N, int H, int W, int C, int PH, int PW, int SH, int SW) {
  return PoolDims{N, H, W, C, PH, PW, SH, SW, (H - PH) / SH + 1, (W - PW) / SW + 1};
}

// A batch size different from N for the state-reuse call: smaller when possible, since
// inference after training and the last partial batch both shrink it.
inline int OtherBatch(int N) { return N > 1 ? N - 1 : 2; }

// ---------------------------------------------------------------------------------------

class GemmTester {
 public:
  GemmTester& m(int v) { M_ = v; return *this; }
  GemmTester& n(int v) { N_ = v; return *this; }
  GemmTester& k(int v) { K_ = v; return *this; }
  GemmTester& mnk(int m, int n, int k) { M_ = m; N_ = n; K_ = k; return *this; }
  GemmTester& transpose_a(bool v) { ta_ = v; return *this; }
  GemmTester& transpose_b(bool v) { tb_ = v; return *this; }
  GemmTester& accumulate(bool v) { acc_ = v; return *this; }
  // Extra elements at the end of every stored row of A, B and C.
  GemmTester& row_padding(int v) { pad_ = v; return *this; }
  GemmTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    SCOPED_TRACE(Describe());
    Rng rng(seed_);
    // A is M x K, stored (M, lda) or transposed as (K, lda); likewise B is K x N.
    const long lda = (ta_ ? M_ : K_) + pad_, ldb = (tb_ ? K_ : N_) + pad_, ldc = N_ + pad_;
    const long rsa = ta_ ? 1 : lda, csa = ta_ ? lda : 1;
    const long rsb = tb_ ? 1 : ldb, csb = tb_ ? ldb : 1;
    Buf A = rng.Make(static_cast<size_t>(ta_ ? K_ : M_) * lda);
    Buf B = rng.Make(static_cast<size_t>(tb_ ? N_ : K_) * ldb);
    // Row padding holds NaN: a kernel that uses it poisons its result.
    PoisonPadding(A, ta_ ? K_ : M_, ta_ ? M_ : K_, lda);
    PoisonPadding(B, tb_ ? N_ : K_, tb_ ? K_ : N_, ldb);
    Buf C = acc_ ? rng.Make(static_cast<size_t>(M_) * ldc) : NaNs(static_cast<size_t>(M_) * ldc);
    // C's padding must come back untouched.
    for (int i = 0; i < M_; ++i) {
      for (long j = N_; j < ldc; ++j) C[i * ldc + j] = 42.5f;
    }
    Buf want = C;
    gemm_ref(M_, N_, K_, A.data(), rsa, csa, B.data(), rsb, csb, want.data(), ldc, acc_);
    Buf got = C;
    be->gemm(M_, N_, K_, A.data(), rsa, csa, B.data(), rsb, csb, got.data(), ldc, acc_,
             MakeExec(1));
    EXPECT_TRUE(Close(got, want, K_)) << "C";
    for (int i = 0; i < M_; ++i) {
      for (long j = N_; j < ldc; ++j) {
        if (!(got[i * ldc + j] == 42.5f)) {
          ADD_FAILURE() << "C padding overwritten at row " << i << " col " << j;
          return;
        }
      }
    }
  }

 private:
  static void PoisonPadding(Buf& b, int rows, int cols, long ld) {
    for (int r = 0; r < rows; ++r) {
      for (long c = cols; c < ld; ++c) b[r * ld + c] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  std::string Describe() const {
    std::ostringstream s;
    s << "gemm M=" << M_ << " N=" << N_ << " K=" << K_ << " A" << (ta_ ? "^T" : "") << " B"
      << (tb_ ? "^T" : "") << " accumulate=" << acc_ << " pad=" << pad_;
    return s.str();
  }
  int M_ = 1, N_ = 1, K_ = 1, pad_ = 3;
  bool ta_ = false, tb_ = false, acc_ = false;
  uint32_t seed_ = 1;
};

// ---------------------------------------------------------------------------------------

class ConvTester {
 public:
  ConvTester& batch(int v) { N_ = v; return *this; }
  ConvTester& hw(int h, int w) { H_ = h; W_ = w; return *this; }
  ConvTester& channels(int c, int k) { C_ = c; K_ = k; return *this; }
  ConvTester& kernel(int kh, int kw) { KH_ = kh; KW_ = kw; return *this; }
  ConvTester& stride(int sh, int sw) { SH_ = sh; SW_ = sw; return *this; }
  ConvTester& padding(int t, int l, int b, int r) {
    PT_ = t; PL_ = l; PB_ = b; PR_ = r;
    return *this;
  }
  ConvTester& relu(bool v) { relu_ = v; return *this; }
  // Without a bias the forward kernel gets b = null (Keras use_bias=False).
  ConvTester& bias(bool v) { bias_ = v; return *this; }
  ConvTester& seed(uint32_t v) { seed_ = v; return *this; }

  ConvDims Dims(int N) const {
    return MakeConvDims(N, H_, W_, C_, K_, KH_, KW_, SH_, SW_, PT_, PL_, PB_, PR_);
  }

  // Forward, backward data, and backward filter with and without the bias gradient.
  void Test(const Backend* be) const {
    TestForward(be);
    TestBackwardData(be);
    TestBackwardFilter(be, true);
    TestBackwardFilter(be, false);
  }

  void TestForward(const Backend* be) const {
    SCOPED_TRACE(Describe("conv forward"));
    Rng rng(seed_);
    const ConvDims d = Dims(N_);
    Buf w = rng.Make(static_cast<size_t>(K_) * d.R());
    Buf b = rng.Make(K_, -0.5f, 0.5f);
    const Act act = relu_ ? Act::kRelu : Act::kNone;
    OpStatePtr state;
    struct Call {
      int N;
      uint64_t version;
      bool new_params;
      const char* what;
    };
    const Call calls[] = {{N_, 0, false, "first call"},
                          {N_, 1, true, "after a parameter change"},
                          {OtherBatch(N_), 1, false, "with another batch size"},
                          {N_, 1, false, "back to the first batch size"}};
    for (const Call& c : calls) {
      SCOPED_TRACE(c.what);
      if (c.new_params) {
        for (size_t i = 0; i < w.size(); ++i) w[i] = rng.Uniform(-1.0f, 1.0f);
        for (size_t i = 0; i < b.size(); ++i) b[i] = rng.Uniform(-0.5f, 0.5f);
      }
      const ConvDims dc = Dims(c.N);
      Buf x = rng.Make(static_cast<size_t>(c.N) * H_ * W_ * C_);
      const size_t ny = static_cast<size_t>(c.N) * dc.OH * dc.OW * K_;
      Buf want = NaNs(ny), got = NaNs(ny);
      const float* bp = bias_ ? b.data() : nullptr;
      conv2d_forward_ref(dc, x.data(), w.data(), bp, act, want.data());
      be->conv2d_forward(dc, x.data(), w.data(), bp, act, got.data(), state, MakeExec(c.version));
      EXPECT_TRUE(Close(got, want, d.R())) << "y";
    }
  }

  void TestBackwardData(const Backend* be) const {
    SCOPED_TRACE(Describe("conv backward data"));
    Rng rng(seed_ + 100);
    const ConvDims d = Dims(N_);
    Buf w = rng.Make(static_cast<size_t>(K_) * d.R());
    Buf dy = rng.Make(static_cast<size_t>(N_) * d.OH * d.OW * K_);
    const size_t nx = static_cast<size_t>(N_) * H_ * W_ * C_;
    Buf grad(nx, 0.0f);
    conv2d_backward_data_ref(d, dy.data(), w.data(), grad.data());
    const Buf pattern = rng.Make(nx);
    Buf got = pattern;
    be->conv2d_backward_data(d, dy.data(), w.data(), got.data(), MakeExec(1));
    EXPECT_TRUE(CloseOverwritten(got, pattern, grad, static_cast<double>(K_) * KH_ * KW_))
        << "dx = gradient, whatever dx held";
  }

  void TestBackwardFilter(const Backend* be, bool with_db) const {
    SCOPED_TRACE(Describe(with_db ? "conv backward filter" : "conv backward filter, db=null"));
    Rng rng(seed_ + 200);
    const ConvDims d = Dims(N_);
    Buf x = rng.Make(static_cast<size_t>(N_) * H_ * W_ * C_);
    Buf dy = rng.Make(static_cast<size_t>(N_) * d.OH * d.OW * K_);
    const size_t nw = static_cast<size_t>(K_) * d.R();
    Buf want_dw = NaNs(nw), want_db = NaNs(K_), dw = NaNs(nw), db = NaNs(K_);
    conv2d_backward_filter_ref(d, x.data(), dy.data(), want_dw.data(), want_db.data());
    be->conv2d_backward_filter(d, x.data(), dy.data(), dw.data(), with_db ? db.data() : nullptr,
                               MakeExec(1));
    const double L = static_cast<double>(N_) * d.OH * d.OW;
    EXPECT_TRUE(Close(dw, want_dw, L)) << "dw";
    if (with_db) {
      EXPECT_TRUE(Close(db, want_db, L)) << "db";
    } else {
      EXPECT_TRUE(db.GuardsIntact() && std::isnan(db[0])) << "db is null but was written";
    }
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " N=" << N_ << " HxW=" << H_ << "x" << W_ << " C=" << C_ << " K=" << K_
      << " kernel " << KH_ << "x" << KW_ << " stride " << SH_ << "," << SW_ << " pad t" << PT_
      << " l" << PL_ << " b" << PB_ << " r" << PR_ << " relu=" << relu_ << " bias=" << bias_;
    return s.str();
  }
  int N_ = 1, H_ = 1, W_ = 1, C_ = 1, K_ = 1, KH_ = 1, KW_ = 1, SH_ = 1, SW_ = 1;
  int PT_ = 0, PL_ = 0, PB_ = 0, PR_ = 0;
  bool relu_ = false, bias_ = true;
  uint32_t seed_ = 2;
};

// ---------------------------------------------------------------------------------------

class DenseTester {
 public:
  DenseTester& batch(int v) { N_ = v; return *this; }
  DenseTester& inputs(int v) { I_ = v; return *this; }
  DenseTester& outputs(int v) { O_ = v; return *this; }
  DenseTester& relu(bool v) { relu_ = v; return *this; }
  // Without a bias the forward kernel gets b = null (Keras use_bias=False).
  DenseTester& bias(bool v) { bias_ = v; return *this; }
  DenseTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    TestForward(be);
    TestBackwardData(be);
    TestBackwardFilter(be, true);
    TestBackwardFilter(be, false);
  }

  void TestForward(const Backend* be) const {
    SCOPED_TRACE(Describe("dense forward"));
    Rng rng(seed_);
    Buf w = rng.Make(static_cast<size_t>(O_) * I_);
    Buf b = rng.Make(O_, -0.5f, 0.5f);
    const Act act = relu_ ? Act::kRelu : Act::kNone;
    OpStatePtr state;
    const int batches[] = {N_, N_, OtherBatch(N_), N_};
    const uint64_t versions[] = {0, 1, 1, 1};
    const char* whats[] = {"first call", "after a parameter change", "with another batch size",
                           "back to the first batch size"};
    for (int call = 0; call < 4; ++call) {
      SCOPED_TRACE(whats[call]);
      if (call == 1) {
        for (size_t i = 0; i < w.size(); ++i) w[i] = rng.Uniform(-1.0f, 1.0f);
        for (size_t i = 0; i < b.size(); ++i) b[i] = rng.Uniform(-0.5f, 0.5f);
      }
      const int N = batches[call];
      Buf x = rng.Make(static_cast<size_t>(N) * I_);
      Buf want = NaNs(static_cast<size_t>(N) * O_), got = NaNs(static_cast<size_t>(N) * O_);
      const float* bp = bias_ ? b.data() : nullptr;
      dense_forward_ref(N, I_, O_, x.data(), w.data(), bp, act, want.data());
      be->dense_forward(N, I_, O_, x.data(), w.data(), bp, act, got.data(), state,
                        MakeExec(versions[call]));
      EXPECT_TRUE(Close(got, want, I_)) << "y";
    }
  }

  void TestBackwardData(const Backend* be) const {
    SCOPED_TRACE(Describe("dense backward data"));
    Rng rng(seed_ + 100);
    Buf w = rng.Make(static_cast<size_t>(O_) * I_);
    Buf dy = rng.Make(static_cast<size_t>(N_) * O_);
    const size_t nx = static_cast<size_t>(N_) * I_;
    Buf grad(nx, 0.0f);
    dense_backward_data_ref(N_, I_, O_, dy.data(), w.data(), grad.data());
    const Buf pattern = rng.Make(nx);
    Buf got = pattern;
    be->dense_backward_data(N_, I_, O_, dy.data(), w.data(), got.data(), MakeExec(1));
    EXPECT_TRUE(CloseOverwritten(got, pattern, grad, O_)) << "dx = gradient, whatever dx held";
  }

  void TestBackwardFilter(const Backend* be, bool with_db) const {
    SCOPED_TRACE(Describe(with_db ? "dense backward filter" : "dense backward filter, db=null"));
    Rng rng(seed_ + 200);
    Buf x = rng.Make(static_cast<size_t>(N_) * I_);
    Buf dy = rng.Make(static_cast<size_t>(N_) * O_);
    const size_t nw = static_cast<size_t>(O_) * I_;
    Buf want_dw = NaNs(nw), want_db = NaNs(O_), dw = NaNs(nw), db = NaNs(O_);
    dense_backward_filter_ref(N_, I_, O_, x.data(), dy.data(), want_dw.data(), want_db.data());
    be->dense_backward_filter(N_, I_, O_, x.data(), dy.data(), dw.data(),
                              with_db ? db.data() : nullptr, MakeExec(1));
    EXPECT_TRUE(Close(dw, want_dw, N_)) << "dw";
    if (with_db) {
      EXPECT_TRUE(Close(db, want_db, N_)) << "db";
    } else {
      EXPECT_TRUE(db.GuardsIntact() && std::isnan(db[0])) << "db is null but was written";
    }
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " N=" << N_ << " I=" << I_ << " O=" << O_ << " relu=" << relu_
      << " bias=" << bias_;
    return s.str();
  }
  int N_ = 1, I_ = 1, O_ = 1;
  bool relu_ = false, bias_ = true;
  uint32_t seed_ = 3;
};

// ---------------------------------------------------------------------------------------

class MaxPoolTester {
 public:
  MaxPoolTester& batch(int v) { N_ = v; return *this; }
  MaxPoolTester& hw(int h, int w) { H_ = h; W_ = w; return *this; }
  MaxPoolTester& channels(int v) { C_ = v; return *this; }
  MaxPoolTester& pool(int ph, int pw) { PH_ = ph; PW_ = pw; return *this; }
  MaxPoolTester& stride(int sh, int sw) { SH_ = sh; SW_ = sw; return *this; }
  // Inputs drawn from {-3, -2, -1}: ties in most windows, and no window maximum is >= 0.
  MaxPoolTester& ties(bool v) { ties_ = v; return *this; }
  MaxPoolTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    TestForward(be);
    TestBackward(be);
  }

  void TestForward(const Backend* be) const {
    SCOPED_TRACE(Describe("maxpool forward"));
    Rng rng(seed_);
    OpStatePtr state;
    const int batches[] = {N_, OtherBatch(N_)};
    for (int N : batches) {
      SCOPED_TRACE(N == N_ ? "first call" : "with another batch size");
      const PoolDims d = MakePoolDims(N, H_, W_, C_, PH_, PW_, SH_, SW_);
      Buf x = Input(rng, N);
      const size_t ny = static_cast<size_t>(N) * d.OH * d.OW * C_;
      Buf want = NaNs(ny), got = NaNs(ny);
      maxpool_forward_ref(d, x.data(), want.data());
      be->maxpool_forward(d, x.data(), got.data(), state, MakeExec(1));
      EXPECT_TRUE(Close(got, want, 1, 0.0)) << "y (must be exact)";
    }
  }

  // Also with relu_input: x a ReLU's output (windows of zeros included), dx the pool's
  // gradient gated as the ReLU's backward would gate it.
  void TestBackward(const Backend* be) const {
    for (const bool relu : {false, true}) {
      SCOPED_TRACE(Describe(relu ? "maxpool backward, relu input" : "maxpool backward"));
      Rng rng(seed_ + 100);
      PoolDims d = MakePoolDims(N_, H_, W_, C_, PH_, PW_, SH_, SW_);
      Buf x = Input(rng, N_);
      if (relu)
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::max(x[i], 0.0f);
      const size_t nx = x.size(), ny = static_cast<size_t>(N_) * d.OH * d.OW * C_;
      Buf y(ny);
      maxpool_forward_ref(d, x.data(), y.data());
      Buf dy = rng.Make(ny);
      Buf grad(nx, 0.0f);
      maxpool_backward_ref(d, x.data(), y.data(), dy.data(), grad.data());
      if (relu) {
        Buf gated(nx);
        relu_backward_ref(nx, x.data(), grad.data(), gated.data());
        d.relu_input = true;
        maxpool_backward_ref(d, x.data(), y.data(), dy.data(), grad.data());
        EXPECT_TRUE(Close(grad, gated, 1, 0.0)) << "ref: the pool's gradient, then the ReLU's gate";
      }
      const Buf pattern = rng.Make(nx);
      Buf got = pattern;
      be->maxpool_backward(d, x.data(), y.data(), dy.data(), got.data(), MakeExec(1));
      // Overlapping windows (stride < pool) may add several dy into one element, in any order.
      const double overlap = std::ceil(double(PH_) / SH_) * std::ceil(double(PW_) / SW_);
      EXPECT_TRUE(CloseOverwritten(got, pattern, grad, overlap)) << "dx = gradient, whatever dx held";
    }
  }

 private:
  Buf Input(Rng& rng, int N) const {
    const size_t n = static_cast<size_t>(N) * H_ * W_ * C_;
    return ties_ ? rng.MakeInts(n, -3, -1) : rng.Make(n);
  }
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " N=" << N_ << " HxW=" << H_ << "x" << W_ << " C=" << C_ << " pool " << PH_
      << "x" << PW_ << " stride " << SH_ << "," << SW_ << " ties=" << ties_;
    return s.str();
  }
  int N_ = 1, H_ = 2, W_ = 2, C_ = 1, PH_ = 2, PW_ = 2, SH_ = 2, SW_ = 2;
  bool ties_ = false;
  uint32_t seed_ = 4;
};

// ---------------------------------------------------------------------------------------

class GapTester {
 public:
  GapTester& batch(int v) { N_ = v; return *this; }
  GapTester& hw(int h, int w) { HW_ = h * w; return *this; }
  GapTester& channels(int v) { C_ = v; return *this; }
  GapTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    {
      SCOPED_TRACE(Describe("gap forward"));
      Rng rng(seed_);
      OpStatePtr state;
      const int batches[] = {N_, OtherBatch(N_)};
      for (int N : batches) {
        SCOPED_TRACE(N == N_ ? "first call" : "with another batch size");
        Buf x = rng.Make(static_cast<size_t>(N) * HW_ * C_);
        Buf want = NaNs(static_cast<size_t>(N) * C_), got = NaNs(static_cast<size_t>(N) * C_);
        gap_forward_ref(N, HW_, C_, x.data(), want.data());
        be->gap_forward(N, HW_, C_, x.data(), got.data(), state, MakeExec(1));
        EXPECT_TRUE(Close(got, want, HW_)) << "y";
      }
    }
    {
      SCOPED_TRACE(Describe("gap backward"));
      Rng rng(seed_ + 100);
      Buf dy = rng.Make(static_cast<size_t>(N_) * C_);
      const size_t nx = static_cast<size_t>(N_) * HW_ * C_;
      Buf grad(nx, 0.0f);
      gap_backward_ref(N_, HW_, C_, dy.data(), grad.data());
      const Buf pattern = rng.Make(nx);
      Buf got = pattern;
      be->gap_backward(N_, HW_, C_, dy.data(), got.data(), MakeExec(1));
      EXPECT_TRUE(CloseOverwritten(got, pattern, grad, 1)) << "dx = gradient, whatever dx held";
    }
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " N=" << N_ << " HW=" << HW_ << " C=" << C_;
    return s.str();
  }
  int N_ = 1, HW_ = 1, C_ = 1;
  uint32_t seed_ = 5;
};

// ---------------------------------------------------------------------------------------

enum class Pointwise { kRelu, kSigmoid };

class ActivationTester {
 public:
  ActivationTester& op(Pointwise v) { op_ = v; return *this; }
  ActivationTester& size(size_t v) { n_ = v; return *this; }
  // Inputs are uniform in [-range, range].
  ActivationTester& range(float v) { range_ = v; return *this; }
  ActivationTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    const bool relu = op_ == Pointwise::kRelu;
    const auto fwd_ref = relu ? relu_forward_ref : sigmoid_forward_ref;
    const auto bwd_ref = relu ? relu_backward_ref : sigmoid_backward_ref;
    const auto fwd = relu ? be->relu_forward : be->sigmoid_forward;
    const auto bwd = relu ? be->relu_backward : be->sigmoid_backward;
    {
      SCOPED_TRACE(Describe("forward"));
      Rng rng(seed_);
      OpStatePtr state;
      // A second, shorter call on the same state; the shorter length keeps an odd tail.
      const size_t sizes[] = {n_, n_ > 2 ? n_ - 2 : n_ + 2};
      for (size_t n : sizes) {
        SCOPED_TRACE(n == n_ ? "first call" : "with another size");
        Buf x = rng.Make(n, -range_, range_);
        Buf want = NaNs(n), got = NaNs(n);
        fwd_ref(n, x.data(), want.data());
        fwd(n, x.data(), got.data(), state, MakeExec(1));
        EXPECT_TRUE(Close(got, want, 1)) << "y";
      }
    }
    {
      SCOPED_TRACE(Describe("backward"));
      Rng rng(seed_ + 100);
      Buf x = rng.Make(n_, -range_, range_);
      Buf y(n_);
      fwd_ref(n_, x.data(), y.data());  // exact zeros for ReLU, as in training
      Buf dy = rng.Make(n_);
      Buf grad(n_, 0.0f);
      bwd_ref(n_, y.data(), dy.data(), grad.data());
      const Buf pattern = rng.Make(n_);
      Buf got = pattern;
      bwd(n_, y.data(), dy.data(), got.data(), MakeExec(1));
      EXPECT_TRUE(CloseOverwritten(got, pattern, grad, 1)) << "dx = gradient, whatever dx held";
    }
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << (op_ == Pointwise::kRelu ? "relu " : "sigmoid ") << what << " n=" << n_
      << " range=" << range_;
    return s.str();
  }
  Pointwise op_ = Pointwise::kRelu;
  size_t n_ = 1;
  float range_ = 4.0f;
  uint32_t seed_ = 6;
};

// ---------------------------------------------------------------------------------------

class SoftmaxTester {
 public:
  SoftmaxTester& rows(int v) { rows_ = v; return *this; }
  SoftmaxTester& cols(int v) { cols_ = v; return *this; }
  // Logits are uniform in [-range, range]; beyond ~88 a plain exp() overflows float.
  SoftmaxTester& range(float v) { range_ = v; return *this; }
  SoftmaxTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    {
      SCOPED_TRACE(Describe("softmax forward"));
      Rng rng(seed_);
      OpStatePtr state;
      const int row_counts[] = {rows_, OtherBatch(rows_)};
      for (int rows : row_counts) {
        SCOPED_TRACE(rows == rows_ ? "first call" : "with another row count");
        const size_t n = static_cast<size_t>(rows) * cols_;
        Buf x = rng.Make(n, -range_, range_);
        Buf want = NaNs(n), got = NaNs(n);
        softmax_forward_ref(rows, cols_, x.data(), want.data());
        be->softmax_forward(rows, cols_, x.data(), got.data(), state, MakeExec(1));
        EXPECT_TRUE(Close(got, want, cols_)) << "y";
      }
    }
    {
      SCOPED_TRACE(Describe("softmax backward"));
      Rng rng(seed_ + 100);
      const size_t n = static_cast<size_t>(rows_) * cols_;
      Buf x = rng.Make(n, -range_, range_);
      Buf y(n);
      softmax_forward_ref(rows_, cols_, x.data(), y.data());
      Buf dy = rng.Make(n);
      Buf grad(n, 0.0f);
      softmax_backward_ref(rows_, cols_, y.data(), dy.data(), grad.data());
      const Buf pattern = rng.Make(n);
      Buf got = pattern;
      be->softmax_backward(rows_, cols_, y.data(), dy.data(), got.data(), MakeExec(1));
      // dx = y * (dy - <y, dy>): terms of size y * dy cancel.
      double terms = 0.0;
      for (size_t i = 0; i < n; ++i) terms += std::pow(double(y[i]) * dy[i], 2);
      EXPECT_TRUE(CloseOverwritten(got, pattern, grad, cols_, std::sqrt(terms / std::max<size_t>(n, 1))))
          << "dx = gradient, whatever dx held";
    }
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " rows=" << rows_ << " cols=" << cols_ << " range=" << range_;
    return s.str();
  }
  int rows_ = 1, cols_ = 1;
  float range_ = 4.0f;
  uint32_t seed_ = 7;
};

// ---------------------------------------------------------------------------------------

class BatchNormTester {
 public:
  // M = N*H*W rows of C channels.
  BatchNormTester& rows(int v) { M_ = v; return *this; }
  BatchNormTester& channels(int v) { C_ = v; return *this; }
  BatchNormTester& eps(float v) { eps_ = v; return *this; }
  // Inputs are offset + uniform[-1, 1]; a large offset punishes one-pass variance.
  BatchNormTester& offset(float v) { offset_ = v; return *this; }
  BatchNormTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    TestTrain(be);
    TestInfer(be);
    TestBackward(be);
    TestBackwardInfer(be);
  }

  void TestTrain(const Backend* be) const {
    SCOPED_TRACE(Describe("batchnorm forward train"));
    Rng rng(seed_);
    Buf x = rng.Make(static_cast<size_t>(M_) * C_, offset_ - 1.0f, offset_ + 1.0f);
    Buf gamma = rng.Make(C_, 0.5f, 1.5f), beta = rng.Make(C_, -0.5f, 0.5f);
    const size_t n = x.size();
    Buf want_y = NaNs(n), want_mean = NaNs(C_), want_invstd = NaNs(C_);
    Buf y = NaNs(n), mean = NaNs(C_), invstd = NaNs(C_);
    batchnorm_forward_train_ref(M_, C_, x.data(), gamma.data(), beta.data(), eps_, want_y.data(),
                                want_mean.data(), want_invstd.data());
    be->batchnorm_forward_train(M_, C_, x.data(), gamma.data(), beta.data(), eps_, y.data(),
                                mean.data(), invstd.data(), MakeExec(1));
    EXPECT_TRUE(Close(y, want_y, M_)) << "y";
    EXPECT_TRUE(Close(mean, want_mean, M_)) << "mean";
    EXPECT_TRUE(Close(invstd, want_invstd, M_)) << "invstd";
  }

  void TestInfer(const Backend* be) const {
    SCOPED_TRACE(Describe("batchnorm forward infer"));
    Rng rng(seed_ + 100);
    Buf x = rng.Make(static_cast<size_t>(M_) * C_, offset_ - 1.0f, offset_ + 1.0f);
    Buf gamma = rng.Make(C_, 0.5f, 1.5f), beta = rng.Make(C_, -0.5f, 0.5f);
    Buf mmean = rng.Make(C_, offset_ - 0.5f, offset_ + 0.5f), mvar = rng.Make(C_, 0.05f, 2.0f);
    Buf want = NaNs(x.size()), got = NaNs(x.size());
    batchnorm_forward_infer_ref(M_, C_, x.data(), gamma.data(), beta.data(), mmean.data(),
                                mvar.data(), eps_, want.data());
    be->batchnorm_forward_infer(M_, C_, x.data(), gamma.data(), beta.data(), mmean.data(),
                                mvar.data(), eps_, got.data(), MakeExec(1));
    EXPECT_TRUE(Close(got, want, 1)) << "y";
  }

  void TestBackward(const Backend* be) const {
    SCOPED_TRACE(Describe("batchnorm backward"));
    Rng rng(seed_ + 200);
    const size_t n = static_cast<size_t>(M_) * C_;
    Buf x = rng.Make(n, offset_ - 1.0f, offset_ + 1.0f);
    Buf gamma = rng.Make(C_, 0.5f, 1.5f), beta = rng.Make(C_, -0.5f, 0.5f);
    Buf y(n), mean(C_), invstd(C_);
    batchnorm_forward_train_ref(M_, C_, x.data(), gamma.data(), beta.data(), eps_, y.data(),
                                mean.data(), invstd.data());
    Buf dy = rng.Make(n);
    Buf grad(n, 0.0f), want_dgamma = NaNs(C_), want_dbeta = NaNs(C_);
    batchnorm_backward_ref(M_, C_, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                           grad.data(), want_dgamma.data(), want_dbeta.data());
    const Buf pattern = rng.Make(n);
    Buf dx = pattern, dgamma = NaNs(C_), dbeta = NaNs(C_);
    be->batchnorm_backward(M_, C_, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                           dx.data(), dgamma.data(), dbeta.data(), false, MakeExec(1));
    // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) cancels to zero for M = 1.
    double terms = 0.0;
    for (size_t i = 0; i < n; ++i) terms += std::pow(double(gamma[i % C_]) * invstd[i % C_] * dy[i], 2);
    EXPECT_TRUE(CloseOverwritten(dx, pattern, grad, M_, std::sqrt(terms / std::max<size_t>(n, 1))))
        << "dx = gradient, whatever dx held";
    EXPECT_TRUE(Close(dgamma, want_dgamma, M_)) << "dgamma";
    EXPECT_TRUE(Close(dbeta, want_dbeta, M_)) << "dbeta";
  }

  // A frozen layer: the input gradient of the inference-mode normalisation.
  void TestBackwardInfer(const Backend* be) const {
    SCOPED_TRACE(Describe("batchnorm backward infer"));
    Rng rng(seed_ + 300);
    const size_t n = static_cast<size_t>(M_) * C_;
    Buf gamma = rng.Make(C_, 0.5f, 1.5f), mvar = rng.Make(C_, 0.05f, 2.0f);
    Buf dy = rng.Make(n);
    Buf grad(n, 0.0f);
    batchnorm_backward_infer_ref(M_, C_, dy.data(), gamma.data(), mvar.data(), eps_, grad.data());
    const Buf pattern = rng.Make(n);
    Buf dx = pattern;
    be->batchnorm_backward_infer(M_, C_, dy.data(), gamma.data(), mvar.data(), eps_, dx.data(),
                                 MakeExec(1));
    EXPECT_TRUE(CloseOverwritten(dx, pattern, grad, 1)) << "dx = gradient, whatever dx held";
  }

 private:
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << what << " M=" << M_ << " C=" << C_ << " eps=" << eps_ << " offset=" << offset_;
    return s.str();
  }
  int M_ = 1, C_ = 1;
  float eps_ = 1e-3f, offset_ = 0.0f;
  uint32_t seed_ = 8;
};

// ---------------------------------------------------------------------------------------

// Inverted dropout with a given mask; rate 0 tests the identity kernels instead, which is what
// Dropout runs outside training (and Flatten always).
class DropoutTester {
 public:
  DropoutTester& size(size_t v) { n_ = v; return *this; }
  DropoutTester& rate(float v) { rate_ = v; return *this; }
  DropoutTester& seed(uint32_t v) { seed_ = v; return *this; }

  void Test(const Backend* be) const {
    Rng rng(seed_);
    Buf mask(n_);
    for (size_t i = 0; i < n_; ++i) mask[i] = rng.Uniform(0.0f, 1.0f) < rate_ ? 0.0f : Keep();
    const float* m = mask.data();
    const Exec e = MakeExec(1);
    // The kernels under test, (x, y) forward and (dy, dx) backward.
    std::function<void(const float*, float*)> fwd_ref, fwd, bwd_ref, bwd;
    if (rate_ == 0.0f) {
      fwd_ref = [&](const float* x, float* y) { identity_forward_ref(n_, x, y); };
      fwd = [&](const float* x, float* y) { be->identity_forward(n_, x, y, e); };
      bwd_ref = [&](const float* dy, float* dx) { identity_backward_ref(n_, dy, dx); };
      bwd = [&](const float* dy, float* dx) { be->identity_backward(n_, dy, dx, e); };
    } else {
      fwd_ref = [&](const float* x, float* y) { dropout_forward_ref(n_, x, m, y); };
      fwd = [&](const float* x, float* y) { be->dropout_forward(n_, x, m, y, e); };
      bwd_ref = [&](const float* dy, float* dx) { dropout_backward_ref(n_, m, dy, dx); };
      bwd = [&](const float* dy, float* dx) { be->dropout_backward(n_, m, dy, dx, e); };
    }
    {
      SCOPED_TRACE(Describe("forward"));
      Buf x = rng.Make(n_);
      Buf want = NaNs(n_), got = NaNs(n_);
      fwd_ref(x.data(), want.data());
      fwd(x.data(), got.data());
      EXPECT_TRUE(Close(got, want, 1, 0.0)) << "y (must be exact)";
    }
    {
      SCOPED_TRACE(Describe("backward"));
      Buf dy = rng.Make(n_);
      Buf grad(n_, 0.0f);
      bwd_ref(dy.data(), grad.data());
      const Buf pattern = rng.Make(n_);
      Buf got = pattern;
      bwd(dy.data(), got.data());
      EXPECT_TRUE(CloseOverwritten(got, pattern, grad, 1)) << "dx = gradient, whatever dx held";
    }
  }

 private:
  float Keep() const { return 1.0f / (1.0f - rate_); }
  std::string Describe(const char* what) const {
    std::ostringstream s;
    s << (rate_ == 0.0f ? "identity " : "dropout ") << what << " n=" << n_ << " rate=" << rate_;
    return s.str();
  }
  size_t n_ = 1;
  float rate_ = 0.5f;
  uint32_t seed_ = 9;
};

}  // namespace ktest
}  // namespace kern
}  // namespace tagnet
