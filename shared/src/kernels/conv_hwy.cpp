// Convolution and dense kernels on the micro-kernel and packed GEMM of gemm_hwy.cpp.
//
// A convolution is a GEMM over P = N*OH*OW output pixels, K output channels and R = KH*KW*C
// patch entries, but no patch matrix (im2col, 40 MB for the largest layer at batch 32) is
// built. Pool tasks own bands of output rows; a task zero-pads the input rows its band reads
// into an L2-sized scratch, and the micro-kernel reads patches from there in place (implicit
// GEMM, see ForwardImplicit):
//   forward:          Y (P, K)  = Xcol (P, R) * W^T (R, K), bias and ReLU fused into the store
//   backward data:    stride 1: dx += the forward convolution of dy with the flipped kernel
//                     (as Winograd when that convolution qualifies);
//                     otherwise dXcol (P, R) = dY (P, K) * W (K, R) chunk by chunk, then col2im
//   backward filter:  dW^T (R, K) = Xcol^T (R, P) * dY (P, K), per-thread partial sums
// 3x3 stride-1 convolutions with enough channels run as Winograd instead (winograd_hwy.cpp),
// 4x fewer multiply-adds: the forward pass and the input gradient as F(4x4, 3x3), the filter
// gradient as its transpose F(3x3, 4x4). The forward pass keeps its packed or
// transformed weights in the layer's OpState until Exec::param_version changes.
// Dense layers call gemm_hwy with transposed operands expressed through strides, except the
// forward pass of a few rows, which is a set of dot products (DenseDots), on 16-bit weights
// for large layers in inference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "conv_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include "hwy_setup.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "gemm_hwy.h"
#include "kernels.h"
#include "parallel_thresholds.h"
#include "thread_pool.h"
#include "winograd_hwy.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {

