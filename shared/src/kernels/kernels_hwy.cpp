// The `hwy` backend: gemm/conv/dense come from gemm_hwy.cpp and conv_hwy.cpp; the
// memory-bound kernels (activations, pooling, batch norm, dropout, copies) live here.
//
// Channel loops run whole vectors and finish the C % lanes tail with a one-lane vector, so
// every channel goes through the same arithmetic.
//
// Threading: work below kMinParallelWork runs on the calling thread. Reductions (batch norm
// statistics) are split into a number of row chunks that depends on the shape only, not on
// the thread count, and the chunk partials are combined in a fixed order: results are
// identical whatever the pool size.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include "hwy_setup.h"

#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemm_hwy.h"
#include "kernels.h"
#include "parallel_thresholds.h"
#include "thread_pool.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {
namespace {

using D1 = hn::CappedTag<float, 1>;

// Elementwise chunks: a multiple of any vector length, large enough to amortise a task.
constexpr size_t kFlatGrain = 4096;
// Rows summed in float before folding into double: short enough that float rounding stays
// near one ulp, long enough that the fold is a small fraction of the work.
constexpr size_t kBlockRows = 32;
// Dynamic load balancing granularity of ParallelFor.
constexpr size_t kChunksPerThread = 4;
// Target elements per reduction chunk (batch norm statistics).
constexpr size_t kChunkWork = size_t{1} << 15;

size_t PoolThreads(const Exec& e) {
  return e.pool == nullptr ? 1 : static_cast<size_t>(e.pool->threads());
}

// fn(begin, end) over [0, n) in chunks of multiples of `grain`; `work` is the number of
// elements touched, which decides whether the pool is used. A few chunks per thread, handed
// out dynamically, so a thread that gets descheduled does not hold up the whole op.
template <class Fn>
void ParallelFor(const Exec& e, size_t n, size_t grain, size_t work, const Fn& fn) {
  const size_t threads = PoolThreads(e);
  if (threads <= 1 || work < kMinParallelWork || n <= grain) {
    fn(size_t{0}, n);
    return;
  }
  const size_t units = (n + grain - 1) / grain;
  const size_t tasks = std::min(units, kChunksPerThread * threads);
  e.pool->run_tasks(tasks, [&](size_t t) {
    const size_t b = units * t / tasks * grain;
    const size_t end = std::min(n, units * (t + 1) / tasks * grain);
    if (b < end) fn(b, end);
  });
}

template <class Fn>
void ParallelTasks(const Exec& e, size_t tasks, size_t work, const Fn& fn) {
  if (PoolThreads(e) <= 1 || work < kMinParallelWork || tasks <= 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t);
  } else {
    e.pool->run_tasks(tasks, fn);
  }
}

// f(d, i) for i in [begin, end): whole vectors of tag D, then single lanes of tag D1.
template <class F>
HWY_INLINE void ForLanes(size_t begin, size_t end, const F& f) {
  const D d;
  const size_t L = hn::Lanes(d);
  size_t i = begin;
  for (; i + L <= end; i += L) f(d, i);
  const D1 d1;
  for (; i < end; ++i) f(d1, i);
}

// When `units` independent pieces of work are fewer than the threads, channels are split
// too: block b of `blocks` covers [begin(b), begin(b + 1)), boundaries on whole vectors.
struct ChannelSplit {
  size_t C, vecs, blocks;
  ChannelSplit(const Exec& e, size_t units, size_t C_) : C(C_) {
    vecs = C / hn::Lanes(D());
    const size_t threads = PoolThreads(e);
    blocks = units >= threads ? 1 : std::max<size_t>(1, std::min(vecs, threads));
  }
  size_t begin(size_t b) const {
    return b == blocks ? C : vecs * b / blocks * hn::Lanes(D());
  }
};

// Whether this target can widen half a float vector to doubles (WASM SIMD128 in this
// Highway version cannot).
template <class D, class = void>
struct HasPromoteToDouble : std::false_type {};
template <class D>
struct HasPromoteToDouble<
    D, std::void_t<decltype(hn::PromoteTo(hn::Rebind<double, hn::Half<D>>(),
                                          hn::Zero(hn::Half<D>())))>> : std::true_type {};

