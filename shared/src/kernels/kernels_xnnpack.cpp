// The `xnnpack` backend: forward ops run on XNNPACK operators, everything XNNPACK lacks
// (gemm, the backward passes, batchnorm, dropout, copies) on the project's own Highway kernels.
//
// XNNPACK packs weights when an operator is created, so each layer keeps its operator in
// its OpState and it is re-created only when the creation arguments, the parameter
// pointers or Exec::param_version change; otherwise a call is just setup + run.
// XNNPACK may read up to XNN_EXTRA_BYTES past the end of an input.
#ifdef TAGNET_USE_XNNPACK

#include <pthreadpool.h>
#include <xnnpack.h>

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "parallel_thresholds.h"
#include "thread_pool.h"

namespace tagnet::kern {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Without this the pool's workers spin for a while after every operator, taking the cores
// from tagnet::ThreadPool, which runs batchnorm and the backward kernels in between: a
// 16x16x64->128 convolution followed by a 7 ms ThreadPool job took 18.9 ms against 13.6 ms
// for the two apart, and 13.9 ms with the workers yielding.
constexpr uint32_t kOpFlags = XNN_FLAG_YIELD_WORKERS;

const char* status_name(xnn_status s) {
  switch (s) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
  }
  return "unknown status";
}

void check(xnn_status s, const char* op, const char* stage) {
  if (s != xnn_status_success)
    throw std::runtime_error(std::string("XNNPACK ") + op + ": " + stage + " failed (" +
                             status_name(s) + ")");
}

xnn_status initialize() {
  static std::once_flag once;
  static xnn_status status = xnn_status_uninitialized;
  std::call_once(once, [] { status = xnn_initialize(nullptr); });
  return status;
}

struct PthreadpoolDeleter {
  void operator()(pthreadpool_t p) const { pthreadpool_destroy(p); }
};

// Work of a GEMM-like op in element-wise units: the weights are streamed once and a
// multiply-add costs about a sixteenth of an element-wise op (dense 1024->64 over 32 rows:
// 44 us inline, 52 us on two threads; 1024->1024 over one row: 155 us inline, 72 us threaded).
double gemm_work(double macs, double weights) { return macs / 16 + weights; }

// XNNPACK's own pool, sized like the Exec's ThreadPool; one per thread count, kept for the
// life of the process because starting threads per call would cost more than small ops.
// Null runs the operator on the calling thread.
pthreadpool_t xnn_threads(const Exec& e, double work) {
  const int threads = e.pool ? e.pool->threads() : 1;
  if (threads <= 1 || work < kMinXnnpackThreadedWork) return nullptr;
  static std::mutex mu;
  static std::map<int, std::unique_ptr<pthreadpool, PthreadpoolDeleter>> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto& pool = pools[threads];
  if (!pool) {
    pool.reset(pthreadpool_create(static_cast<size_t>(threads)));
    if (!pool) throw std::runtime_error("XNNPACK: pthreadpool_create failed");
  }
  return pool.get();
}

enum OpKind : int64_t { kConv = 1, kDense, kMaxPool, kGap, kRelu, kSigmoid, kSoftmax };

// Everything an operator was created from: its kind, the creation arguments, the parameter
// pointers and the parameter version. Batch and spatial sizes are setup arguments instead.
using OpKey = std::array<int64_t, 16>;

int64_t key_of(const void* p) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(p)); }

class XnnOpState final : public OpState {
 public:
  ~XnnOpState() override { reset(); }
  void reset() {
    if (op) xnn_delete_operator(op);
    op = nullptr;
  }
  xnn_operator_t op = nullptr;
  OpKey key{};
  // Parameters seen once and not packed yet (see kMinUsesToPackAtOnce).
  OpKey deferred{};
  bool has_deferred = false;
  // The hwy kernel's own state for the calls that do not run on XNNPACK.
  OpStatePtr hwy_state;
};

XnnOpState& xnn_state(OpStatePtr& state) {
  auto* s = dynamic_cast<XnnOpState*>(state.get());
  if (!s) {
    state = std::make_unique<XnnOpState>();
    s = static_cast<XnnOpState*>(state.get());
  }
  return *s;
}

// Packing costs about as much as a few uses of every weight: creating the 8192x1024 dense
// operator takes 25-45 ms, while a forward pass over a batch of 32 takes 4 ms. During training
// the parameters change before every call, so an operator whose weights are used fewer times
// than this per call is only packed when the same parameters come back (inference, evaluation);
// the first call with new parameters runs on the hwy kernel instead.
constexpr int64_t kMinUsesToPackAtOnce = 256;

// The layer's operator for `key`, created by create(&op) when the cached one does not match;
// null when the creation is deferred and the caller should run the hwy kernel.
template <typename Create>
xnn_operator_t cached_op(XnnOpState& s, const OpKey& key, int64_t weight_uses, const char* name,
                         Create&& create) {
  if (s.op && s.key == key) return s.op;
  s.reset();
  if (weight_uses < kMinUsesToPackAtOnce && !(s.has_deferred && s.deferred == key)) {
    s.deferred = key;
    s.has_deferred = true;
    return nullptr;
  }
  xnn_operator_t op = nullptr;
  check(create(&op), name, "create");
  s.op = op;
  s.key = key;
  s.has_deferred = false;
  return op;
}