namespace {

// Target floats of one im2col chunk: well inside L2 next to the packed weights.
constexpr size_t kColFloats = size_t(96) << 10;
// Output pixels per implicit-GEMM task: enough to amortise padding the input rows.
constexpr int kBandPixels = 256;
// Output pixels per backward-filter micro-kernel call (its K dimension).
constexpr int kFilterPixels = 64;
// Runs of filter-gradient tasks per thread, each with its own partial sums: more balance the
// load better, each costs one more partial (R x K floats) to fill and add.
constexpr int kFilterRunsPerThread = 2;

HWY_INLINE void CopyN(const float* HWY_RESTRICT src, float* HWY_RESTRICT dst, int n) {
  const D d;
  int i = 0;
  for (; i + kL <= n; i += kL) hn::StoreU(hn::LoadU(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = src[i];
}

HWY_INLINE void ZeroN(float* dst, int n) {
  const D d;
  int i = 0;
  for (; i + kL <= n; i += kL) hn::StoreU(hn::Zero(d), d, dst + i);
  for (; i < n; ++i) dst[i] = 0.0f;
}

HWY_INLINE void AddN(const float* HWY_RESTRICT src, float* HWY_RESTRICT dst, int n) {
  const D d;
  int i = 0;
  for (; i + kL <= n; i += kL)
    hn::StoreU(hn::Add(hn::LoadU(d, dst + i), hn::LoadU(d, src + i)), d, dst + i);
  for (; i < n; ++i) dst[i] += src[i];
}

// y (rows, K) = act(y + b); b may be null.
void BiasAct(float* y, long rows, int K, const float* b, Act act) {
  if (!b && act == Act::kNone) return;
  const D d;
  const auto zero = hn::Zero(d);
  const bool relu = act == Act::kRelu;
  for (long r = 0; r < rows; ++r) {
    float* row = y + r * K;
    int k = 0;
    for (; k + kL <= K; k += kL) {
      auto v = hn::LoadU(d, row + k);
      if (b) v = hn::Add(v, hn::LoadU(d, b + k));
      if (relu) v = hn::Max(v, zero);
      hn::StoreU(v, d, row + k);
    }
    for (; k < K; ++k) {
      float v = row[k] + (b ? b[k] : 0.0f);
      row[k] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

// Column sums of dy (rows, K) added into acc (K), accumulated in registers a few vectors of
// columns at a time rather than through memory.
void AddColumnSums(const float* dy, long rows, int K, float* acc) {
  const D d;
  int k = 0;
  for (; k + 4 * kL <= K; k += 4 * kL) {
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    const float* p = dy + k;
    for (long r = 0; r < rows; ++r, p += K) {
      s0 = hn::Add(s0, hn::LoadU(d, p));
      s1 = hn::Add(s1, hn::LoadU(d, p + kL));
      s2 = hn::Add(s2, hn::LoadU(d, p + 2 * kL));
      s3 = hn::Add(s3, hn::LoadU(d, p + 3 * kL));
    }
    hn::StoreU(hn::Add(s0, hn::LoadU(d, acc + k)), d, acc + k);
    hn::StoreU(hn::Add(s1, hn::LoadU(d, acc + k + kL)), d, acc + k + kL);
    hn::StoreU(hn::Add(s2, hn::LoadU(d, acc + k + 2 * kL)), d, acc + k + 2 * kL);
    hn::StoreU(hn::Add(s3, hn::LoadU(d, acc + k + 3 * kL)), d, acc + k + 3 * kL);
  }
  for (; k + kL <= K; k += kL) {
    auto s0 = hn::Zero(d);
    for (long r = 0; r < rows; ++r) s0 = hn::Add(s0, hn::LoadU(d, dy + r * K + k));
    hn::StoreU(hn::Add(s0, hn::LoadU(d, acc + k)), d, acc + k);
  }
  for (; k < K; ++k) {
    float s0 = 0.0f;
    for (long r = 0; r < rows; ++r) s0 += dy[r * K + k];
    acc[k] += s0;
  }
}

// Walks output pixels p = ((n*OH + oh)*OW + ow) in order.
struct PixelCursor {
  int n, oh, ow;
  PixelCursor(const ConvDims& d, long p) {
    const long hw = static_cast<long>(d.OH) * d.OW;
    n = static_cast<int>(p / hw);
    const long rem = p % hw;
    oh = static_cast<int>(rem / d.OW);
    ow = static_cast<int>(rem % d.OW);
  }
  void next(const ConvDims& d) {
    if (++ow == d.OW) {
      ow = 0;
      if (++oh == d.OH) {
        oh = 0;
        ++n;
      }
    }
  }
};

// dx (N, H, W, C) += the patches col (rows, R) of output pixels [p0, p0 + rows) scattered
// back to the input pixels they were read from.
void Col2imAdd(const ConvDims& d, const float* col, long p0, int rows, float* dx) {
  const int R = d.R();
  const int span = d.KW * d.C;
  PixelCursor at(d, p0);
  for (int r = 0; r < rows; ++r, at.next(d)) {
    const float* src = col + static_cast<size_t>(r) * R;
    float* dxn = dx + static_cast<size_t>(at.n) * d.H * d.W * d.C;
    const int iw0 = at.ow * d.SW - d.PL;
    const bool inside_w = iw0 >= 0 && iw0 + d.KW <= d.W;
    for (int kh = 0; kh < d.KH; ++kh, src += span) {
      const int ih = at.oh * d.SH - d.PT + kh;
      if (ih < 0 || ih >= d.H) continue;
      if (inside_w) {
        AddN(src, dxn + (static_cast<size_t>(ih) * d.W + iw0) * d.C, span);
      } else {
        for (int kw = 0; kw < d.KW; ++kw) {
          const int iw = iw0 + kw;
          if (iw >= 0 && iw < d.W)
            AddN(src + kw * d.C, dxn + (static_cast<size_t>(ih) * d.W + iw) * d.C, d.C);
        }
      }
    }
  }
}

// A 1x1, stride-1, unpadded convolution reads x as the patch matrix directly.
bool IsPointwise(const ConvDims& d) {
  return d.KH == 1 && d.KW == 1 && d.SH == 1 && d.SW == 1 && d.PT == 0 && d.PL == 0 &&
         d.PB == 0 && d.PR == 0 && d.OH == d.H && d.OW == d.W;
}

// Backward data as a forward convolution of dy: needs stride 1 and padding below the kernel
// size, and pays off when the input channels fill most of the NR-wide tiles.
bool UseTransposedConv(const ConvDims& d) {
  const int nr = gemm::tile_n();
  return d.SH == 1 && d.SW == 1 && d.PT < d.KH && d.PB < d.KH && d.PL < d.KW && d.PR < d.KW &&
         d.OH == d.H + d.PT + d.PB - d.KH + 1 && d.OW == d.W + d.PL + d.PR - d.KW + 1 &&
         !IsPointwise(d) && 4 * d.C >= 3 * gemm::b_slivers(d.C) * nr;
}

// Rows per im2col chunk: a multiple of the GEMM tile height near kColFloats floats.
int ChunkRows(int R, long P) {
  const int mr = gemm::tile_m();
  const long rows = std::max<long>(mr, static_cast<long>(kColFloats / std::max(R, 1)) / mr * mr);
  return static_cast<int>(std::min(rows, P));
}

int Threads(const Exec& e, double flops) {
  if (!e.pool || flops < kMinParallelFlops) return 1;
  return e.pool->threads();
}

// Packs B (K, N) into dst (packed_b_floats(K, N) floats), in parallel when it is large.
void PackInto(int K, int N, int kc, const float* B, long rsb, long csb, float* dst,
              const Exec& e, int threads) {
  const int slivers = gemm::b_slivers(N);
  if (threads > 1 && static_cast<double>(K) * N >= kMinParallelPackFloats) {
    e.pool->run(slivers, 1, [&](size_t b, size_t end) {
      gemm::pack_b(K, N, kc, B, rsb, csb, dst, static_cast<int>(b), static_cast<int>(end));
    });
  } else {
    gemm::pack_b(K, N, kc, B, rsb, csb, dst, 0, slivers);
  }
}

// Packs B (K, N) once into the calling thread's kSlotConvB.
gemm::PackedB PackShared(int K, int N, int kc, const float* B, long rsb, long csb,
                         const Exec& e, int threads) {
  float* dst = gemm::scratch(gemm::kSlotConvB, gemm::packed_b_floats(K, N));
  PackInto(K, N, kc, B, rsb, csb, dst, e, threads);
  return gemm::PackedB{dst, K, N, kc, 0};
}

// A forward pass's weights in the layout its path reads (a convolution's packed W^T or
// Winograd's transformed weights, a dense layer's 16-bit weights), kept in the layer's OpState:
// inference reuses them until the kernel pointer, the parameter version or the shape changes.
class WeightCache final : public OpState {
 public:
  enum Mode : int { kPointwise, kImplicit, kWinograd, kDense16 };
  struct Key {
    const float* w;
    uint64_t version;
    int C, K, KH, KW;
    Mode mode;
    bool operator==(const Key& o) const {
      return w == o.w && version == o.version && C == o.C && K == o.K && KH == o.KH &&
             KW == o.KW && mode == o.mode;
    }
  };

  ~WeightCache() override { std::free(data_); }

  // The weights for `key`, made by fill(dst) into `floats` 64-byte aligned floats unless the
  // cached ones were made for the same key.
  template <typename Fill>
  const float* get(const Key& key, size_t floats, Fill&& fill) {
    if (valid_ && key_ == key) return data_;
    valid_ = false;
    if (floats > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = 0;
      const size_t bytes = (std::max<size_t>(floats, 16) * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data_) throw std::bad_alloc();
      size_ = bytes / sizeof(float);
    }
    fill(data_);
    key_ = key;
    valid_ = true;
    return data_;
  }

 private:
  Key key_{};
  bool valid_ = false;
  float* data_ = nullptr;
  size_t size_ = 0;
};

WeightCache& weight_cache(OpStatePtr& state) {
  auto* s = dynamic_cast<WeightCache*>(state.get());
  if (!s) {
    state = std::make_unique<WeightCache>();
    s = static_cast<WeightCache*>(state.get());
  }
  return *s;
}

// Implicit GEMM. A task owns a band of output rows of one image and zero-pads the input rows
// the band reads (including whole padding rows) into its scratch. In that buffer the patch of
// output pixel (oh, ow) is KH runs of KW*C contiguous floats, one per kernel row, a fixed
// row_floats apart, and neighbouring pixels are SW*C floats apart; the micro-kernel reads
// patches in place through its row offsets and segments, so no patch matrix is ever written.
struct Bands {
  int band;           // output rows per task
  int count;          // bands per image
  int rows;           // padded input rows per band
  size_t row_floats;  // floats per padded input row
  Bands(const ConvDims& d, int threads) {
    band = std::max(1, std::min(d.OH, (kBandPixels + d.OW - 1) / d.OW));
    // Small batches: cut images finer so that every thread gets a few tasks.
    const int per_image = d.N > 0 ? (4 * threads + d.N - 1) / d.N : 1;
    if (threads > 1 && d.N > 0 && per_image > 1) band = std::min(band, std::max(1, d.OH / per_image));
    count = (d.OH + band - 1) / band;
    rows = (band - 1) * d.SH + d.KH;
    // PL zeros, the W input pixels, then zeros as far as the last window reaches.
    const int wp = std::max(d.W + d.PL, (d.OW - 1) * d.SW + d.KW);
    row_floats = static_cast<size_t>(wp) * d.C;
  }
  size_t floats() const { return rows * row_floats; }
};

// buf (rows, row_floats) = input rows [ih0, ih0 + rows) of image n of x, zero-padded.
void PadRows(const ConvDims& d, const Bands& g, const float* x, int n, int ih0, int rows,
             float* buf) {
  const size_t left = static_cast<size_t>(d.PL) * d.C;
  const size_t body = static_cast<size_t>(d.W) * d.C;
  const float* src = x + static_cast<size_t>(n) * d.H * body;
  for (int r = 0; r < rows; ++r) {
    float* row = buf + r * g.row_floats;
    const int ih = ih0 + r;
    if (ih < 0 || ih >= d.H) {
      ZeroN(row, static_cast<int>(g.row_floats));
      continue;
    }
    ZeroN(row, static_cast<int>(left));
    CopyN(src + ih * body, row + left, static_cast<int>(body));
    ZeroN(row + left + body, static_cast<int>(g.row_floats - left - body));
  }
}

// out (N, OH, OW, K) = conv(in (N, H, W, C)) + bias, act; bp holds W^T (R, K) packed as
// one K block (sliver s at bp + s*R*NR).
void ForwardImplicit(const ConvDims& d, const float* in, const float* bp, float* out,
                     const float* bias, Act act, const Exec& e, int threads) {
  const int R = d.R();
  const int K = d.K;
  const int mr = gemm::tile_m(), nr = gemm::tile_n();
  const int slivers = gemm::b_slivers(K);
  const Bands g(d, threads);
  const int span = d.KW * d.C;
  const auto task = [&](size_t t) {
    const int n = static_cast<int>(t / g.count);
    const int oh0 = static_cast<int>(t % g.count) * g.band;
    const int oh1 = std::min(d.OH, oh0 + g.band);
    const int ih0 = oh0 * d.SH - d.PT;
    const int rows = (oh1 - 1 - oh0) * d.SH + d.KH;
    float* buf = gemm::scratch(gemm::kSlotCol, g.floats());
    PadRows(d, g, in, n, ih0, rows, buf);
    std::vector<gemm::Segment> seg(d.KH);
    long ro[8];
    // Tiles run over the band's pixels in order and may straddle output rows: each tile row
    // has its own offset, and the band's output pixels are consecutive rows of `out`.
    const int pixels = (oh1 - oh0) * d.OW;
    float* yband = out + (static_cast<size_t>(n) * d.OH + oh0) * d.OW * K;
    const long row_step = static_cast<long>(d.SH) * static_cast<long>(g.row_floats);
    const long col_step = static_cast<long>(d.SW) * d.C;
    const bool relu = act == Act::kRelu;
    int row = 0, col = 0;  // output pixel q0 of the band
    for (int q0 = 0; q0 < pixels; q0 += mr) {
      const int m = std::min(mr, pixels - q0);
      int r = row, c = col, row_last = row;
      for (int i = 0; i < mr; ++i) {
        ro[i] = r * row_step + c * col_step;
        if (i + 1 < m && ++c == d.OW) {
          c = 0;
          ++r;
        }
        if (i + 1 < m) row_last = r;
      }
      // Kernel rows that fall into top or bottom padding for every pixel of the tile add
      // nothing; skip them.
      const int oh_first = oh0 + row, oh_last = oh0 + row_last;
      int nseg = 0;
      for (int kh = 0; kh < d.KH; ++kh) {
        const int ih_first = oh_first * d.SH - d.PT + kh, ih_last = oh_last * d.SH - d.PT + kh;
        if (ih_last < 0 || ih_first >= d.H) continue;
        seg[nseg++] = {buf + static_cast<size_t>(kh) * g.row_floats,
                       bp + static_cast<size_t>(kh) * span * nr, span};
      }
      float* yt = yband + static_cast<size_t>(q0) * K;
      for (int s = 0; s < slivers; ++s) {
        gemm::kernel(seg.data(), nseg, ro, 1, nr, yt + s * nr, K, m, std::min(nr, K - s * nr),
                     false, bias ? bias + s * nr : nullptr, relu);
        for (int j = 0; j < nseg; ++j) seg[j].b += static_cast<size_t>(R) * nr;
      }
      col += mr;
      while (col >= d.OW) {
        col -= d.OW;
        ++row;
      }
    }
  };
  const size_t tasks = static_cast<size_t>(d.N) * g.count;
  if (threads > 1) {
    e.pool->run_tasks(tasks, task);
  } else {
    for (size_t t = 0; t < tasks; ++t) task(t);
  }
}

// dW^T (R, K) = Xcol^T (R, P) * dY (P, K), implicit in both operands: an A tile is MR patch
// entries r (any mix of kernel rows, via the row offsets), a segment is one output row of
// pixels, and B is dY read in place. Runs of bands accumulate into partials dW^T (R, K), each
// followed by the column sums of dY (K); parts receives one pointer per partial, and the
// caller adds them up in order.
void FilterImplicit(const ConvDims& d, const float* x, const float* dy, bool with_db,
                    std::vector<float*>& parts, const Exec& e, int threads) {
  const int R = d.R();
  const int K = d.K;
  const int mr = gemm::tile_m(), nr = gemm::tile_n();
  const int slivers = gemm::b_slivers(K);
  const int tiles = (R + mr - 1) / mr;
  const Bands g(d, threads);
  const int span = d.KW * d.C;
  // Row offsets of every A tile in the padded buffer; rows past R repeat the last entry.
  std::vector<long> ro(static_cast<size_t>(tiles) * 8);
  for (int t = 0; t < tiles; ++t)
    for (int i = 0; i < mr; ++i) {
      const int r = std::min(t * mr + i, R - 1);
      ro[t * 8 + i] = static_cast<long>(r / span) * static_cast<long>(g.row_floats) + r % span;
    }
  // dY rows are read NR floats at a time; with K not a multiple of NR they are copied to a
  // padded stride first so the last sliver cannot read past the end of dy.
  const int kp = slivers * nr;
  const bool pad_dy = kp != K;
  const size_t part_floats = static_cast<size_t>(R) * K + K;
  const size_t tasks = static_cast<size_t>(d.N) * g.count;
  const auto task = [&](float* acc, size_t t) {
    float* acc_db = acc + static_cast<size_t>(R) * K;
    float* buf = gemm::scratch(gemm::kSlotCol, g.floats() + (pad_dy ? g.band * d.OW * kp : 0));
    float* dy_pad = buf + g.floats();
    std::vector<gemm::Segment> seg(g.band);
    {
      const int n = static_cast<int>(t / g.count);
      const int oh0 = static_cast<int>(t % g.count) * g.band;
      const int oh1 = std::min(d.OH, oh0 + g.band);
      const int rows = (oh1 - 1 - oh0) * d.SH + d.KH;
      PadRows(d, g, x, n, oh0 * d.SH - d.PT, rows, buf);
      const long pixels = static_cast<long>(oh1 - oh0) * d.OW;
      const float* g0 = dy + ((static_cast<size_t>(n) * d.OH + oh0) * d.OW) * K;  // (pixels, K)
      if (with_db) AddColumnSums(g0, pixels, K, acc_db);
      long ldg = K;
      if (pad_dy) {
        for (long q = 0; q < pixels; ++q) {
          CopyN(g0 + q * K, dy_pad + q * kp, K);
          ZeroN(dy_pad + q * kp + K, kp - K);
        }
        g0 = dy_pad;
        ldg = kp;
      }
      // Output rows are taken a few at a time so that one call's A and B rows stay in L1
      // while all tiles and slivers pass over them.
      const int block = std::max(1, std::min(oh1 - oh0, kFilterPixels / d.OW));
      for (int j0 = oh0; j0 < oh1; j0 += block) {
        const int nseg = std::min(block, oh1 - j0);
        for (int j = 0; j < nseg; ++j) {
          seg[j].a = buf + static_cast<size_t>(j0 - oh0 + j) * d.SH * g.row_floats;
          seg[j].len = d.OW;
        }
        const float* gb = g0 + static_cast<long>(j0 - oh0) * d.OW * ldg;
        for (int tile = 0; tile < tiles; ++tile) {
          const int r0 = tile * mr;
          for (int s = 0; s < slivers; ++s) {
            for (int j = 0; j < nseg; ++j) seg[j].b = gb + static_cast<long>(j) * d.OW * ldg + s * nr;
            gemm::kernel(seg.data(), nseg, &ro[tile * 8], static_cast<long>(d.SW) * d.C, ldg,
                         acc + static_cast<size_t>(r0) * K + s * nr, K, std::min(mr, R - r0),
                         std::min(nr, K - s * nr), true);
          }
        }
      }
    }
  };
  // The tasks fall into a few runs, each summed into its own partial and handed out whole:
  // a descheduled thread does not hold up the others, and the sums do not depend on which
  // thread ran which run, so training is reproducible.
  const size_t runs = threads > 1 ? std::min(tasks, static_cast<size_t>(threads) * kFilterRunsPerThread) : 1;
  float* partials = gemm::scratch(gemm::kSlotPartial, runs * part_floats);
  parts.resize(runs);
  const auto run = [&](size_t i) {
    float* acc = partials + i * part_floats;
    std::fill(acc, acc + part_floats, 0.0f);
    for (size_t t = tasks * i / runs; t < tasks * (i + 1) / runs; ++t) task(acc, t);
    parts[i] = acc;
  };
  if (runs > 1) {
    e.pool->run_tasks(runs, run);
  } else {
    run(0);
  }
}

// Up to this many rows of x, a dense forward pass is a set of dot products rather than a
// GEMM: the micro-kernel would fill only N of its NR columns, so at batch 1 it did 2*NR times
// the necessary arithmetic, while the dot products stream the weights once at memory speed.
constexpr int kDotMaxRows = 4;
// Rows of W per dot-product block; every W vector loaded serves all rows of x in the block.
constexpr int kDotRowsW = 4;
// W rows per pool task: a few hundred KB of weights, enough to amortise handing out a task.
constexpr int kDotTaskRows = 32;
// Dense layers of at least this many weights run their inference dot products on 16-bit
// copies of the weights, q = round(w / s) with s = max |w| / 32767 per output: the dot
// products are bound by reading the weights, so half the bytes take about half the time
// (SmallerVGGNet's 33.5 MB Dense at batch 1). Output o moves by at most
// s_o / 2 * sum |x| (a few 1e-5 of its scale).
constexpr size_t kDense16MinWeights = size_t{1} << 20;

// Weights [0, 2*kL) of w as two vectors.
HWY_INLINE void LoadWeights(D d, const float* HWY_RESTRICT w, hn::Vec<D>& lo, hn::Vec<D>& hi) {
  lo = hn::LoadU(d, w);
  hi = hn::LoadU(d, w + kL);
}
#if HWY_TARGET == HWY_WASM
// q * 65536: one load of 8 int16, interleaved with zeros (a single unpack each) into the upper
// halves of 32-bit lanes, then converted. (LLVM lowers a sign extension followed by the
// conversion lane by lane.)
constexpr float kInt16Unit = 65536.0f;
HWY_INLINE void LoadWeights(D, const int16_t* HWY_RESTRICT w, hn::Vec<D>& lo, hn::Vec<D>& hi) {
  const v128_t q = wasm_v128_load(w);
  const v128_t zero = wasm_i32x4_const_splat(0);
  lo.raw = wasm_f32x4_convert_i32x4(wasm_i16x8_shuffle(zero, q, 0, 8, 1, 9, 2, 10, 3, 11));
  hi.raw = wasm_f32x4_convert_i32x4(wasm_i16x8_shuffle(zero, q, 4, 12, 5, 13, 6, 14, 7, 15));
}
#else
constexpr float kInt16Unit = 1.0f;
HWY_INLINE void LoadWeights(D d, const int16_t* HWY_RESTRICT w, hn::Vec<D>& lo, hn::Vec<D>& hi) {
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<int16_t, D> dh;
  lo = hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(dh, w)));
  hi = hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(dh, w + kL)));
}
#endif

// y[n*O + r] = scale[r] * dot(W row r, x row n) for r < kRowsW rows of W (I weights apart) and
// n < kRowsX rows of x (I floats apart); no scale for float weights (scale null).
template <int kRowsW, int kRowsX, typename W>
HWY_INLINE void DotBlock(int I, int O, const W* HWY_RESTRICT w, const float* scale,
                         const float* HWY_RESTRICT x, float* HWY_RESTRICT y) {
  const D d;
  // Two partial sums per pair when there is one row of x, to keep enough additions in flight.
  constexpr int kSplit = kRowsX == 1 ? 2 : 1;
  hn::Vec<D> acc[kSplit][kRowsW][kRowsX];
  for (int u = 0; u < kSplit; ++u)
    for (int r = 0; r < kRowsW; ++r)
      for (int n = 0; n < kRowsX; ++n) acc[u][r][n] = hn::Zero(d);
  int i = 0;
  for (; i + 2 * kL <= I; i += 2 * kL) {
    hn::Vec<D> xv[2][kRowsX];
    for (int n = 0; n < kRowsX; ++n) {
      xv[0][n] = hn::LoadU(d, x + static_cast<size_t>(n) * I + i);
      xv[1][n] = hn::LoadU(d, x + static_cast<size_t>(n) * I + i + kL);
    }
    for (int r = 0; r < kRowsW; ++r) {
      hn::Vec<D> wv[2];
      LoadWeights(d, w + static_cast<size_t>(r) * I + i, wv[0], wv[1]);
      for (int u = 0; u < 2; ++u)
        for (int n = 0; n < kRowsX; ++n)
          acc[u % kSplit][r][n] = hn::MulAdd(wv[u], xv[u][n], acc[u % kSplit][r][n]);
    }
  }
  for (int r = 0; r < kRowsW; ++r) {
    for (int n = 0; n < kRowsX; ++n) {
      auto v = acc[0][r][n];
      for (int u = 1; u < kSplit; ++u) v = hn::Add(v, acc[u][r][n]);
      float s = hn::GetLane(hn::SumOfLanes(d, v));
      const W* wr = w + static_cast<size_t>(r) * I;
      const float* xr = x + static_cast<size_t>(n) * I;
      const float unit = scale ? kInt16Unit : 1.0f;   // what LoadWeights multiplies q by
      for (int j = i; j < I; ++j) s += static_cast<float>(wr[j]) * unit * xr[j];
      y[static_cast<size_t>(n) * O + r] = scale ? s * scale[r] : s;
    }
  }
}

// y (N, O) = x (N, I) * W^T for N <= kDotMaxRows, W (O, I) read in place (times scale[o] per
// output for 16-bit weights).
template <typename W>
void DenseDots(int N, int I, int O, const float* x, const W* w, const float* scale, float* y,
               const Exec& e) {
  // Rows of x two at a time against each block of W, so that W comes from memory once and
  // from cache for the other pairs.
  const auto rows = [&](int o0, int o1) {
    for (int o = o0; o < o1;) {
      const bool block = o + kDotRowsW <= o1;
      const W* wo = w + static_cast<size_t>(o) * I;
      const float* so = scale ? scale + o : nullptr;
      for (int n0 = 0; n0 < N; n0 += 2) {
        const float* xn = x + static_cast<size_t>(n0) * I;
        float* yn = y + static_cast<size_t>(n0) * O + o;
        const bool pair = n0 + 1 < N;
        if (block && pair) {
          DotBlock<kDotRowsW, 2>(I, O, wo, so, xn, yn);
        } else if (block) {
          DotBlock<kDotRowsW, 1>(I, O, wo, so, xn, yn);
        } else if (pair) {
          DotBlock<1, 2>(I, O, wo, so, xn, yn);
        } else {
          DotBlock<1, 1>(I, O, wo, so, xn, yn);
        }
      }
      o += block ? kDotRowsW : 1;
    }
  };
  const int threads = Threads(e, 2.0 * N * I * O);
  const int tasks = (O + kDotTaskRows - 1) / kDotTaskRows;
  if (threads > 1 && tasks > 1) {
    e.pool->run_tasks(tasks, [&](size_t t) {
      const int o0 = static_cast<int>(t) * kDotTaskRows;
      rows(o0, std::min(O, o0 + kDotTaskRows));
    });
  } else {
    rows(0, O);
  }
}

// The 16-bit weights of W (O, I) into dst: O float scales, then the (O, I) int16 weights.
void QuantizeWeights(int I, int O, const float* w, float* dst, const Exec& e) {
  int16_t* q = reinterpret_cast<int16_t*>(dst + O);
  const auto rows = [&](size_t t) {
    const int o1 = std::min(O, static_cast<int>(t + 1) * kDotTaskRows);
    for (int o = static_cast<int>(t) * kDotTaskRows; o < o1; ++o) {
      const float* wr = w + static_cast<size_t>(o) * I;
      int16_t* qr = q + static_cast<size_t>(o) * I;
      float amax = 0.0f;
      for (int i = 0; i < I; ++i) amax = std::max(amax, std::fabs(wr[i]));
      const float s = amax / 32767.0f / kInt16Unit;  // the unit LoadWeights returns q in
      const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
      for (int i = 0; i < I; ++i) qr[i] = static_cast<int16_t>(std::lrint(wr[i] * inv));
      dst[o] = s;
    }
  };
  e.pool->run_tasks((O + kDotTaskRows - 1) / kDotTaskRows, rows);
}

// Patches of at most kDirectMaxR values (2x2 on one grey channel, a first layer) leave GEMM
// tiles mostly overhead, so such convolutions run directly: the output channels in vectors,
// the weights of one vector held in registers while a run of output pixels streams past.
constexpr int kDirectMaxR = 8;

bool UseDirect(const ConvDims& d) { return d.R() <= kDirectMaxR; }

// How output row (n, oh) reads x: the pixels [lo, hi) have their whole patch inside the
// picture, at Corner(ow) + offsets[r]; none do when a kernel row falls into the padding.
struct DirectRow {
  const float* start = nullptr;  // the patches' first input row
  size_t step, left;
  int lo = 0, hi = 0;
  DirectRow(const ConvDims& d, const float* x, int n, int oh) {
    step = static_cast<size_t>(d.SW) * d.C;
    left = static_cast<size_t>(d.PL) * d.C;
    const int ih0 = oh * d.SH - d.PT;
    if (ih0 < 0 || ih0 + d.KH > d.H) return;
    start = x + (static_cast<size_t>(n) * d.H + ih0) * d.W * d.C;
    // ow * SW - PL >= 0 and ow * SW - PL + KW <= W
    lo = std::min(d.OW, (d.PL + d.SW - 1) / d.SW);
    hi = d.W - d.KW + d.PL < 0 ? 0 : std::min(d.OW, (d.W - d.KW + d.PL) / d.SW + 1);
    hi = std::max(lo, hi);
  }
  const float* Corner(int ow) const { return start + (ow * step - left); }
};

// The patch of output pixel (n, oh, ow) inside the picture: values v[j], which multiply rows
// at[j] of W^T (R, K). Returns how many; taps in the padding are left out.
int Taps(const ConvDims& d, const float* x, int n, int oh, int ow, float* v, int* at) {
  int t = 0;
  for (int kh = 0; kh < d.KH; ++kh) {
    const int ih = oh * d.SH - d.PT + kh;
    if (ih < 0 || ih >= d.H) continue;
    for (int kw = 0; kw < d.KW; ++kw) {
      const int iw = ow * d.SW - d.PL + kw;
      if (iw < 0 || iw >= d.W) continue;
      const float* px = x + ((static_cast<size_t>(n) * d.H + ih) * d.W + iw) * d.C;
      for (int c = 0; c < d.C; ++c) {
        v[t] = px[c];
        at[t++] = (kh * d.KW + kw) * d.C + c;
      }
    }
  }
  return t;
}

// Offsets of a patch's values from its corner pixel in x, in W^T's row order (kh, kw, c).
std::vector<int> PatchOffsets(const ConvDims& d) {
  std::vector<int> o;
  for (int kh = 0; kh < d.KH; ++kh)
    for (int kw = 0; kw < d.KW; ++kw)
      for (int c = 0; c < d.C; ++c) o.push_back((kh * d.W + kw) * d.C + c);
  return o;
}

// y of the pixels [lo, hi) of one row (y at pixel 0), output channels [k, k + kL).
template <int R>
void ForwardRun(const DirectRow& row, const int* off, const float* wt, int K, int k, V bias,
                bool relu, float* y) {
  const D dd;
  V w[R];
  for (int r = 0; r < R; ++r) w[r] = hn::LoadU(dd, wt + static_cast<size_t>(r) * K + k);
  int ow = row.lo;
  for (; ow + 2 <= row.hi; ow += 2) {  // two pixels in flight
    const float* c0 = row.Corner(ow);
    const float* c1 = c0 + row.step;
    V a0 = bias, a1 = bias;
    for (int r = 0; r < R; ++r) {
      a0 = hn::MulAdd(hn::Set(dd, c0[off[r]]), w[r], a0);
      a1 = hn::MulAdd(hn::Set(dd, c1[off[r]]), w[r], a1);
    }
    if (relu) {
      a0 = hn::Max(a0, hn::Zero(dd));
      a1 = hn::Max(a1, hn::Zero(dd));
    }
    hn::StoreU(a0, dd, y + static_cast<size_t>(ow) * K + k);
    hn::StoreU(a1, dd, y + static_cast<size_t>(ow + 1) * K + k);
  }
  for (; ow < row.hi; ++ow) {
    const float* c0 = row.Corner(ow);
    V a0 = bias;
    for (int r = 0; r < R; ++r) a0 = hn::MulAdd(hn::Set(dd, c0[off[r]]), w[r], a0);
    if (relu) a0 = hn::Max(a0, hn::Zero(dd));
    hn::StoreU(a0, dd, y + static_cast<size_t>(ow) * K + k);
  }
}

// Sums over the pixels [lo, hi) of one row (dy at pixel 0) of patch value x dy, into acc
// (R, K), and of dy into bias (K), for output channels [k, k + kL).
template <int R>
void FilterRun(const DirectRow& row, const int* off, const float* dy, int K, int k, float* acc,
               float* bias) {
  const D dd;
  V a[R];
  for (int r = 0; r < R; ++r) a[r] = hn::Zero(dd);
  V sb = hn::Zero(dd);
  for (int ow = row.lo; ow < row.hi; ++ow) {
    const V g = hn::LoadU(dd, dy + static_cast<size_t>(ow) * K + k);
    const float* c0 = row.Corner(ow);
    for (int r = 0; r < R; ++r) a[r] = hn::MulAdd(hn::Set(dd, c0[off[r]]), g, a[r]);
    sb = hn::Add(sb, g);
  }
  for (int r = 0; r < R; ++r) {
    float* ar = acc + static_cast<size_t>(r) * K + k;
    hn::StoreU(hn::Add(hn::LoadU(dd, ar), a[r]), dd, ar);
  }
  hn::StoreU(hn::Add(hn::LoadU(dd, bias + k), sb), dd, bias + k);
}

template <template <int> class Fn, class... Args>
void WithR(int R, Args&&... args) {
  switch (R) {
    case 1: return Fn<1>::Run(args...);
    case 2: return Fn<2>::Run(args...);
    case 3: return Fn<3>::Run(args...);
    case 4: return Fn<4>::Run(args...);
    case 5: return Fn<5>::Run(args...);
    case 6: return Fn<6>::Run(args...);
    case 7: return Fn<7>::Run(args...);
    default: return Fn<8>::Run(args...);
  }
}
template <int R>
struct ForwardRunR {
  template <class... A>
  static void Run(A&&... a) { ForwardRun<R>(a...); }
};
template <int R>
struct FilterRunR {
  template <class... A>
  static void Run(A&&... a) { FilterRun<R>(a...); }
};

// Rows [0, N * OH) of the output split over the pool.
template <class Fn>
void OverOutputRows(const ConvDims& d, const Exec& e, int threads, const Fn& fn) {
  const size_t rows = static_cast<size_t>(d.N) * d.OH;
  if (threads > 1) {
    e.pool->run(rows, 1, fn);
  } else {
    fn(size_t{0}, rows);
  }
}

void ForwardDirect(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                   float* y, const Exec& e, int threads) {
  const int R = d.R(), K = d.K;
  std::vector<float> wt(static_cast<size_t>(R) * K);  // W^T (R, K)
  for (int k = 0; k < K; ++k)
    for (int r = 0; r < R; ++r) wt[static_cast<size_t>(r) * K + k] = w[static_cast<size_t>(k) * R + r];
  const bool relu = act == Act::kRelu;
  const std::vector<int> offsets = PatchOffsets(d);
  const int kv = K / kL * kL;  // channels in whole vectors
  OverOutputRows(d, e, threads, [&](size_t r0, size_t r1) {
    const D dd;
    float v[kDirectMaxR];
    int at[kDirectMaxR];
    for (size_t row = r0; row < r1; ++row) {
      const int n = static_cast<int>(row / d.OH), oh = static_cast<int>(row % d.OH);
      float* yr = y + row * d.OW * K;
      const DirectRow dr(d, x, n, oh);
      for (int k = 0; k < kv; k += kL)
        WithR<ForwardRunR>(R, dr, offsets.data(), wt.data(), K, k,
                           b ? hn::LoadU(dd, b + k) : hn::Zero(dd), relu, yr);
      for (int ow = 0; ow < d.OW; ++ow) {
        const bool inside = ow >= dr.lo && ow < dr.hi;
        if (inside && kv == K) continue;
        const int t = Taps(d, x, n, oh, ow, v, at);
        for (int k = inside ? kv : 0; k < K; ++k) {
          float a = b ? b[k] : 0.0f;
          for (int j = 0; j < t; ++j) a += v[j] * wt[static_cast<size_t>(at[j]) * K + k];
          yr[static_cast<size_t>(ow) * K + k] = relu && a < 0.0f ? 0.0f : a;
        }
      }
    }
  });
}

// dw (K, R) and db (K) from per-thread sums: each output row is summed in float, then added
// into the thread's double sums.
void FilterDirect(const ConvDims& d, const float* x, const float* dy, float* dw, float* db,
                  const Exec& e, int threads) {
  const int R = d.R(), K = d.K;
  const size_t floats = static_cast<size_t>(R + 1) * K;  // W^T (R, K), then the bias row
  const size_t rows = static_cast<size_t>(d.N) * d.OH;
  const int parts = threads > 1 ? threads : 1;
  const std::vector<int> offsets = PatchOffsets(d);
  const int kv = K / kL * kL;
  std::vector<double> sums(parts * floats, 0.0);
  const auto part = [&](size_t p) {
    std::vector<float> acc(floats);
    float v[kDirectMaxR];
    int at[kDirectMaxR];
    double* s = sums.data() + p * floats;
    float* bias = acc.data() + static_cast<size_t>(R) * K;
    for (size_t row = rows * p / parts; row < rows * (p + 1) / parts; ++row) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const int n = static_cast<int>(row / d.OH), oh = static_cast<int>(row % d.OH);
      const float* gr = dy + row * d.OW * K;
      const DirectRow dr(d, x, n, oh);
      for (int k = 0; k < kv; k += kL)
        WithR<FilterRunR>(R, dr, offsets.data(), gr, K, k, acc.data(), bias);
      for (int ow = 0; ow < d.OW; ++ow) {
        const bool inside = ow >= dr.lo && ow < dr.hi;
        if (inside && kv == K) continue;
        const int t = Taps(d, x, n, oh, ow, v, at);
        const float* g = gr + static_cast<size_t>(ow) * K;
        for (int k = inside ? kv : 0; k < K; ++k) {
          for (int j = 0; j < t; ++j) acc[static_cast<size_t>(at[j]) * K + k] += v[j] * g[k];
          bias[k] += g[k];
        }
      }
      for (size_t i = 0; i < floats; ++i) s[i] += acc[i];
    }
  };
  if (parts > 1) {
    e.pool->run_tasks(parts, part);
  } else {
    part(0);
  }
  for (int k = 0; k < K; ++k) {
    for (int r = 0; r <= R; ++r) {
      double total = 0.0;
      for (int p = 0; p < parts; ++p) total += sums[p * floats + static_cast<size_t>(r) * K + k];
      if (r < R) dw[static_cast<size_t>(k) * R + r] = static_cast<float>(total);
      else if (db) db[k] = static_cast<float>(total);
    }
  }
}

}  // namespace