// acc[i] += v[i] for the lanes of v, in double.
template <class D, class V>
HWY_INLINE void AddToDouble(D d, V v, double* HWY_RESTRICT acc) {
#if HWY_TARGET != HWY_SCALAR
  if constexpr (hn::MaxLanes(D()) > 1 && HasPromoteToDouble<D>::value) {
    const hn::Half<D> dh;
    const hn::Rebind<double, decltype(dh)> dd;
    const size_t h = hn::Lanes(dd);
    const auto lo = hn::PromoteTo(dd, hn::LowerHalf(dh, v));
    const auto hi = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
    hn::StoreU(hn::Add(hn::LoadU(dd, acc), lo), dd, acc);
    hn::StoreU(hn::Add(hn::LoadU(dd, acc + h), hi), dd, acc + h);
    return;
  }
#endif
  alignas(64) float lanes[hn::MaxLanes(D())];
  hn::StoreU(v, d, lanes);
  for (size_t i = 0; i < hn::Lanes(d); ++i) acc[i] += static_cast<double>(lanes[i]);
}

// Column sums of kSums per-element quantities over rows [r0, r1) and channels [c0, c1):
// acc[k][c] += sum_r f(d, r, c)[k]. Rows are walked in short blocks so each block stays in
// L1 while every channel vector sweeps it with register accumulators.
template <size_t kSums, class F>
void ColumnSums(size_t r0, size_t r1, size_t c0, size_t c1, const F& f,
                const std::array<double*, kSums>& acc) {
  for (size_t rb = r0; rb < r1; rb += kBlockRows) {
    const size_t re = std::min(r1, rb + kBlockRows);
    ForLanes(c0, c1, [&](auto d, size_t c) {
      using V = hn::Vec<decltype(d)>;
      std::array<V, kSums> a;
      for (size_t k = 0; k < kSums; ++k) a[k] = hn::Zero(d);
      for (size_t r = rb; r < re; ++r) {
        const std::array<V, kSums> v = f(d, r, c);
        for (size_t k = 0; k < kSums; ++k) a[k] = hn::Add(a[k], v[k]);
      }
      for (size_t k = 0; k < kSums; ++k) AddToDouble(d, a[k], acc[k] + c);
    });
  }
}

// ---------------------------------------------------------------- activations

void relu_forward_hwy(size_t n, const float* x /* (n) */, float* y /* (n) */, OpStatePtr&,
                      const Exec& e) {
  ParallelFor(e, n, kFlatGrain, n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      const auto v = hn::LoadU(d, x + i);
      hn::StoreU(hn::IfThenElseZero(hn::Gt(v, hn::Zero(d)), v), d, y + i);
    });
  });
}

void relu_backward_hwy(size_t n, const float* y /* (n) */, const float* dy /* (n) */,
                       float* dx /* (n) */, const Exec& e) {
  ParallelFor(e, n, kFlatGrain, 3 * n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      const auto pass = hn::Gt(hn::LoadU(d, y + i), hn::Zero(d));
      hn::StoreU(hn::IfThenElseZero(pass, hn::LoadU(d, dy + i)), d, dx + i);
    });
  });
}

// exp(-|x|) is in (0, 1] for every x, so neither branch can overflow.
template <class D, class V>
HWY_INLINE V Sigmoid(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  const V z = hn::Exp(d, hn::Neg(hn::Abs(x)));
  const V pos = hn::Div(one, hn::Add(one, z));  // sigmoid(|x|)
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(z, pos), pos);
}

void sigmoid_forward_hwy(size_t n, const float* x /* (n) */, float* y /* (n) */, OpStatePtr&,
                         const Exec& e) {
  // exp costs ~20 flops per element, so the pool pays off earlier than for copies.
  ParallelFor(e, n, kFlatGrain, 8 * n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      hn::StoreU(Sigmoid(d, hn::LoadU(d, x + i)), d, y + i);
    });
  });
}

void sigmoid_backward_hwy(size_t n, const float* y /* (n) */, const float* dy /* (n) */,
                          float* dx /* (n) */, const Exec& e) {
  ParallelFor(e, n, kFlatGrain, 3 * n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      const auto v = hn::LoadU(d, y + i);
      const auto gy = hn::Mul(hn::LoadU(d, dy + i), v);
      const auto one_minus = hn::Sub(hn::Set(d, 1.0f), v);
      hn::StoreU(hn::Mul(gy, one_minus), d, dx + i);
    });
  });
}

