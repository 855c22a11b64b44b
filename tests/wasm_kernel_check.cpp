// The `hwy` kernels as the WebAssembly build compiles them (Highway's WASM target) against the
// reference kernels, on one and two threads: the shapes that take each path of the convolution
// (Winograd forward, input and filter gradients; direct and implicit GEMM), dense layers, GEMM
// and BatchNorm's gated input gradient. The native kernel tests cover the x86 targets; this
// program covers the one the page runs. Prints one line per check and exits non-zero if any
// fails.
//
//   node tagnet_wasm_kernel_check.js
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"

namespace {

using tagnet::ThreadPool;
using namespace tagnet::kern;

int failures = 0;

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = lo + (hi - lo) * static_cast<float>(s >> 8) / 16777216.0f;
  }
  return v;
}

// Within rtol of the reference's root mean square (Winograd rounds differently from a direct
// sum, so the bound is relative to the output's scale), as the native Winograd tests.
void Check(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
           double rtol = 1e-4) {
  double ss = 0.0, worst = 0.0;
  for (float w : want) ss += static_cast<double>(w) * w;
  const double rms = want.empty() ? 0.0 : std::sqrt(ss / want.size());
  bool finite = got.size() == want.size();
  for (size_t i = 0; finite && i < want.size(); ++i) {
    if (!std::isfinite(got[i])) finite = false;
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
  }
  const double allowed = rtol * std::max(rms, 1e-6);
  const bool ok = finite && worst <= allowed;
  if (!ok) ++failures;
  std::printf("%s %s: worst |hwy - ref| %.3g, allowed %.3g\n", ok ? "ok  " : "FAIL", what.c_str(),
              worst, allowed);
}

ConvDims Conv(int N, int H, int W, int C, int K, int k, int s, int pad) {
  ConvDims d{N, H, W, C, K, k, k, s, s, pad, pad, pad, pad, 0, 0};
  d.OH = (H + 2 * pad - k) / s + 1;
  d.OW = (W + 2 * pad - k) / s + 1;
  return d;
}

void CheckConv(const char* name, const ConvDims& d, const Exec& e) {
  const Backend& ref = *backend_ref();
  const Backend& hwy = *backend_hwy();
  const size_t nx = static_cast<size_t>(d.N) * d.H * d.W * d.C;
  const size_t ny = static_cast<size_t>(d.N) * d.OH * d.OW * d.K;
  const size_t nw = static_cast<size_t>(d.K) * d.R();
  const auto x = Random(nx, 1), w = Random(nw, 2), b = Random(d.K, 3), dy = Random(ny, 4);
  const std::string tag = std::string(name) + " (" + std::to_string(e.pool->threads()) + " threads)";
  std::vector<float> want(ny), got(ny);
  OpStatePtr s1, s2;
  ref.conv2d_forward(d, x.data(), w.data(), b.data(), Act::kRelu, want.data(), s1, e);
  hwy.conv2d_forward(d, x.data(), w.data(), b.data(), Act::kRelu, got.data(), s2, e);
  Check(tag + " forward", got, want);
  std::vector<float> dx_want(nx, 0.5f), dx_got(nx, 0.5f);
  ref.conv2d_backward_data(d, dy.data(), w.data(), dx_want.data(), e);
  hwy.conv2d_backward_data(d, dy.data(), w.data(), dx_got.data(), e);
  Check(tag + " input gradient", dx_got, dx_want);
  std::vector<float> dw_want(nw), dw_got(nw, 7.0f), db_want(d.K), db_got(d.K, 7.0f);
  ref.conv2d_backward_filter(d, x.data(), dy.data(), dw_want.data(), db_want.data(), e);
  hwy.conv2d_backward_filter(d, x.data(), dy.data(), dw_got.data(), db_got.data(), e);
  Check(tag + " filter gradient", dw_got, dw_want);
  Check(tag + " bias gradient", db_got, db_want);
}

