// Packed fp32 GEMM in the GotoBLAS/BLIS style, written with Highway so the same code builds for
// every x86 target (SSE4, AVX2+FMA, AVX-512) and for WASM SIMD128.
//
// The micro-kernel keeps an MR x NR tile of C (6 x 2 vectors) in registers. It reads B as
// NR-wide rows (packed slivers, or B in place) and A through per-row offsets and a K stride,
// so a row-major A, a column-major A and the patches of an image (conv_hwy.cpp) are all read
// in place; A is only repacked when neither of its strides is 1 or the K stride is huge.
// Loop nest of gemm_st: N in NC blocks, K in KC blocks (B block of KC x NC packed into L2), M in
// MC blocks; inside, either each A tile stays in L1 while the B block streams past it (C is
// then written in long row runs), or, with few A tiles, each B sliver stays in L1 instead.
// gemm_hwy splits N across threads (each packs its own B columns) or, when A is the larger
// operand, splits M after packing B once for all threads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gemm_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include "hwy_setup.h"

#include <hwy/cache_control.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "gemm_hwy.h"
#include "parallel_thresholds.h"
#include "thread_pool.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {
namespace gemm {

namespace {

constexpr int kMR = 6;
// Two vectors per row: 6 x 2 accumulators + 2 B vectors + 1 broadcast fit the 16 registers
// of both AVX2 and SIMD128.
constexpr int kNR = 2 * kL;
// K block: an A tile (MR x KC) and a B sliver (KC x NR) fit L1 together.
constexpr int kKCMax = 256;
// With at most kFewSlivers B slivers the B block is small whatever KC is, and a K block of up
// to kKCNarrow lets A rows stream from memory in long runs.
constexpr int kKCNarrow = 2048;
constexpr int kFewSlivers = 4;
// Rows ahead that PackBBlock prefetches.
constexpr int kPrefetchRows = 16;
// Up to this many A tiles per M block, B slivers go in the outer loop.
constexpr int kFewTiles = 8;
// MC x KC floats of A are packed at a time when A needs packing.
constexpr int kMC = 32 * kMR;
// A block of B (KC x NC) stays in L2 (2 MB per core here) while all A tiles of an M block
// sweep it; NC is at least kNCMin columns and grows when KC is short.
constexpr int kNCMin = 256;
constexpr int kBBlockFloats = 128 << 10;
// Work chunks per thread when gemm_hwy splits M or N.
constexpr int kChunksPerThread = 4;
// gemm_hwy packs a shared B in N blocks of at most this many floats.
constexpr size_t kMaxSharedB = size_t(4) << 20;
// Floats of the row-major staging buffer for a C with non-unit column stride.
constexpr size_t kMaxTmpC = size_t(64) << 10;
// gemm_st reads a row-major B in place, without packing, for at most this many rows of A.
constexpr int kDirectBMaxM = 4 * kMR;
// A column-major A is read in place up to this stride along K (floats). At 1024 (4 KB, a
// Dense layer's weight gradient with 1024 outputs) every step of K lands in the same L1 set,
// and repacking made that GEMM about a quarter faster.
constexpr long kMaxDirectColStride = 512;

// Splits K into equal blocks; a PackedB records the split it was packed with.
int kc_for(int K, int N) {
  const int max_kc = (N + kNR - 1) / kNR <= kFewSlivers ? kKCNarrow : kKCMax;
  const int blocks = (K + max_kc - 1) / max_kc;
  return (K + blocks - 1) / blocks;
}

// C tile (MR, NR) (+)= sum over segments of A_s (MR, len) * B_s (len, NR), with
// A_s(i, k) = a[ro[i] + k*aks] and B_s(k, j) = b[k*bks + j]; C(i, j) = c[i*rsc + j].
HWY_INLINE void Kernel(const Segment* segs, int nseg, const long* ro, long aks, long bks,
                       float* HWY_RESTRICT c, long rsc, bool accumulate,
                       const float* bias = nullptr, bool relu = false) {
  const D d;
  V c00 = hn::Zero(d), c01 = hn::Zero(d), c10 = hn::Zero(d), c11 = hn::Zero(d);
  V c20 = hn::Zero(d), c21 = hn::Zero(d), c30 = hn::Zero(d), c31 = hn::Zero(d);
  V c40 = hn::Zero(d), c41 = hn::Zero(d), c50 = hn::Zero(d), c51 = hn::Zero(d);
  for (int sg = 0; sg < nseg; ++sg) {
    const float* HWY_RESTRICT a0 = segs[sg].a + ro[0];
    const float* HWY_RESTRICT a1 = segs[sg].a + ro[1];
    const float* HWY_RESTRICT a2 = segs[sg].a + ro[2];
    const float* HWY_RESTRICT a3 = segs[sg].a + ro[3];
    const float* HWY_RESTRICT a4 = segs[sg].a + ro[4];
    const float* HWY_RESTRICT a5 = segs[sg].a + ro[5];
    const float* HWY_RESTRICT b = segs[sg].b;
    const long len = segs[sg].len;
    long o = 0;
#pragma GCC unroll 4
    for (long k = 0; k < len; ++k) {
      const V b0 = hn::LoadU(d, b);
      const V b1 = hn::LoadU(d, b + kL);
      b += bks;
      V av = hn::Set(d, a0[o]);
      c00 = hn::MulAdd(av, b0, c00);
      c01 = hn::MulAdd(av, b1, c01);
      av = hn::Set(d, a1[o]);
      c10 = hn::MulAdd(av, b0, c10);
      c11 = hn::MulAdd(av, b1, c11);
      av = hn::Set(d, a2[o]);
      c20 = hn::MulAdd(av, b0, c20);
      c21 = hn::MulAdd(av, b1, c21);
      av = hn::Set(d, a3[o]);
      c30 = hn::MulAdd(av, b0, c30);
      c31 = hn::MulAdd(av, b1, c31);
      av = hn::Set(d, a4[o]);
      c40 = hn::MulAdd(av, b0, c40);
      c41 = hn::MulAdd(av, b1, c41);
      av = hn::Set(d, a5[o]);
      c50 = hn::MulAdd(av, b0, c50);
      c51 = hn::MulAdd(av, b1, c51);
      o += aks;
    }
  }
  const V bias0 = bias ? hn::LoadU(d, bias) : hn::Zero(d);
  const V bias1 = bias ? hn::LoadU(d, bias + kL) : hn::Zero(d);
  const auto put = [&](float* p, V v0, V v1) {
    if (accumulate) {
      v0 = hn::Add(v0, hn::LoadU(d, p));
      v1 = hn::Add(v1, hn::LoadU(d, p + kL));
    }
    if (bias) {
      v0 = hn::Add(v0, bias0);
      v1 = hn::Add(v1, bias1);
    }
    if (relu) {
      v0 = hn::Max(v0, hn::Zero(d));
      v1 = hn::Max(v1, hn::Zero(d));
    }
    hn::StoreU(v0, d, p);
    hn::StoreU(v1, d, p + kL);
  };
  put(c, c00, c01);
  put(c + rsc, c10, c11);
  put(c + 2 * rsc, c20, c21);
  put(c + 3 * rsc, c30, c31);
  put(c + 4 * rsc, c40, c41);
  put(c + 5 * rsc, c50, c51);
}

// Packs A rows [0, m) x cols [0, kb) (m <= MR) into an MR-row tile dst[k*MR + i], zero rows
// past m, so the micro-kernel reads it with ais = 1, aks = MR.
void PackATile(int m, int kb, const float* A, long rsa, long csa, float* HWY_RESTRICT dst) {
  if (m < kMR) std::memset(dst, 0, sizeof(float) * kMR * kb);
  if (rsa == 1) {
    for (int k = 0; k < kb; ++k) {
      const float* src = A + k * csa;
      for (int i = 0; i < m; ++i) dst[k * kMR + i] = src[i];
    }
  } else {
    for (int i = 0; i < m; ++i) {
      const float* src = A + i * rsa;
      if (csa == 1) {
        for (int k = 0; k < kb; ++k) dst[k * kMR + i] = src[k];
      } else {
        for (int k = 0; k < kb; ++k) dst[k * kMR + i] = src[k * csa];
      }
    }
  }
}

// Packs B rows [0, kb) x cols [0, nb) (nb <= NR) into dst[k*NR + j], zero columns past nb.
void PackBSliver(int kb, int nb, const float* B, long rsb, long csb, float* HWY_RESTRICT dst) {
  const D d;
  if (csb == 1 && nb == kNR) {
    for (int k = 0; k < kb; ++k) {
      const float* src = B + k * rsb;
      hn::StoreU(hn::LoadU(d, src), d, dst + k * kNR);
      hn::StoreU(hn::LoadU(d, src + kL), d, dst + k * kNR + kL);
    }
    return;
  }
  if (nb < kNR) std::memset(dst, 0, sizeof(float) * kNR * kb);
  if (csb == 1) {
    for (int k = 0; k < kb; ++k) {
      const float* src = B + k * rsb;
      for (int j = 0; j < nb; ++j) dst[k * kNR + j] = src[j];
    }
  } else if (rsb == 1) {
    // Columns are contiguous: read each one in order, write with stride NR (all in L1).
    for (int j = 0; j < nb; ++j) {
      const float* src = B + j * csb;
      for (int k = 0; k < kb; ++k) dst[k * kNR + j] = src[k];
    }
  } else {
    for (int k = 0; k < kb; ++k)
      for (int j = 0; j < nb; ++j) dst[k * kNR + j] = B[k * rsb + j * csb];
  }
}

// Packs B rows [0, kb) of the columns [0, nb) into consecutive slivers dst + t*kb*NR, zeroing
// the columns past nb in the last one. Rows are read in order, which keeps the hardware
// prefetcher streaming when B is row-major and wide.
void PackBBlock(int kb, int nb, const float* B, long rsb, long csb, float* HWY_RESTRICT dst) {
  const int full = nb / kNR;
  const int rest = nb - full * kNR;
  if (csb != 1) {
    for (int t = 0; t * kNR < nb; ++t)
      PackBSliver(kb, std::min(kNR, nb - t * kNR), B + t * kNR * csb, rsb, csb,
                  dst + static_cast<size_t>(t) * kb * kNR);
    return;
  }
  const D d;
  float* edge = dst + static_cast<size_t>(full) * kb * kNR;
  if (rest) std::memset(edge, 0, sizeof(float) * kNR * kb);
  // A few rows at a time, sliver by sliver: the rows stream in order, and each sliver gets a
  // run of consecutive cache lines instead of one line per row at a large, aliasing stride.
  constexpr int kRows = 8;
  for (int k0 = 0; k0 < kb; k0 += kRows) {
    const int k1 = std::min(kb, k0 + kRows);
    // Rows of a wide B are often far apart in memory; ask for a later group of rows early.
    if (kPrefetchRows > 0) {
      for (int k = k0 + kPrefetchRows; k < std::min(kb, k1 + kPrefetchRows); ++k)
        for (int j = 0; j < nb; j += 64 / static_cast<int>(sizeof(float)))
          hwy::Prefetch(B + k * rsb + j);
    }
    for (int t = 0; t < full; ++t) {
      const float* src = B + k0 * rsb + t * kNR;
      float* o = dst + (static_cast<size_t>(t) * kb + k0) * kNR;
      for (int k = k0; k < k1; ++k, src += rsb, o += kNR) {
        hn::StoreU(hn::LoadU(d, src), d, o);
        hn::StoreU(hn::LoadU(d, src + kL), d, o + kL);
      }
    }
    for (int k = k0; k < k1; ++k)
      for (int j = 0; j < rest; ++j) edge[k * kNR + j] = B[k * rsb + full * kNR + j];
  }
}

// Merges an (MR, NR) tile computed into tmp into the m x n corner of C (general strides).
void StoreTile(const float* tmp, int m, int n, float* C, long rsc, long csc, bool accumulate) {
  for (int i = 0; i < m; ++i) {
    float* crow = C + i * rsc;
    const float* t = tmp + i * kNR;
    if (accumulate) {
      for (int j = 0; j < n; ++j) crow[j * csc] += t[j];
    } else {
      for (int j = 0; j < n; ++j) crow[j * csc] = t[j];
    }
  }
}

// Kernel, with partial tiles and strided C going through tmp (MR x NR floats).
HWY_INLINE void KernelTile(const Segment* segs, int nseg, const long* ro, long aks, long bks,
                           float* c, long rsc, long csc, int m, int n, bool accumulate,
                           float* tmp) {
  if (m == kMR && n == kNR && csc == 1) {
    Kernel(segs, nseg, ro, aks, bks, c, rsc, accumulate);
  } else {
    Kernel(segs, nseg, ro, aks, bks, tmp, kNR, false);
    StoreTile(tmp, m, n, c, rsc, csc, accumulate);
  }
}

// Where the micro-kernel finds B.
enum class BMode {
  kPacked,       // a PackedB prepared by the caller
  kDirect,       // B (K, N) in place; needs csb == 1
  kPackBlocks,   // B (K, N) packed block by block into the thread's scratch
};
struct BSource {
  BMode mode;
  const float* p;
  long rsb = 0, csb = 0;  // kDirect, kPackBlocks
  int total_slivers = 0;  // kPacked: slivers per K block
  int s_first = 0;        // kPacked
  int kc = 0;             // kPacked
};

bool ShouldPackA(long rsa, long csa) {
  if (csa == 1) return false;
  // Column-major A is read MR floats at a time along its rows; a long stride along K touches
  // a new cache line and often a new page every step, so repacking wins.
  if (rsa == 1) return csa > kMaxDirectColStride;
  return true;
}

void Driver(int M, int N, int K, const float* A, long rsa, long csa, const BSource& B, float* C,
            long rsc, long csc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) C[i * rsc + j * csc] = 0.0f;
    return;
  }
  const int kc = B.mode == BMode::kPacked ? B.kc : kc_for(K, N);
  const bool pack_a = ShouldPackA(rsa, csa);
  const int mc = std::min(kMC, (M + kMR - 1) / kMR * kMR);
  const int slivers = (N + kNR - 1) / kNR;
  // A block of B of kc x nc floats stays in L2 while every A tile of the M block sweeps it.
  const int nc_slivers = std::min(slivers, std::max(kNCMin, kBBlockFloats / kc) / kNR);
  // Scratch: A block (mc x kc), edge A tile (MR x kc), C tile (MR x NR).
  float* const a_block =
      scratch(kSlotPackA, static_cast<size_t>(mc + kMR) * kc + static_cast<size_t>(kMR) * kNR);
  float* const a_edge = a_block + static_cast<size_t>(mc) * kc;
  float* const c_tmp = a_edge + static_cast<size_t>(kMR) * kc;
  float* const b_block = B.mode == BMode::kPacked
                             ? nullptr
                             : scratch(kSlotPackB, static_cast<size_t>(kc) * nc_slivers * kNR);
  const long packed_ro[kMR] = {0, 1, 2, 3, 4, 5};
  static_assert(kMR == 6, "Kernel and packed_ro are written for 6 rows");