float RowMax(size_t cols, const float* HWY_RESTRICT x) {
  const D d;
  const size_t L = hn::Lanes(d);
  auto vm = hn::Set(d, -std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + L <= cols; i += L) vm = hn::Max(vm, hn::LoadU(d, x + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, vm));
  for (; i < cols; ++i) m = std::max(m, x[i]);
  return m;
}

// sum of a[i] * b[i], or of a[i] when b is null.
float RowDot(size_t cols, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b) {
  const D d;
  const size_t L = hn::Lanes(d);
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  size_t i = 0;
  if (b == nullptr) {
    for (; i + 2 * L <= cols; i += 2 * L) {
      acc0 = hn::Add(acc0, hn::LoadU(d, a + i));
      acc1 = hn::Add(acc1, hn::LoadU(d, a + i + L));
    }
    for (; i + L <= cols; i += L) acc0 = hn::Add(acc0, hn::LoadU(d, a + i));
  } else {
    for (; i + 2 * L <= cols; i += 2 * L) {
      acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
      acc1 = hn::MulAdd(hn::LoadU(d, a + i + L), hn::LoadU(d, b + i + L), acc1);
    }
    for (; i + L <= cols; i += L) acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < cols; ++i) s += b == nullptr ? a[i] : a[i] * b[i];
  return s;
}

void softmax_forward_hwy(int rows, int cols, const float* x /* (rows, cols) */,
                         float* y /* (rows, cols) */, OpStatePtr&, const Exec& e) {
  const size_t R = static_cast<size_t>(rows), K = static_cast<size_t>(cols);
  ParallelFor(e, R, 1, 8 * R * K, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * K;
      float* yr = y + r * K;
      // Shifting by the row maximum keeps exp in (0, 1].
      const float m = RowMax(K, xr);
      ForLanes(0, K, [&](auto d, size_t i) {
        hn::StoreU(hn::Exp(d, hn::Sub(hn::LoadU(d, xr + i), hn::Set(d, m))), d, yr + i);
      });
      const float inv = 1.0f / RowDot(K, yr, nullptr);
      ForLanes(0, K, [&](auto d, size_t i) {
        hn::StoreU(hn::Mul(hn::LoadU(d, yr + i), hn::Set(d, inv)), d, yr + i);
      });
    }
  });
}

void softmax_backward_hwy(int rows, int cols, const float* y /* (rows, cols) */,
                          const float* dy /* (rows, cols) */, float* dx /* (rows, cols) */,
                          const Exec& e) {
  const size_t R = static_cast<size_t>(rows), K = static_cast<size_t>(cols);
  ParallelFor(e, R, 1, 3 * R * K, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* yr = y + r * K;
      const float* gr = dy + r * K;
      float* dr = dx + r * K;
      const float s = RowDot(K, gr, yr);
      ForLanes(0, K, [&](auto d, size_t i) {
        const auto v = hn::LoadU(d, yr + i);
        const auto t = hn::Sub(hn::LoadU(d, gr + i), hn::Set(d, s));
        hn::StoreU(hn::Mul(v, t), d, dr + i);
      });
    }
  });
}

// ---------------------------------------------------------------- pooling

void maxpool_forward_hwy(const PoolDims& p, const float* x /* (N, H, W, C) */,
                         float* y /* (N, OH, OW, C) */, OpStatePtr&, const Exec& e) {
  const size_t C = p.C, W = p.W, H = p.H, OH = p.OH, OW = p.OW;
  const size_t window = static_cast<size_t>(p.PH) * p.PW;
  std::vector<size_t> offs;  // window position -> offset from the window's corner
  for (int ph = 0; ph < p.PH; ++ph)
    for (int pw = 0; pw < p.PW; ++pw) offs.push_back((ph * W + pw) * C);
  const size_t rows = static_cast<size_t>(p.N) * OH;
  ParallelFor(e, rows, 1, rows * OW * C * (window + 1), [&](size_t r0, size_t r1) {
    for (size_t row = r0; row < r1; ++row) {
      const size_t n = row / OH, oh = row % OH;
      for (size_t ow = 0; ow < OW; ++ow) {
        const float* xw = x + ((n * H + oh * p.SH) * W + ow * p.SW) * C;
        float* yo = y + (row * OW + ow) * C;
        ForLanes(0, C, [&](auto d, size_t c) {
          auto m = hn::LoadU(d, xw + c);
          for (size_t k = 1; k < window; ++k) m = hn::Max(m, hn::LoadU(d, xw + offs[k] + c));
          hn::StoreU(m, d, yo + c);
        });
      }
    }
  });
}