// Parameter-free operators are cheap to create and never deferred.
template <typename Create>
xnn_operator_t cached_op(OpStatePtr& state, const OpKey& key, const char* name, Create&& create) {
  return cached_op(xnn_state(state), key, kMinUsesToPackAtOnce, name, create);
}

void run(xnn_operator_t op, pthreadpool_t threads, const char* name) {
  check(xnn_run_operator(op, threads), name, "run");
}

void conv2d_forward(const ConvDims& d, const float* x /* (N, H, W, C) */,
                    const float* w /* (K, KH, KW, C) */, const float* b /* (K) or null */, Act act,
                    float* y /* (N, OH, OW, K) */, OpStatePtr& state, const Exec& e) {
  // XNNPACK derives the output size itself; a mismatch would write outside y.
  if (d.OH != (d.H + d.PT + d.PB - d.KH) / d.SH + 1 ||
      d.OW != (d.W + d.PL + d.PR - d.KW) / d.SW + 1)
    throw std::invalid_argument("XNNPACK convolution: output size does not match the padding");
  if (d.N == 0) return;
  const float lo = act == Act::kRelu ? 0.f : -kInf;
  const OpKey key{kConv, d.C, d.K, d.KH, d.KW, d.SH, d.SW, d.PT, d.PL, d.PB, d.PR,
                  static_cast<int64_t>(act), key_of(w), key_of(b),
                  static_cast<int64_t>(e.param_version)};
  XnnOpState& s = xnn_state(state);
  const int64_t weight_uses = int64_t{d.N} * d.OH * d.OW;
  xnn_operator_t op = cached_op(s, key, weight_uses, "convolution", [&](xnn_operator_t* out) {
    return xnn_create_convolution2d_nhwc_f32(
        d.PT, d.PR, d.PB, d.PL, d.KH, d.KW, d.SH, d.SW, /*dilation*/ 1, 1, /*groups*/ 1, d.C, d.K,
        /*input_channel_stride*/ d.C, /*output_channel_stride*/ d.K, w, b, lo, kInf, kOpFlags,
        out);
  });
  if (!op) {
    backend_hwy()->conv2d_forward(d, x, w, b, act, y, s.hwy_state, e);
    return;
  }
  pthreadpool_t threads =
      xnn_threads(e, gemm_work(double(d.N) * d.OH * d.OW * d.K * d.R(), double(d.K) * d.R()));
  check(xnn_setup_convolution2d_nhwc_f32(op, d.N, d.H, d.W, x, y, threads), "convolution",
        "setup");
  run(op, threads, "convolution");
}

void dense_forward(int N, int I, int O, const float* x /* (N, I) */, const float* w /* (O, I) */,
                   const float* b /* (O) or null */, Act act, float* y /* (N, O) */,
                   OpStatePtr& state, const Exec& e) {
  if (N == 0) return;
  const float lo = act == Act::kRelu ? 0.f : -kInf;
  const OpKey key{kDense, I, O, static_cast<int64_t>(act), key_of(w), key_of(b),
                  static_cast<int64_t>(e.param_version)};
  XnnOpState& s = xnn_state(state);
  xnn_operator_t op = cached_op(s, key, N, "fully connected", [&](xnn_operator_t* out) {
    return xnn_create_fully_connected_nc_f32(I, O, /*input_stride*/ I, /*output_stride*/ O, w, b,
                                             lo, kInf, kOpFlags, out);
  });
  if (!op) {
    backend_hwy()->dense_forward(N, I, O, x, w, b, act, y, s.hwy_state, e);
    return;
  }
  pthreadpool_t threads = xnn_threads(e, gemm_work(double(N) * I * O, double(I) * O));
  check(xnn_setup_fully_connected_nc_f32(op, N, x, y, threads), "fully connected", "setup");
  run(op, threads, "fully connected");
}

void maxpool_forward(const PoolDims& d, const float* x /* (N, H, W, C) */,
                     float* y /* (N, OH, OW, C) */, OpStatePtr& state, const Exec& e) {
  // XNNPACK rejects 1x1 windows, and its later releases strides larger than the window.
  if (d.PH * d.PW == 1 || d.SH > d.PH || d.SW > d.PW) {
    backend_hwy()->maxpool_forward(d, x, y, state, e);
    return;
  }
  if (d.OH != (d.H - d.PH) / d.SH + 1 || d.OW != (d.W - d.PW) / d.SW + 1)
    throw std::invalid_argument("XNNPACK max pooling: output size does not match the window");
  if (d.N == 0) return;
  const OpKey key{kMaxPool, d.C, d.PH, d.PW, d.SH, d.SW};
  xnn_operator_t op = cached_op(state, key, "max pooling", [&](xnn_operator_t* out) {
    return xnn_create_max_pooling2d_nhwc_f32(/*padding*/ 0, 0, 0, 0, d.PH, d.PW, d.SH, d.SW,
                                             /*dilation*/ 1, 1, d.C, d.C, d.C, -kInf, kInf,
                                             kOpFlags, out);
  });
  pthreadpool_t threads = xnn_threads(e, double(d.N) * d.OH * d.OW * d.C * d.PH * d.PW);
  check(xnn_setup_max_pooling2d_nhwc_f32(op, d.N, d.H, d.W, x, y, threads), "max pooling",
        "setup");
  run(op, threads, "max pooling");
}