  for (int s_begin = 0; s_begin < slivers; s_begin += nc_slivers) {
    const int s_end = std::min(slivers, s_begin + nc_slivers);
    const int j_begin = s_begin * kNR;
    const int nb_block = std::min(N, s_end * kNR) - j_begin;
    for (int k0 = 0; k0 < K; k0 += kc) {
      const int kb = std::min(kc, K - k0);
      const bool acc = accumulate || k0 > 0;
      if (B.mode == BMode::kPackBlocks) {
        PackBBlock(kb, nb_block, B.p + k0 * B.rsb + j_begin * B.csb, B.rsb, B.csb, b_block);
      } else if (B.mode == BMode::kDirect && nb_block % kNR != 0) {
        const int j_edge = j_begin + nb_block / kNR * kNR;
        PackBSliver(kb, N - j_edge, B.p + k0 * B.rsb + j_edge, B.rsb, 1, b_block);
      }
      for (int i0 = 0; i0 < M; i0 += mc) {
        const int mb = std::min(mc, M - i0);
        const int tiles = (mb + kMR - 1) / kMR;
        const int last_m = mb - (tiles - 1) * kMR;
        const float* a_src = A + i0 * rsa + k0 * csa;
        if (pack_a) {
          for (int t = 0; t < tiles; ++t)
            PackATile(std::min(kMR, mb - t * kMR), kb, a_src + t * kMR * rsa, rsa, csa,
                      a_block + static_cast<size_t>(t) * kMR * kb);
        } else if (last_m < kMR) {
          PackATile(last_m, kb, a_src + (tiles - 1) * kMR * rsa, rsa, csa, a_edge);
        }
        const long direct_ro[kMR] = {0, rsa, 2 * rsa, 3 * rsa, 4 * rsa, 5 * rsa};
        // A tile t: its rows, row offsets and K stride.
        const auto a_tile = [&](int t, Segment& seg, const long*& ro, long& aks) {
          const int m = t + 1 < tiles ? kMR : last_m;
          if (pack_a) {
            seg.a = a_block + static_cast<size_t>(t) * kMR * kb;
            ro = packed_ro;
            aks = kMR;
          } else if (m < kMR) {
            seg.a = a_edge;
            ro = packed_ro;
            aks = kMR;
          } else {
            seg.a = a_src + t * kMR * rsa;
            ro = direct_ro;
            aks = csa;
          }
          return m;
        };
        // B sliver s: its rows and row stride.
        const auto b_sliver = [&](int s, Segment& seg) -> long {
          switch (B.mode) {
            case BMode::kPacked:
              seg.b = B.p + static_cast<size_t>(k0) * B.total_slivers * kNR +
                      static_cast<size_t>(B.s_first + s) * kb * kNR;
              return kNR;
            case BMode::kPackBlocks:
              seg.b = b_block + static_cast<size_t>(s - s_begin) * kb * kNR;
              return kNR;
            case BMode::kDirect:
              if ((s + 1) * kNR <= N) {
                seg.b = B.p + k0 * B.rsb + s * kNR;
                return B.rsb;
              }
              seg.b = b_block;
              return kNR;
          }
          return kNR;
        };
        Segment seg{nullptr, nullptr, kb};
        const long* ro = packed_ro;
        long aks = kMR;
        if (tiles <= kFewTiles) {
          // Few A tiles: they all stay in L1, so keep each B sliver there across them.
          for (int s = s_begin; s < s_end; ++s) {
            const int j0 = s * kNR;
            const int nb = std::min(kNR, N - j0);
            const long bks = b_sliver(s, seg);
            for (int t = 0; t < tiles; ++t) {
              const int m = a_tile(t, seg, ro, aks);
              KernelTile(&seg, 1, ro, aks, bks, C + (i0 + t * kMR) * rsc + j0 * csc, rsc, csc, m,
                         nb, acc, c_tmp);
            }
          }
        } else {
          // Many A tiles: keep one in L1 while the B block streams from L2; C is then written
          // row tile by row tile, in long runs.
          for (int t = 0; t < tiles; ++t) {
            const int m = a_tile(t, seg, ro, aks);
            float* c_row = C + (i0 + t * kMR) * rsc;
            for (int s = s_begin; s < s_end; ++s) {
              const int j0 = s * kNR;
              const long bks = b_sliver(s, seg);
              KernelTile(&seg, 1, ro, aks, bks, c_row + j0 * csc, rsc, csc, m,
                         std::min(kNR, N - j0), acc, c_tmp);
            }
          }
        }
      }
    }
  }
}