// The first maximum of each window is recomputed from x (a strict `>` scan keeps the
// earliest position per lane), so the result does not depend on how y was produced. The
// routing is branch-free: every window position gets dy masked to the lanes whose argmax
// it is, which beats data-dependent early exits that mispredict on random data.
void maxpool_backward_hwy(const PoolDims& p, const float* x /* (N, H, W, C) */,
                          const float* /* y (N, OH, OW, C) */, const float* dy /* (N, OH, OW, C) */,
                          float* dx /* (N, H, W, C) */, const Exec& e) {
  const size_t C = p.C, W = p.W, H = p.H, OH = p.OH, OW = p.OW;
  const size_t window = static_cast<size_t>(p.PH) * p.PW;
  std::vector<size_t> offs;
  for (int ph = 0; ph < p.PH; ++ph)
    for (int pw = 0; pw < p.PW; ++pw) offs.push_back((ph * W + pw) * C);
  // Windows that tile the input exactly write each dx element once. Otherwise dx is zeroed
  // first and the windows add into it.
  const bool tiles = p.PH == p.SH && p.PW == p.SW && OH * p.SH == H && OW * p.SW == W;
  if (!tiles) {
    const size_t n = static_cast<size_t>(p.N) * H * W * C;
    ParallelFor(e, n, kFlatGrain, n, [&](size_t b, size_t end) {
      std::memset(dx + b, 0, (end - b) * sizeof(float));
    });
  }
  // Windows overlapping vertically make neighbouring output rows add into the same dx
  // rows, so only whole images (or channel blocks) can then go to different threads.
  const bool rows_disjoint = p.PH <= p.SH;
  const size_t units = rows_disjoint ? static_cast<size_t>(p.N) * OH : static_cast<size_t>(p.N);
  const size_t rows_per_unit = rows_disjoint ? 1 : OH;
  const ChannelSplit split(e, units, C);
  const size_t work = static_cast<size_t>(p.N) * OH * OW * C * (2 * window + 1);
  ParallelFor(e, units * split.blocks, 1, work, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const size_t unit = t / split.blocks, blk = t % split.blocks;
      const size_t c0 = split.begin(blk), c1 = split.begin(blk + 1);
      for (size_t row = unit * rows_per_unit; row < (unit + 1) * rows_per_unit; ++row) {
        const size_t n = row / OH, oh = row % OH;
        for (size_t ow = 0; ow < OW; ++ow) {
          const size_t corner = ((n * H + oh * p.SH) * W + ow * p.SW) * C;
          const float* xw = x + corner;
          float* dxw = dx + corner;
          const float* g = dy + (row * OW + ow) * C;
          ForLanes(c0, c1, [&](auto d, size_t c) {
            auto m = hn::LoadU(d, xw + c);
            auto idx = hn::Zero(d);
            for (size_t k = 1; k < window; ++k) {
              const auto v = hn::LoadU(d, xw + offs[k] + c);
              const auto gt = hn::Gt(v, m);
              m = hn::IfThenElse(gt, v, m);
              idx = hn::IfThenElse(gt, hn::Set(d, static_cast<float>(k)), idx);
            }
            auto gv = hn::LoadU(d, g + c);
            if (p.relu_input) gv = hn::IfThenElseZero(hn::Gt(m, hn::Zero(d)), gv);
            for (size_t k = 0; k < window; ++k) {
              const size_t o = offs[k] + c;
              auto v = hn::IfThenElseZero(hn::Eq(idx, hn::Set(d, static_cast<float>(k))), gv);
              if (!tiles) v = hn::Add(hn::LoadU(d, dxw + o), v);
              hn::StoreU(v, d, dxw + o);
            }
          });
        }
      }
    }
  });
}