void CheckDense(int N, int I, int O, const Exec& e) {
  const Backend& ref = *backend_ref();
  const Backend& hwy = *backend_hwy();
  const auto x = Random(static_cast<size_t>(N) * I, 5), w = Random(static_cast<size_t>(O) * I, 6);
  const auto b = Random(O, 7), dy = Random(static_cast<size_t>(N) * O, 8);
  const std::string tag = "dense " + std::to_string(N) + "x" + std::to_string(I) + "->" +
                          std::to_string(O) + " (" + std::to_string(e.pool->threads()) + " threads)";
  Exec train = e;
  train.training = true;
  std::vector<float> want(static_cast<size_t>(N) * O), got(want.size());
  OpStatePtr s1, s2;
  ref.dense_forward(N, I, O, x.data(), w.data(), b.data(), Act::kNone, want.data(), s1, train);
  hwy.dense_forward(N, I, O, x.data(), w.data(), b.data(), Act::kNone, got.data(), s2, train);
  Check(tag + " forward", got, want, 1e-5);
  std::vector<float> dx_want(static_cast<size_t>(N) * I), dx_got(dx_want.size());
  ref.dense_backward_data(N, I, O, dy.data(), w.data(), dx_want.data(), e);
  hwy.dense_backward_data(N, I, O, dy.data(), w.data(), dx_got.data(), e);
  Check(tag + " input gradient", dx_got, dx_want, 1e-5);
  std::vector<float> dw_want(static_cast<size_t>(O) * I), dw_got(dw_want.size()), db_want(O),
      db_got(O);
  ref.dense_backward_filter(N, I, O, x.data(), dy.data(), dw_want.data(), db_want.data(), e);
  hwy.dense_backward_filter(N, I, O, x.data(), dy.data(), dw_got.data(), db_got.data(), e);
  Check(tag + " weight gradient", dw_got, dw_want, 1e-5);
  Check(tag + " bias gradient", db_got, db_want, 1e-5);
}

void CheckBatchNormGate(const Exec& e) {
  const int M = 500, C = 19;
  const size_t n = static_cast<size_t>(M) * C;
  auto x = Random(n, 9);
  for (float& v : x) v = std::max(v, 0.0f);  // a ReLU's output
  const auto gamma = Random(C, 10, 0.5f, 1.5f), beta = Random(C, 11), dy = Random(n, 12);
  std::vector<float> y(n), mean(C), invstd(C);
  batchnorm_forward_train_ref(M, C, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(),
                              mean.data(), invstd.data());
  std::vector<float> want(n), got(n, 7.0f), dg(C), db(C), dg2(C), db2(C);
  backend_ref()->batchnorm_backward(M, C, x.data(), dy.data(), gamma.data(), mean.data(),
                                    invstd.data(), want.data(), dg.data(), db.data(), true, e);
  backend_hwy()->batchnorm_backward(M, C, x.data(), dy.data(), gamma.data(), mean.data(),
                                    invstd.data(), got.data(), dg2.data(), db2.data(), true, e);
  Check("batchnorm input gradient through a ReLU (" + std::to_string(e.pool->threads()) +
            " threads)",
        got, want, 1e-5);
}

}  // namespace

int main() {
  std::printf("hwy target: %s\n", hwy_target().name);
  ThreadPool one(1), two(2);
  for (ThreadPool* pool : {&one, &two}) {
    Exec e;
    e.pool = pool;
    // Winograd in all three passes (SmallerVGGNet's second block, border tiles, odd channels).
    CheckConv("conv 3x3 24x24 64->64", Conv(4, 24, 24, 64, 64, 3, 1, 1), e);
    CheckConv("conv 3x3 13x11 17->19", Conv(3, 13, 11, 17, 19, 3, 1, 1), e);
    // Direct (3 input channels), implicit GEMM (2x2, stride 2) and 128 x 256 channels, whose
    // filter gradient is not Winograd.
    CheckConv("conv 3x3 32x32 3->32", Conv(2, 32, 32, 3, 32, 3, 1, 1), e);
    CheckConv("conv 2x2/2 14x14 32->64", Conv(3, 14, 14, 32, 64, 2, 2, 0), e);
    CheckConv("conv 3x3 6x6 128->256", Conv(2, 6, 6, 128, 256, 3, 1, 1), e);
    CheckDense(32, 300, 70, e);
    CheckDense(1, 1024, 64, e);
    CheckBatchNormGate(e);
    {
      const int M = 67, N = 45, K = 129;
      const auto a = Random(static_cast<size_t>(M) * K, 13), b = Random(static_cast<size_t>(K) * N, 14);
      std::vector<float> want(static_cast<size_t>(M) * N), got(want.size());
      backend_ref()->gemm(M, N, K, a.data(), K, 1, b.data(), N, 1, want.data(), N, false, e);
      backend_hwy()->gemm(M, N, K, a.data(), K, 1, b.data(), N, 1, got.data(), N, false, e);
      Check("gemm 67x45x129 (" + std::to_string(pool->threads()) + " threads)", got, want, 1e-5);
    }
  }
  std::printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