// Driver with C staged row-major when its column stride is not 1, so the micro-kernel always
// stores whole vectors and C is written once, not once per K block.
void DriverC(int M, int N, int K, const float* A, long rsa, long csa, const BSource& B, float* C,
             long rsc, long csc, bool accumulate) {
  if (csc == 1 || M <= 0 || N <= 0 || K <= 0) {
    Driver(M, N, K, A, rsa, csa, B, C, rsc, csc, accumulate);
    return;
  }
  const int rows = std::max(kMR, static_cast<int>(kMaxTmpC / static_cast<size_t>(N)) / kMR * kMR);
  float* tmp = scratch(kSlotTmpC, static_cast<size_t>(std::min(rows, M)) * N);
  for (int i0 = 0; i0 < M; i0 += rows) {
    const int mb = std::min(rows, M - i0);
    Driver(mb, N, K, A + i0 * rsa, rsa, csa, B, tmp, N, 1, false);
    for (int j = 0; j < N; ++j) {
      float* c = C + i0 * rsc + j * csc;
      const float* t = tmp + j;
      if (accumulate) {
        for (int i = 0; i < mb; ++i) c[i * rsc] += t[i * N];
      } else {
        for (int i = 0; i < mb; ++i) c[i * rsc] = t[i * N];
      }
    }
  }
}