void gap_forward_hwy(int N, int HW, int C, const float* x /* (N, HW, C) */, float* y /* (N, C) */,
                     OpStatePtr&, const Exec& e) {
  const size_t Cs = C, HWs = HW;
  const ChannelSplit split(e, N, Cs);
  std::vector<double> acc(static_cast<size_t>(N) * Cs, 0.0);  // (N, C)
  const double inv = 1.0 / HW;
  ParallelTasks(e, static_cast<size_t>(N) * split.blocks, static_cast<size_t>(N) * HWs * Cs,
                [&](size_t t) {
                  const size_t n = t / split.blocks, blk = t % split.blocks;
                  const size_t c0 = split.begin(blk), c1 = split.begin(blk + 1);
                  const float* xn = x + n * HWs * Cs;
                  double* an = acc.data() + n * Cs;
                  ColumnSums<1>(
                      0, HWs, c0, c1,
                      [&](auto d, size_t r, size_t c) {
                        return std::array<hn::Vec<decltype(d)>, 1>{hn::LoadU(d, xn + r * Cs + c)};
                      },
                      {an});
                  for (size_t c = c0; c < c1; ++c) y[n * Cs + c] = static_cast<float>(an[c] * inv);
                });
}

void gap_backward_hwy(int N, int HW, int C, const float* dy /* (N, C) */,
                      float* dx /* (N, HW, C) */, const Exec& e) {
  const size_t Cs = C, HWs = HW, rows = static_cast<size_t>(N) * HWs;
  const float inv = 1.0f / static_cast<float>(HW);
  ParallelFor(e, rows, 1, 2 * rows * Cs, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* g = dy + (r / HWs) * Cs;
      float* dr = dx + r * Cs;
      ForLanes(0, Cs, [&](auto d, size_t c) {
        hn::StoreU(hn::Mul(hn::LoadU(d, g + c), hn::Set(d, inv)), d, dr + c);
      });
    }
  });
}

// ---------------------------------------------------------------- batch norm

// Row chunks for the statistics: depends on the shape only (see the file comment).
size_t ReductionChunks(size_t M, size_t C) {
  const size_t by_work = std::max<size_t>(1, M * C / kChunkWork);
  return std::min<size_t>({by_work, 64, std::max<size_t>(1, M / kBlockRows)});
}

// y = (x - mean_hi[c] - mean_lo[c]) * scale[c] + beta[c] over M rows. The mean is carried
// as a float pair (hi + lo) so that x - mean keeps double accuracy when |mean| >> stddev:
// x - hi is exact for x near hi, and lo restores the bits a single float would drop.
void ScaleShift(const Exec& e, size_t M, size_t C, const float* x /* (M, C) */,
                const float* mean_hi /* (C) */, const float* mean_lo /* (C) */,
                const float* scale /* (C) */, const float* beta /* (C) */,
                float* y /* (M, C) */) {
  ParallelFor(e, M, 1, 2 * M * C, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      ForLanes(0, C, [&](auto d, size_t c) {
        auto xc = hn::Sub(hn::LoadU(d, xr + c), hn::LoadU(d, mean_hi + c));
        xc = hn::Sub(xc, hn::LoadU(d, mean_lo + c));
        hn::StoreU(hn::MulAdd(xc, hn::LoadU(d, scale + c), hn::LoadU(d, beta + c)), d, yr + c);
      });
    }
  });
}