void gap_forward(int N, int HW, int C, const float* x /* (N, HW, C) */, float* y /* (N, C) */,
                 OpStatePtr& state, const Exec& e) {
  if (N == 0) return;
  const OpKey key{kGap, C};
  xnn_operator_t op = cached_op(state, key, "global average pooling", [&](xnn_operator_t* out) {
    return xnn_create_global_average_pooling_nwc_f32(C, C, C, -kInf, kInf, kOpFlags, out);
  });
  pthreadpool_t threads = xnn_threads(e, double(N) * HW * C);
  check(xnn_setup_global_average_pooling_nwc_f32(op, N, HW, x, y, threads),
        "global average pooling", "setup");
  run(op, threads, "global average pooling");
}

// Element-wise ops see the data as n rows of one channel; XNNPACK then treats it as one
// contiguous run split into large blocks.
void relu_forward(size_t n, const float* x, float* y, OpStatePtr& state, const Exec& e) {
  if (n == 0) return;
  xnn_operator_t op = cached_op(state, OpKey{kRelu}, "relu", [&](xnn_operator_t* out) {
    return xnn_create_clamp_nc_f32(1, 1, 1, 0.f, kInf, kOpFlags, out);
  });
  pthreadpool_t threads = xnn_threads(e, double(n));
  check(xnn_setup_clamp_nc_f32(op, n, x, y, threads), "relu", "setup");
  run(op, threads, "relu");
}

void sigmoid_forward(size_t n, const float* x, float* y, OpStatePtr& state, const Exec& e) {
  if (n == 0) return;
  xnn_operator_t op = cached_op(state, OpKey{kSigmoid}, "sigmoid", [&](xnn_operator_t* out) {
    return xnn_create_sigmoid_nc_f32(1, 1, 1, kOpFlags, out);
  });
  // The exponential costs about as much as two simple element-wise ops.
  pthreadpool_t threads = xnn_threads(e, 2.0 * n);
  check(xnn_setup_sigmoid_nc_f32(op, n, x, y, threads), "sigmoid", "setup");
  run(op, threads, "sigmoid");
}

void softmax_forward(int rows, int cols, const float* x /* (rows, cols) */,
                     float* y /* (rows, cols) */, OpStatePtr& state, const Exec& e) {
  if (rows == 0) return;
  xnn_operator_t op = cached_op(state, OpKey{kSoftmax, cols}, "softmax", [&](xnn_operator_t* out) {
    return xnn_create_softmax_nc_f32(cols, cols, cols, kOpFlags, out);
  });
  pthreadpool_t threads = xnn_threads(e, 2.0 * rows * cols);
  check(xnn_setup_softmax_nc_f32(op, rows, x, y, threads), "softmax", "setup");
  run(op, threads, "softmax");
}

}  // namespace

// XNNPACK runs the forward ops; the empty slots are the hwy kernels of the CPU's target. Null
// when XNNPACK cannot initialize (a CPU it does not support), so callers fall back to hwy.
const Backend* backend_xnnpack() {
  static const Backend partial{
      /* .name                     = */ "xnnpack",
      /* .gemm                     = */ nullptr,
      /* .conv2d_forward           = */ conv2d_forward,
      /* .conv2d_backward_data     = */ nullptr,
      /* .conv2d_backward_filter   = */ nullptr,
      /* .dense_forward            = */ dense_forward,
      /* .dense_backward_data      = */ nullptr,
      /* .dense_backward_filter    = */ nullptr,
      /* .maxpool_forward          = */ maxpool_forward,
      /* .maxpool_backward         = */ nullptr,
      /* .gap_forward              = */ gap_forward,
      /* .gap_backward             = */ nullptr,
      /* .relu_forward             = */ relu_forward,
      /* .relu_backward            = */ nullptr,
      /* .sigmoid_forward          = */ sigmoid_forward,
      /* .sigmoid_backward         = */ nullptr,
      /* .softmax_forward          = */ softmax_forward,
      /* .softmax_backward         = */ nullptr,
      /* .batchnorm_forward_train  = */ nullptr,
      /* .batchnorm_forward_infer  = */ nullptr,
      /* .batchnorm_backward       = */ nullptr,
      /* .batchnorm_backward_infer = */ nullptr,
      /* .dropout_forward          = */ nullptr,
      /* .dropout_backward         = */ nullptr,
      /* .identity_forward         = */ nullptr,
      /* .identity_backward        = */ nullptr,
  };
  static const Backend table = complete_backend(partial, *backend_hwy());
  return initialize() == xnn_status_success ? &table : nullptr;
}

}  // namespace tagnet::kern

#endif  // TAGNET_USE_XNNPACK
