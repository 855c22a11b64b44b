// Kernels: plain functions over raw pointers and dimensions. Private to the core.
//
// Layout is NHWC float32. Dimension letters: N batch, H/W spatial, C input channels,
// K output channels, KH/KW kernel size, OH/OW output size, R = KH*KW*C (one im2col row).
// Conv weights are (K, KH, KW, C) ("OHWI", XNNPACK's order); dense weights are (O, I).
// Gradients start with `d`. Backward kernels OVERWRITE the gradients they produce, input and
// parameter gradients alike, so no pass is spent zeroing them first.
//
// Every op has a `_ref` kernel (the test oracle) and may have fast ones (`_hwy`, `_xnnpack`).
// A Backend is a table of kernels; the one a build runs is chosen once at start-up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tagnet {

class ThreadPool;

namespace kern {

enum class Act : int { kNone = 0, kRelu = 1 };

struct ConvDims {
  int N, H, W, C;            // input (N, H, W, C)
  int K, KH, KW;             // output channels, kernel size
  int SH, SW;                // stride
  int PT, PL, PB, PR;        // zero padding top/left/bottom/right
  int OH, OW;                // output (N, OH, OW, K)
  int R() const { return KH * KW * C; }
};

struct PoolDims {
  int N, H, W, C;            // input (N, H, W, C)
  int PH, PW, SH, SW;        // pool window and stride, valid padding
  int OH, OW;                // output (N, OH, OW, C)
  // Backward only: x is the output of a ReLU, whose gate the input gradient then carries
  // too (zero where the window's maximum is not positive), so the ReLU's backward pass over
  // the whole tensor can be skipped.
  bool relu_input = false;
};

// Per-op state a backend may keep between calls (XNNPACK keeps its operator with packed
// weights). Owned by the layer, opaque to it.
struct OpState {
  virtual ~OpState() = default;
};
using OpStatePtr = std::unique_ptr<OpState>;

// Everything a kernel may need beyond its operands.
struct Exec {
  ThreadPool* pool = nullptr;   // never null when called through a Backend
  // Bumped whenever parameters change, so cached packed weights are repacked.
  uint64_t param_version = 0;
  // A training step's forward pass: it runs on the float weights themselves, which change
  // before the next step (inference may use cheaper copies, e.g. a large Dense's 16-bit ones).
  bool training = false;
};

// ---- reference kernels (shared/src/kernels/kernels_ref.cpp) ----
// C (M, N) = (accumulate ? C : 0) + A * B where A(i, k) = A[i*rsa + k*csa] and
// B(k, j) = B[k*rsb + j*csb]; C is row-major with leading dimension ldc.
void gemm_ref(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
              long csb, float* C, long ldc, bool accumulate);

// Forward kernels take b == null for layers without a bias.
void conv2d_forward_ref(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                        float* y);
void conv2d_backward_data_ref(const ConvDims& d, const float* dy, const float* w, float* dx);
void conv2d_backward_filter_ref(const ConvDims& d, const float* x, const float* dy, float* dw,
                                float* db /* may be null */);

void dense_forward_ref(int N, int I, int O, const float* x, const float* w, const float* b, Act act,
                       float* y);
void dense_backward_data_ref(int N, int I, int O, const float* dy, const float* w, float* dx);
void dense_backward_filter_ref(int N, int I, int O, const float* x, const float* dy, float* dw,
                               float* db /* may be null */);

void maxpool_forward_ref(const PoolDims& d, const float* x, float* y);
// Routes dy to the first maximum of each window (ties go to the first in row-major order).
void maxpool_backward_ref(const PoolDims& d, const float* x, const float* y, const float* dy,
                          float* dx);

void gap_forward_ref(int N, int HW, int C, const float* x, float* y);
void gap_backward_ref(int N, int HW, int C, const float* dy, float* dx);

void relu_forward_ref(size_t n, const float* x, float* y);
void relu_backward_ref(size_t n, const float* y, const float* dy, float* dx);
void sigmoid_forward_ref(size_t n, const float* x, float* y);
void sigmoid_backward_ref(size_t n, const float* y, const float* dy, float* dx);
void softmax_forward_ref(int rows, int cols, const float* x, float* y);
void softmax_backward_ref(int rows, int cols, const float* y, const float* dy, float* dx);

// BatchNorm over M rows of C channels (M = N*H*W). Training: batch mean/variance (biased),
// saved in mean/invstd; inference: uses the given moving statistics.
void batchnorm_forward_train_ref(int M, int C, const float* x, const float* gamma,
                                 const float* beta, float eps, float* y, float* mean,
                                 float* invstd);
void batchnorm_forward_infer_ref(int M, int C, const float* x, const float* gamma,
                                 const float* beta, const float* moving_mean,
                                 const float* moving_var, float eps, float* y);
void batchnorm_backward_ref(int M, int C, const float* x, const float* dy, const float* gamma,
                            const float* mean, const float* invstd, float* dx, float* dgamma,
                            float* dbeta, bool relu_input = false);
// The input gradient of inference-mode BatchNorm (a frozen layer), an affine map per channel:
// dx = dy * gamma / sqrt(moving_var + eps).
void batchnorm_backward_infer_ref(int M, int C, const float* dy, const float* gamma,
                                  const float* moving_var, float eps, float* dx);

// Inverted dropout with a given mask, 0 or 1/(1-rate) per element: y = x * mask.
void dropout_forward_ref(size_t n, const float* x, const float* mask, float* y);
void dropout_backward_ref(size_t n, const float* mask, const float* dy, float* dx);
// y = x (Flatten, Dropout outside training); its backward copies dy into dx.
void identity_forward_ref(size_t n, const float* x, float* y);
void identity_backward_ref(size_t n, const float* dy, float* dx);

// ---- the dispatch table ----
// Tables fill it in slot order and label every entry, `/* .gemm = */ gemm_hwy,` (ggml's way:
// C++17 has no designated initializers), so a misplaced kernel shows in review.
struct Backend {
  const char* name;
  void (*gemm)(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
               long csb, float* C, long ldc, bool accumulate, const Exec& e);
  void (*conv2d_forward)(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                         float* y, OpStatePtr& state, const Exec& e);
  void (*conv2d_backward_data)(const ConvDims& d, const float* dy, const float* w, float* dx,
                               const Exec& e);
  void (*conv2d_backward_filter)(const ConvDims& d, const float* x, const float* dy, float* dw,
                                 float* db, const Exec& e);
  void (*dense_forward)(int N, int I, int O, const float* x, const float* w, const float* b, Act act,
                        float* y, OpStatePtr& state, const Exec& e);
  void (*dense_backward_data)(int N, int I, int O, const float* dy, const float* w, float* dx,
                              const Exec& e);
  void (*dense_backward_filter)(int N, int I, int O, const float* x, const float* dy, float* dw,
                                float* db, const Exec& e);
  void (*maxpool_forward)(const PoolDims& d, const float* x, float* y, OpStatePtr& state,
                          const Exec& e);
  void (*maxpool_backward)(const PoolDims& d, const float* x, const float* y, const float* dy,
                           float* dx, const Exec& e);
  void (*gap_forward)(int N, int HW, int C, const float* x, float* y, OpStatePtr& state,
                      const Exec& e);
  void (*gap_backward)(int N, int HW, int C, const float* dy, float* dx, const Exec& e);
  void (*relu_forward)(size_t n, const float* x, float* y, OpStatePtr& state, const Exec& e);
  void (*relu_backward)(size_t n, const float* y, const float* dy, float* dx, const Exec& e);
  void (*sigmoid_forward)(size_t n, const float* x, float* y, OpStatePtr& state, const Exec& e);
  void (*sigmoid_backward)(size_t n, const float* y, const float* dy, float* dx, const Exec& e);
  void (*softmax_forward)(int rows, int cols, const float* x, float* y, OpStatePtr& state,
                          const Exec& e);
  void (*softmax_backward)(int rows, int cols, const float* y, const float* dy, float* dx,
                           const Exec& e);
  void (*batchnorm_forward_train)(int M, int C, const float* x, const float* gamma,
                                  const float* beta, float eps, float* y, float* mean,
                                  float* invstd, const Exec& e);
  void (*batchnorm_forward_infer)(int M, int C, const float* x, const float* gamma,
                                  const float* beta, const float* moving_mean,
                                  const float* moving_var, float eps, float* y, const Exec& e);
  // relu_input: x is a ReLU's output, and dx also takes that ReLU's gate (zero where x <= 0),
  // so Model skips the ReLU's own pass.
  void (*batchnorm_backward)(int M, int C, const float* x, const float* dy, const float* gamma,
                             const float* mean, const float* invstd, float* dx, float* dgamma,
                             float* dbeta, bool relu_input, const Exec& e);
  void (*batchnorm_backward_infer)(int M, int C, const float* dy, const float* gamma,
                                   const float* moving_var, float eps, float* dx, const Exec& e);
  void (*dropout_forward)(size_t n, const float* x, const float* mask, float* y, const Exec& e);
  void (*dropout_backward)(size_t n, const float* mask, const float* dy, float* dx,
                           const Exec& e);
  void (*identity_forward)(size_t n, const float* x, float* y, const Exec& e);
  void (*identity_backward)(size_t n, const float* dy, float* dx, const Exec& e);
};

// `partial` with each empty slot filled from `fallback`: a backend may fill only the kernels it
// runs better and leave the rest to another table.
Backend complete_backend(const Backend& partial, const Backend& fallback);

// The tables. `ref` is single-threaded plain loops; `hwy` is the project's own Highway
// kernels (what the WASM build runs); `xnnpack` runs forward ops on XNNPACK and the rest on
// the `hwy` kernels. backend_xnnpack() returns null when built without XNNPACK.
const Backend* backend_ref();
const Backend* backend_hwy();  // hwy_target().backend
const Backend* backend_xnnpack();

// The `hwy` kernels are compiled once per instruction set, a Highway target (AVX3 = AVX-512,
// AVX2 = AVX2+FMA, SSE4, SCALAR for any x86-64; WASM under Emscripten), one table each.
struct HwyTarget {
  const char* name;
  const Backend* backend;
};
// The targets built in that this CPU runs, best first.
const std::vector<HwyTarget>& hwy_targets();
// The target in use: the best one, or the one the environment variable TAGNET_HWY_TARGET
// names (one of hwy_targets(), e.g. AVX2). Chosen on the first call; an unknown or
// unsupported name throws std::runtime_error.
const HwyTarget& hwy_target();

}  // namespace kern
}  // namespace tagnet