// One pass for the statistics: sums of (x - x[0]) and its square. Shifting by the first
// row keeps E[d^2] - E[d]^2 well conditioned even when |mean| >> stddev, and the sums are
// folded into double, so this matches a two-pass variance to float precision.
void batchnorm_forward_train_hwy(int M, int C, const float* x /* (M, C) */,
                                 const float* gamma /* (C) */, const float* beta /* (C) */,
                                 float eps, float* y /* (M, C) */, float* mean /* (C) */,
                                 float* invstd /* (C) */, const Exec& e) {
  const size_t Ms = M, Cs = C;
  if (Cs == 0) return;
  if (Ms == 0) {
    for (size_t c = 0; c < Cs; ++c) {
      mean[c] = 0.0f;
      invstd[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(eps)));
    }
    return;
  }
  const float* shift = x;  // row 0
  const size_t T = ReductionChunks(Ms, Cs);
  std::vector<double> part(T * 2 * Cs, 0.0);  // (T, 2, C): sum d, sum d^2
  ParallelTasks(e, T, Ms * Cs, [&](size_t t) {
    double* s = part.data() + t * 2 * Cs;
    ColumnSums<2>(
        Ms * t / T, Ms * (t + 1) / T, 0, Cs,
        [&](auto d, size_t r, size_t c) {
          const auto v = hn::Sub(hn::LoadU(d, x + r * Cs + c), hn::LoadU(d, shift + c));
          return std::array<hn::Vec<decltype(d)>, 2>{v, hn::Mul(v, v)};
        },
        {s, s + Cs});
  });
  std::vector<float> scale(Cs), mean_lo(Cs);
  for (size_t c = 0; c < Cs; ++c) {
    double s1 = 0.0, s2 = 0.0;
    for (size_t t = 0; t < T; ++t) {
      s1 += part[t * 2 * Cs + c];
      s2 += part[t * 2 * Cs + Cs + c];
    }
    const double dm = s1 / static_cast<double>(Ms);
    const double var = std::max(0.0, s2 / static_cast<double>(Ms) - dm * dm);
    const double is = 1.0 / std::sqrt(var + static_cast<double>(eps));
    const double mu = static_cast<double>(shift[c]) + dm;
    mean[c] = static_cast<float>(mu);
    mean_lo[c] = static_cast<float>(mu - static_cast<double>(mean[c]));
    invstd[c] = static_cast<float>(is);
    scale[c] = static_cast<float>(is * gamma[c]);
  }
  ScaleShift(e, Ms, Cs, x, mean, mean_lo.data(), scale.data(), beta, y);
}

void batchnorm_forward_infer_hwy(int M, int C, const float* x /* (M, C) */,
                                 const float* gamma /* (C) */, const float* beta /* (C) */,
                                 const float* moving_mean /* (C) */,
                                 const float* moving_var /* (C) */, float eps,
                                 float* y /* (M, C) */, const Exec& e) {
  const size_t Cs = C;
  std::vector<float> scale(Cs), zeros(Cs, 0.0f);
  for (size_t c = 0; c < Cs; ++c) {
    scale[c] = static_cast<float>(gamma[c] / std::sqrt(static_cast<double>(moving_var[c]) + eps));
  }
  ScaleShift(e, static_cast<size_t>(M), Cs, x, moving_mean, zeros.data(), scale.data(), beta, y);
}

// Pass 1 sums dy and dy * (x - mean) per channel; pass 2 applies
//   dx = gamma*invstd/M * (M*dy - dbeta - xhat*dgamma)
// rewritten per channel as dx = a*dy + b*(x - mean) + k.
void batchnorm_backward_hwy(int M, int C, const float* x /* (M, C) */, const float* dy /* (M, C) */,
                            const float* gamma /* (C) */, const float* mean /* (C) */,
                            const float* invstd /* (C) */, float* dx /* (M, C) */,
                            float* dgamma /* (C) */, float* dbeta /* (C) */, bool relu_input,
                            const Exec& e) {
  const size_t Ms = M, Cs = C;
  if (Cs == 0) return;
  const size_t T = ReductionChunks(Ms, Cs);
  std::vector<double> part(T * 2 * Cs, 0.0);  // (T, 2, C): sum dy, sum dy*(x-mean)
  ParallelTasks(e, T, 2 * Ms * Cs, [&](size_t t) {
    double* s = part.data() + t * 2 * Cs;
    ColumnSums<2>(
        Ms * t / T, Ms * (t + 1) / T, 0, Cs,
        [&](auto d, size_t r, size_t c) {
          const auto g = hn::LoadU(d, dy + r * Cs + c);
          const auto xc = hn::Sub(hn::LoadU(d, x + r * Cs + c), hn::LoadU(d, mean + c));
          return std::array<hn::Vec<decltype(d)>, 2>{g, hn::Mul(g, xc)};
        },
        {s, s + Cs});
  });
  if (Ms == 0) {
    for (size_t c = 0; c < Cs; ++c) dgamma[c] = dbeta[c] = 0.0f;
    return;
  }
  std::vector<float> a(Cs), b(Cs), k(Cs);
  for (size_t c = 0; c < Cs; ++c) {
    double sb = 0.0, sg = 0.0;
    for (size_t t = 0; t < T; ++t) {
      sb += part[t * 2 * Cs + c];
      sg += part[t * 2 * Cs + Cs + c];
    }
    const double is = invstd[c];
    sg *= is;
    dbeta[c] = static_cast<float>(sb);
    dgamma[c] = static_cast<float>(sg);
    const double gi = static_cast<double>(gamma[c]) * is;
    a[c] = static_cast<float>(gi);
    b[c] = static_cast<float>(-gi * is * sg / static_cast<double>(Ms));
    k[c] = static_cast<float>(-gi * sb / static_cast<double>(Ms));
  }
  ParallelFor(e, Ms, 1, 3 * Ms * Cs, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * Cs;
      const float* gr = dy + r * Cs;
      float* dr = dx + r * Cs;
      ForLanes(0, Cs, [&](auto d, size_t c) {
        const auto xv = hn::LoadU(d, xr + c);
        const auto xc = hn::Sub(xv, hn::LoadU(d, mean + c));
        auto v = hn::MulAdd(xc, hn::LoadU(d, b.data() + c), hn::LoadU(d, k.data() + c));
        v = hn::MulAdd(hn::LoadU(d, gr + c), hn::LoadU(d, a.data() + c), v);
        if (relu_input) v = hn::IfThenElseZero(hn::Gt(xv, hn::Zero(d)), v);
        hn::StoreU(v, d, dr + c);
      });
    }
  });
}