void conv2d_forward_hwy(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                        float* y, OpStatePtr& state, const Exec& e) {
  const int R = d.R();
  const long P = static_cast<long>(d.N) * d.OH * d.OW;
  if (P <= 0 || d.K <= 0) return;
  const int threads = Threads(e, 2.0 * P * R * d.K);
  if (UseDirect(d)) {
    ForwardDirect(d, x, w, b, act, y, e, threads);
    return;
  }
  WeightCache& st = weight_cache(state);
  if (kern::wino::applies(d)) {
    const WeightCache::Key key{w, e.param_version, d.C, d.K, d.KH, d.KW, WeightCache::kWinograd};
    const float* u = st.get(key, wino::weight_floats(d.C, d.K), [&](float* dst) {
      wino::transform_weights(d.C, d.K, w, dst, e, threads);
    });
    wino::forward(d, x, u, b, act, y, e, threads);
    return;
  }
  if (IsPointwise(d)) {
    // x (P, C) is the patch matrix already.
    const int kc = gemm::default_kc(R, d.K);
    const WeightCache::Key key{w, e.param_version, d.C, d.K, d.KH, d.KW, WeightCache::kPointwise};
    const float* packed = st.get(key, gemm::packed_b_floats(R, d.K), [&](float* dst) {
      PackInto(R, d.K, kc, w, 1, R, dst, e, threads);
    });
    const gemm::PackedB wt{packed, R, d.K, kc, 0};
    const int rows = ChunkRows(R, P);
    const long chunks = (P + rows - 1) / rows;
    const auto task = [&](size_t t) {
      const long p0 = static_cast<long>(t) * rows;
      const int m = static_cast<int>(std::min<long>(rows, P - p0));
      float* yc = y + p0 * d.K;  // (m, K)
      gemm::gemm_st(m, d.K, R, x + p0 * d.C, d.C, 1, wt, yc, d.K, 1, false);
      BiasAct(yc, m, d.K, b, act);
    };
    if (threads > 1) {
      e.pool->run_tasks(chunks, task);
    } else {
      for (long t = 0; t < chunks; ++t) task(t);
    }
    return;
  }
  // W (K, R) read as W^T (R, K): row stride 1, column stride R; one K block.
  const WeightCache::Key key{w, e.param_version, d.C, d.K, d.KH, d.KW, WeightCache::kImplicit};
  const float* wt = st.get(key, gemm::packed_b_floats(R, d.K),
                           [&](float* dst) { PackInto(R, d.K, R, w, 1, R, dst, e, threads); });
  ForwardImplicit(d, x, wt, y, b, act, e, threads);
}