struct Buffer {
  float* p = nullptr;
  size_t n = 0;
  ~Buffer() { std::free(p); }
};

}  // namespace

int tile_m() { return kMR; }
int tile_n() { return kNR; }
int default_kc(int K, int N) { return kc_for(K, N); }

float* scratch(Slot slot, size_t floats) {
  thread_local Buffer buffers[kSlotCount];
  Buffer& b = buffers[slot];
  if (floats > b.n) {
    std::free(b.p);
    b.p = nullptr;
    b.n = 0;
    const size_t bytes = (std::max<size_t>(floats, 16) * sizeof(float) + 63) / 64 * 64;
    b.p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.p) throw std::bad_alloc();
    b.n = bytes / sizeof(float);
  }
  return b.p;
}

size_t packed_b_floats(int K, int N) {
  return static_cast<size_t>(std::max(K, 1)) * b_slivers(std::max(N, 1)) * kNR;
}

void pack_b(int K, int N, int kc, const float* B, long rsb, long csb, float* dst, int s_begin,
            int s_end) {
  if (K <= 0 || N <= 0) return;
  const int slivers = b_slivers(N);
  for (int k0 = 0; k0 < K; k0 += kc) {
    const int kb = std::min(kc, K - k0);
    float* block = dst + static_cast<size_t>(k0) * slivers * kNR;
    for (int s = s_begin; s < s_end; ++s) {
      const int j0 = s * kNR;
      PackBSliver(kb, std::min(kNR, N - j0), B + k0 * rsb + j0 * csb, rsb, csb,
                  block + static_cast<size_t>(s) * kb * kNR);
    }
  }
}