// Frozen BatchNorm: the scale is computed per channel in float, as batchnorm_backward_infer_ref
// does, so both give the same numbers.
void batchnorm_backward_infer_hwy(int M, int C, const float* dy /* (M, C) */,
                                  const float* gamma /* (C) */, const float* moving_var /* (C) */,
                                  float eps, float* dx /* (M, C) */, const Exec& e) {
  const size_t Ms = M, Cs = C;
  std::vector<float> scale(Cs);
  for (size_t c = 0; c < Cs; ++c) scale[c] = gamma[c] / std::sqrt(moving_var[c] + eps);
  ParallelFor(e, Ms, 1, 3 * Ms * Cs, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* gr = dy + r * Cs;
      float* dr = dx + r * Cs;
      ForLanes(0, Cs, [&](auto d, size_t c) {
        hn::StoreU(hn::Mul(hn::LoadU(d, gr + c), hn::LoadU(d, scale.data() + c)), d, dr + c);
      });
    }
  });
}

// ---------------------------------------------------------------- dropout, identity

void dropout_forward_hwy(size_t n, const float* x /* (n) */, const float* mask /* (n) */,
                         float* y /* (n) */, const Exec& e) {
  ParallelFor(e, n, kFlatGrain, 2 * n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      hn::StoreU(hn::Mul(hn::LoadU(d, x + i), hn::LoadU(d, mask + i)), d, y + i);
    });
  });
}

void dropout_backward_hwy(size_t n, const float* mask /* (n) */, const float* dy /* (n) */,
                          float* dx /* (n) */, const Exec& e) {
  ParallelFor(e, n, kFlatGrain, 3 * n, [&](size_t b, size_t end) {
    ForLanes(b, end, [&](auto d, size_t i) {
      hn::StoreU(hn::Mul(hn::LoadU(d, dy + i), hn::LoadU(d, mask + i)), d, dx + i);
    });
  });
}

void identity_forward_hwy(size_t n, const float* x /* (n) */, float* y /* (n) */,
                          const Exec& e) {
  ParallelFor(e, n, kFlatGrain, n, [&](size_t b, size_t end) {
    std::memcpy(y + b, x + b, (end - b) * sizeof(float));
  });
}

void identity_backward_hwy(size_t n, const float* dy /* (n) */, float* dx /* (n) */,
                           const Exec& e) {
  ParallelFor(e, n, kFlatGrain, n, [&](size_t b, size_t end) {
    std::memcpy(dx + b, dy + b, (end - b) * sizeof(float));
  });
}