void conv2d_backward_data_hwy(const ConvDims& d, const float* dy, const float* w, float* dx,
                              const Exec& e) {
  const int R = d.R();
  const long hw = static_cast<long>(d.OH) * d.OW;
  const long P = d.N * hw;
  const size_t image_floats = static_cast<size_t>(d.H) * d.W * d.C;
  if (P <= 0 || d.K <= 0 || R <= 0) {
    std::fill(dx, dx + d.N * image_floats, 0.0f);
    return;
  }
  const int threads = Threads(e, 2.0 * P * R * d.K);
  if (UseTransposedConv(d)) {
    // For stride 1, dx is the forward convolution of dy with the spatially flipped kernel,
    // input and output channels swapped, and the complementary padding.
    ConvDims t = d;
    t.H = d.OH;
    t.W = d.OW;
    t.C = d.K;
    t.K = d.C;
    t.PT = d.KH - 1 - d.PT;
    t.PB = d.KH - 1 - d.PB;
    t.PL = d.KW - 1 - d.PL;
    t.PR = d.KW - 1 - d.PR;
    t.OH = d.H;
    t.OW = d.W;
    if (kern::wino::applies(t)) {
      // The flipped kernel as a forward convolution's weights, wt (C, 3, 3, K), through the
      // same Winograd product as the forward pass, 4x fewer multiply-adds.
      float* wt = gemm::scratch(gemm::kSlotConvW, static_cast<size_t>(d.C) * 9 * d.K);
      const auto flip = [&](size_t c0, size_t c1) {
        for (size_t c = c0; c < c1; ++c)
          for (int kh = 0; kh < 3; ++kh)
            for (int kw = 0; kw < 3; ++kw)
              for (int k = 0; k < d.K; ++k)
                wt[((c * 3 + kh) * 3 + kw) * d.K + k] =
                    w[((static_cast<size_t>(k) * 3 + 2 - kh) * 3 + 2 - kw) * d.C + c];
      };
      if (threads > 1 && 9.0 * d.C * d.K >= kMinParallelPackFloats) {
        e.pool->run(d.C, 1, flip);
      } else {
        flip(0, d.C);
      }
      float* u = gemm::scratch(gemm::kSlotConvB, wino::weight_floats(t.C, t.K));
      wino::transform_weights(t.C, t.K, wt, u, e, threads);
      wino::forward(t, dy, u, nullptr, Act::kNone, dx, e, threads);
      return;
    }
    // B (KH*KW*K, C): row (kh, kw, k) is W[k][KH-1-kh][KW-1-kw][:], packed as one K block.
    const int rt = t.R();
    const int nr = gemm::tile_n();
    const int slivers = gemm::b_slivers(d.C);
    float* bp = gemm::scratch(gemm::kSlotConvB, gemm::packed_b_floats(rt, d.C));
    const auto pack = [&](size_t s_begin, size_t s_end) {
      for (size_t s = s_begin; s < s_end; ++s) {
        const int c0 = static_cast<int>(s) * nr;
        const int nc = std::min(nr, d.C - c0);
        float* dst = bp + s * rt * nr;
        for (int kh = 0; kh < d.KH; ++kh)
          for (int kw = 0; kw < d.KW; ++kw)
            for (int k = 0; k < d.K; ++k, dst += nr) {
              const float* src =
                  w + ((static_cast<size_t>(k) * d.KH + d.KH - 1 - kh) * d.KW + d.KW - 1 - kw) *
                          d.C + c0;
              CopyN(src, dst, nc);
              ZeroN(dst + nc, nr - nc);
            }
      }
    };
    if (threads > 1 && static_cast<double>(rt) * d.C >= kMinParallelPackFloats) {
      e.pool->run(slivers, 1, pack);
    } else {
      pack(0, slivers);
    }
    ForwardImplicit(t, dy, bp, dx, nullptr, Act::kNone, e, threads);
    return;
  }
  const gemm::PackedB wp = PackShared(d.K, R, gemm::default_kc(d.K, R), w, R, 1, e, threads);
  if (IsPointwise(d)) {
    // dx (P, C) = dY (P, K) * W (K, C); pixels are independent, so any row split works.
    const int rows = ChunkRows(R, P);
    const long chunks = (P + rows - 1) / rows;
    const auto task = [&](size_t t) {
      const long p0 = static_cast<long>(t) * rows;
      const int m = static_cast<int>(std::min<long>(rows, P - p0));
      gemm::gemm_st(m, R, d.K, dy + p0 * d.K, d.K, 1, wp, dx + p0 * d.C, d.C, 1, false);
    };
    if (threads > 1) {
      e.pool->run_tasks(chunks, task);
    } else {
      for (long t = 0; t < chunks; ++t) task(t);
    }
    return;
  }
  // Patches of neighbouring pixels overlap in dx, so each task owns whole images.
  const int rows = ChunkRows(R, hw);
  const auto image = [&](size_t n) {
    float* col = gemm::scratch(gemm::kSlotCol, static_cast<size_t>(rows) * R);  // (rows, R)
    std::fill(dx + n * image_floats, dx + (n + 1) * image_floats, 0.0f);
    for (long q = 0; q < hw; q += rows) {
      const long p0 = static_cast<long>(n) * hw + q;
      const int m = static_cast<int>(std::min<long>(rows, hw - q));
      gemm::gemm_st(m, R, d.K, dy + p0 * d.K, d.K, 1, wp, col, R, 1, false);
      Col2imAdd(d, col, p0, m, dx);
    }
  };
  if (threads > 1 && d.N > 1) {
    e.pool->run_tasks(d.N, image);
  } else {
    for (int n = 0; n < d.N; ++n) image(n);
  }
}