void gemm_st(int M, int N, int K, const float* A, long rsa, long csa, const PackedB& B, float* C,
             long rsc, long csc, bool accumulate) {
  BSource src{BMode::kPacked, B.data};
  src.total_slivers = b_slivers(B.N);
  src.s_first = B.s_first;
  src.kc = B.kc;
  DriverC(M, N, K, A, rsa, csa, src, C, rsc, csc, accumulate);
}

void gemm_st(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
             long csb, float* C, long rsc, long csc, bool accumulate) {
  // B is used in place when its rows are contiguous and so few A tiles re-read each sliver
  // that packing would cost more than it saves.
  const bool direct = csb == 1 && M <= kDirectBMaxM;
  BSource src{direct ? BMode::kDirect : BMode::kPackBlocks, B};
  src.rsb = rsb;
  src.csb = csb;
  DriverC(M, N, K, A, rsa, csa, src, C, rsc, csc, accumulate);
}

void kernel(const Segment* segs, int nseg, const long* ro, long aks, long bks, float* c, long rsc,
            int m, int n, bool accumulate, const float* bias, bool relu) {
  if (m == kMR && n == kNR) {
    Kernel(segs, nseg, ro, aks, bks, c, rsc, accumulate, bias, relu);
    return;
  }
  HWY_ALIGN float tmp[kMR * kNR];
  Kernel(segs, nseg, ro, aks, bks, tmp, kNR, false);
  for (int i = 0; i < m; ++i) {
    float* crow = c + i * rsc;
    const float* t = tmp + i * kNR;
    for (int j = 0; j < n; ++j) {
      float v = t[j] + (accumulate ? crow[j] : 0.0f) + (bias ? bias[j] : 0.0f);
      crow[j] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

}  // namespace gemm

void gemm_hwy(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
              long csb, float* C, long ldc, bool accumulate, const Exec& e) {
  using gemm::kMR;
  using gemm::kNR;
  if (M <= 0 || N <= 0) return;
  long rsc = ldc, csc = 1;
  if (K <= 0) {
    gemm::gemm_st(M, N, K, A, rsa, csa, B, rsb, csb, C, rsc, csc, accumulate);
    return;
  }
  // C = A B or, equivalently, C^T = B^T A^T. Estimate both in cycles: FMA work including tile
  // padding, packing B (a transposed B costs more), repacking A, and staging a transposed C.
  const auto cost = [](int m, int n, int k, long ra, long ca, long cb, long cc) {
    const double mp = (m + kMR - 1) / kMR * kMR;
    const double np = (n + kNR - 1) / kNR * kNR;
    const double compute = mp * np * k / (2.0 * kL * 2.0);
    const double pack_b = static_cast<double>(k) * n * (cb == 1 ? 0.5 : 2.0);
    const double pack_a = gemm::ShouldPackA(ra, ca) ? 2.0 * m * k : 0.0;
    const double transpose_c = cc == 1 ? 0.0 : static_cast<double>(m) * n;
    return compute + pack_b + pack_a + transpose_c;
  };
  if (cost(N, M, K, csb, rsb, rsa, ldc) < cost(M, N, K, rsa, csa, csb, 1)) {
    std::swap(M, N);
    std::swap(A, B);
    const long nrsa = csb, ncsa = rsb, nrsb = csa, ncsb = rsa;
    rsa = nrsa;
    csa = ncsa;
    rsb = nrsb;
    csb = ncsb;
    std::swap(rsc, csc);
  }
  ThreadPool* pool = e.pool;
  int threads = pool ? pool->threads() : 1;
  if (2.0 * M * N * K < kMinParallelFlops) threads = 1;
  const int mt = (M + kMR - 1) / kMR;
  const int slivers = gemm::b_slivers(N);
  if (threads <= 1 || (mt < 2 && slivers < 2)) {
    gemm::gemm_st(M, N, K, A, rsa, csa, B, rsb, csb, C, rsc, csc, accumulate);
    return;
  }
  // Splitting N makes every thread read all of A; splitting M makes every thread need all of
  // B. Split the dimension whose shared operand is the smaller one, if it has enough tiles.
  const bool split_n = slivers >= threads && (M <= N || mt < threads);
  // A few chunks per thread, handed out dynamically: a thread that loses its core for a while
  // (other processes, a busy browser tab) does not hold up the whole product.
  const auto chunked = [&](int units, const std::function<void(int, int)>& fn) {
    const int chunks = std::min(units, gemm::kChunksPerThread * threads);
    pool->run_tasks(chunks, [&](size_t c) {
      fn(static_cast<int>(static_cast<long>(units) * c / chunks),
         static_cast<int>(static_cast<long>(units) * (c + 1) / chunks));
    });
  };
  if (split_n) {
    chunked(slivers, [&](int s0, int s1) {
      const int j0 = s0 * kNR;
      const int j1 = std::min(N, s1 * kNR);
      gemm::gemm_st(M, j1 - j0, K, A, rsa, csa, B + j0 * csb, rsb, csb, C + j0 * csc, rsc, csc,
                    accumulate);
    });
    return;
  }
  // Split M: B is packed once, cooperatively, in column blocks that bound the shared buffer.
  const int kc = gemm::kc_for(K, N);
  const int nc_max =
      std::max(kNR, static_cast<int>(gemm::kMaxSharedB / static_cast<size_t>(K)) / kNR * kNR);
  for (int j0 = 0; j0 < N; j0 += nc_max) {
    const int nc = std::min(nc_max, N - j0);
    const int nc_slivers = gemm::b_slivers(nc);
    float* bp = gemm::scratch(gemm::kSlotSharedB, gemm::packed_b_floats(K, nc));
    const float* bsrc = B + j0 * csb;
    if (static_cast<double>(K) * nc >= kMinParallelPackFloats) {
      pool->run(nc_slivers, 1, [&](size_t b, size_t end) {
        gemm::pack_b(K, nc, kc, bsrc, rsb, csb, bp, static_cast<int>(b), static_cast<int>(end));
      });
    } else {
      gemm::pack_b(K, nc, kc, bsrc, rsb, csb, bp, 0, nc_slivers);
    }
    float* cblock = C + j0 * csc;
    chunked(mt, [&](int t0, int t1) {
      const int i0 = t0 * kMR;
      const int i1 = std::min(M, t1 * kMR);
      const gemm::PackedB pb{bp, K, nc, kc, 0};
      gemm::gemm_st(i1 - i0, nc, K, A + i0 * rsa, rsa, csa, pb, cblock + i0 * rsc, rsc, csc,
                    accumulate);
    });
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();