const Backend kHwyBackend = {
    /* .name                     = */ "hwy",
    /* .gemm                     = */ gemm_hwy,
    /* .conv2d_forward           = */ conv2d_forward_hwy,
    /* .conv2d_backward_data     = */ conv2d_backward_data_hwy,
    /* .conv2d_backward_filter   = */ conv2d_backward_filter_hwy,
    /* .dense_forward            = */ dense_forward_hwy,
    /* .dense_backward_data      = */ dense_backward_data_hwy,
    /* .dense_backward_filter    = */ dense_backward_filter_hwy,
    /* .maxpool_forward          = */ maxpool_forward_hwy,
    /* .maxpool_backward         = */ maxpool_backward_hwy,
    /* .gap_forward              = */ gap_forward_hwy,
    /* .gap_backward             = */ gap_backward_hwy,
    /* .relu_forward             = */ relu_forward_hwy,
    /* .relu_backward            = */ relu_backward_hwy,
    /* .sigmoid_forward          = */ sigmoid_forward_hwy,
    /* .sigmoid_backward         = */ sigmoid_backward_hwy,
    /* .softmax_forward          = */ softmax_forward_hwy,
    /* .softmax_backward         = */ softmax_backward_hwy,
    /* .batchnorm_forward_train  = */ batchnorm_forward_train_hwy,
    /* .batchnorm_forward_infer  = */ batchnorm_forward_infer_hwy,
    /* .batchnorm_backward       = */ batchnorm_backward_hwy,
    /* .batchnorm_backward_infer = */ batchnorm_backward_infer_hwy,
    /* .dropout_forward          = */ dropout_forward_hwy,
    /* .dropout_backward         = */ dropout_backward_hwy,
    /* .identity_forward         = */ identity_forward_hwy,
    /* .identity_backward        = */ identity_backward_hwy,
};

}  // namespace

const Backend* backend_table() { return &kHwyBackend; }

}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tagnet {
namespace kern {
namespace {

struct Compiled {
  int64_t bit;
  HwyTarget target;
};

// The targets built in, best first (a lower HWY_* bit is a better target).
std::vector<Compiled> CompiledTargets() {
  std::vector<Compiled> v;
#define TAGNET_HWY_TARGET(T) \
  v.push_back({HWY_##T, {hwy::TargetName(HWY_##T), N_##T::backend_table()}})
#if HWY_TARGETS & HWY_AVX3_DL
  TAGNET_HWY_TARGET(AVX3_DL);
#endif
#if HWY_TARGETS & HWY_AVX3
  TAGNET_HWY_TARGET(AVX3);
#endif
#if HWY_TARGETS & HWY_AVX2
  TAGNET_HWY_TARGET(AVX2);
#endif
#if HWY_TARGETS & HWY_SSE4
  TAGNET_HWY_TARGET(SSE4);
#endif
#if HWY_TARGETS & HWY_SSSE3
  TAGNET_HWY_TARGET(SSSE3);
#endif
#if HWY_TARGETS & HWY_WASM
  TAGNET_HWY_TARGET(WASM);
#endif
#if HWY_TARGETS & HWY_EMU128
  TAGNET_HWY_TARGET(EMU128);
#endif
#if HWY_TARGETS & HWY_SCALAR
  TAGNET_HWY_TARGET(SCALAR);
#endif
#undef TAGNET_HWY_TARGET
  return v;
}

std::vector<HwyTarget> SupportedTargets() {
#if HWY_HAVE_RUNTIME_DISPATCH
  const int64_t supported = hwy::SupportedTargets();
#else
  const int64_t supported = HWY_TARGETS;  // the build's one target
#endif
  std::vector<HwyTarget> v;
  for (const Compiled& c : CompiledTargets()) {
    if (supported & c.bit) v.push_back(c.target);
  }
  return v;
}

const HwyTarget& ChooseTarget() {
  const std::vector<HwyTarget>& all = hwy_targets();
  const char* want = std::getenv("TAGNET_HWY_TARGET");
  if (!want || !*want) return all.front();
  std::string names;
  for (const HwyTarget& t : all) {
    if (std::string(t.name) == want) return t;
    names += (names.empty() ? "" : ", ") + std::string(t.name);
  }
  throw std::runtime_error("TAGNET_HWY_TARGET=" + std::string(want) +
                           " is not a target this build and CPU run (they run: " + names + ")");
}

}  // namespace

const std::vector<HwyTarget>& hwy_targets() {
  static const std::vector<HwyTarget> targets = SupportedTargets();
  return targets;
}

const HwyTarget& hwy_target() {
  static const HwyTarget& chosen = ChooseTarget();
  return chosen;
}

const Backend* backend_hwy() { return hwy_target().backend; }

}  // namespace kern
}  // namespace tagnet
#endif  // HWY_ONCE