void conv2d_backward_filter_hwy(const ConvDims& d, const float* x, const float* dy, float* dw,
                                float* db, const Exec& e) {
  const int R = d.R();
  const int K = d.K;
  const long P = static_cast<long>(d.N) * d.OH * d.OW;
  if (R <= 0 || K <= 0) return;
  if (P <= 0) {
    std::fill(dw, dw + static_cast<size_t>(K) * R, 0.0f);
    if (db) std::fill(db, db + K, 0.0f);
    return;
  }
  const int threads = Threads(e, 2.0 * P * R * K);
  if (kern::wino::filter_applies(d)) {
    wino::filter(d, x, dy, dw, db, e, threads);
    return;
  }
  if (UseDirect(d)) {
    FilterDirect(d, x, dy, dw, db, e, threads);
    return;
  }
  std::vector<float*> parts(threads, nullptr);
  FilterImplicit(d, x, dy, db != nullptr, parts, e, threads);
  const size_t part_floats = static_cast<size_t>(R) * K + K;
  // dw (K, R) = sum over parts of dW^T (R, K).
  for (int k = 0; k < K; ++k) {
    float* out = dw + static_cast<size_t>(k) * R;
    const float* src = parts[0] + k;
    for (int r = 0; r < R; ++r) out[r] = src[static_cast<size_t>(r) * K];
    for (size_t t = 1; t < parts.size(); ++t) {
      src = parts[t] + k;
      for (int r = 0; r < R; ++r) out[r] += src[static_cast<size_t>(r) * K];
    }
  }
  if (db) {
    std::copy(parts[0] + static_cast<size_t>(R) * K, parts[0] + part_floats, db);
    for (size_t t = 1; t < parts.size(); ++t) AddN(parts[t] + static_cast<size_t>(R) * K, db, K);
  }
}

void dense_forward_hwy(int N, int I, int O, const float* x, const float* w, const float* b, Act act,
                       float* y, OpStatePtr& state, const Exec& e) {
  if (N > 0 && N <= kDotMaxRows && O > 0) {
    if (!e.training && static_cast<size_t>(I) * O >= kDense16MinWeights) {
      const WeightCache::Key key{w, e.param_version, I, O, 0, 0, WeightCache::kDense16};
      const size_t floats = O + (static_cast<size_t>(I) * O + 1) / 2;
      const float* cached = weight_cache(state).get(key, floats, [&](float* dst) {
        QuantizeWeights(I, O, w, dst, e);
      });
      DenseDots(N, I, O, x, reinterpret_cast<const int16_t*>(cached + O), cached, y, e);
    } else {
      DenseDots(N, I, O, x, w, static_cast<const float*>(nullptr), y, e);
    }
  } else {
    // Y (N, O) = X (N, I) * W^T (I, O); gemm_hwy turns it around when W is the bigger operand.
    gemm_hwy(N, O, I, x, I, 1, w, 1, I, y, O, false, e);
  }
  BiasAct(y, N, O, b, act);
}

void dense_backward_data_hwy(int N, int I, int O, const float* dy, const float* w, float* dx,
                             const Exec& e) {
  // dX (N, I) = dY (N, O) * W (O, I)
  gemm_hwy(N, I, O, dy, O, 1, w, I, 1, dx, I, false, e);
}

void dense_backward_filter_hwy(int N, int I, int O, const float* x, const float* dy, float* dw,
                               float* db, const Exec& e) {
  // dW (O, I) = dY^T (O, N) * X (N, I)
  gemm_hwy(O, I, N, dy, 1, O, x, I, 1, dw, I, false, e);
  if (db) {
    std::fill(db, db + O, 0.0f);
    AddColumnSums(dy, N, O, db);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();
