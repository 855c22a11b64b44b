// Winograd F(4x4, 3x3) forward convolution (Lavin and Gray, "Fast Algorithms for Convolutional
// Neural Networks"). Each 4x4 block of output pixels, a tile, comes from the 6x6 input patch d
// under it as
//   Y = A^T [ sum over c of (G g G^T) (.) (B^T d B) ] A
// (g the 3x3 kernel of one input/output channel pair, (.) elementwise), which turns the 144
// multiply-adds per tile and channel pair of a direct convolution into 36. Summed over the
// input channels, the elementwise products are 36 independent GEMMs, one per position xi of the
// 6x6 transformed tile:
//   M_xi (tiles, K) = V_xi (tiles, C) * U_xi (C, K),
// run on the micro-kernel of gemm_hwy.cpp. The transforms are a few additions and small
// multiples per value, cheap next to the GEMMs once C and K span a few vectors.
//
// A pool task owns a run of consecutive tiles (across tile rows and images, so that small
// batches still split evenly). It transforms their input patches into V (36 planes of
// (tiles, C)), then for each NR-wide sliver of output channels runs the micro-kernel over all
// 36 planes into M (36 planes of (tiles, NR), small enough to stay in cache) and transforms M
// back into output pixels, bias and ReLU fused into the store.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "winograd_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include "hwy_setup.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm_hwy.h"
#include "parallel_thresholds.h"
#include "thread_pool.h"
#include "winograd_hwy.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {
namespace wino {

namespace {

constexpr int kM = kern::wino::kTile;  // output pixels per tile side
constexpr int kA = kM + 2;              // input pixels per patch side
constexpr int kXi = kA * kA;            // positions of a transformed tile

// Floats of V per task: V and M stay in L2 next to the transformed weights.
constexpr size_t kTaskVFloats = size_t(128) << 10;
// Tiles per task at most; enough MR-row groups to amortise one task's setup.
constexpr int kMaxTaskTiles = 120;
// Tasks per thread when the batch is small, so that threads that lose their core for a while
// do not hold up the others.
constexpr int kTasksPerThread = 4;

int CeilDiv(long a, long b) { return static_cast<int>((a + b - 1) / b); }

// The 1-D input transform B^T e of one column e[0..5] of vectors, into t[0..5]:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
HWY_INLINE void InputTransform1D(const V* e, V* t) {
  const D d;
  const V four = hn::Set(d, 4.0f), five = hn::Set(d, 5.0f), two = hn::Set(d, 2.0f);
  const V s34 = hn::Add(e[3], e[4]), d43 = hn::Sub(e[4], e[3]);
  const V s12 = hn::Add(e[1], e[2]), d12 = hn::Sub(e[1], e[2]);
  const V d42 = hn::Sub(e[4], e[2]), d31 = hn::Sub(e[3], e[1]);
  t[0] = hn::Add(hn::NegMulAdd(five, e[2], hn::Mul(four, e[0])), e[4]);
  t[1] = hn::NegMulAdd(four, s12, s34);
  t[2] = hn::MulAdd(four, d12, d43);
  t[3] = hn::MulAdd(two, d31, d42);
  t[4] = hn::NegMulAdd(two, d31, d42);
  t[5] = hn::Add(hn::NegMulAdd(five, e[3], hn::Mul(four, e[1])), e[5]);
}

// B^T d B for the 6x6 patch d whose pixel (r, c) holds a vector of channels at
// base + r*rs + c*cs, stored as plane xi = 6*i + j at out + xi*plane: first each row of d
// (d B), then each column of the result.
HWY_INLINE void InputTransform(const float* HWY_RESTRICT base, size_t rs, size_t cs,
                               float* HWY_RESTRICT out, size_t plane) {
  const D d;
  HWY_ALIGN float db[kXi * kL];  // d B, (6, 6) vectors
  for (int r = 0; r < kA; ++r) {
    V e[kA], t[kA];
    for (int c = 0; c < kA; ++c) e[c] = hn::LoadU(d, base + r * rs + c * cs);
    InputTransform1D(e, t);
    for (int j = 0; j < kA; ++j) hn::Store(t[j], d, db + (r * kA + j) * kL);
  }
  for (int j = 0; j < kA; ++j) {
    V e[kA], t[kA];
    for (int r = 0; r < kA; ++r) e[r] = hn::Load(d, db + (r * kA + j) * kL);
    InputTransform1D(e, t);
    for (int i = 0; i < kA; ++i) hn::StoreU(t[i], d, out + (i * kA + j) * plane);
  }
}

// How a convolution is cut into tiles and tasks.
struct Plan {
  int TH, TW;   // tiles per image, down and across
  long tiles;   // in the whole batch
  int Cp;       // C rounded up to whole vectors: the row stride of V
  int S;        // NR-wide slivers of output channels
  int task;     // tiles per task, a multiple of MR
  long tile_runs;   // runs of `task` tiles
  int parts;        // groups of slivers each run is split into: more tasks than runs alone give
  long tasks;       // tile_runs * parts
  int Wp;       // columns of a zero-padded input row: what the tiles of a row read
  size_t row_floats() const { return static_cast<size_t>(Wp) * Cp; }
  Plan(const ConvDims& d, int threads) {
    const int mr = gemm::tile_m();
    TH = CeilDiv(d.OH, kM);
    TW = CeilDiv(d.OW, kM);
    Wp = kM * TW + 2;
    tiles = static_cast<long>(d.N) * TH * TW;
    Cp = CeilDiv(d.C, kL) * kL;
    S = gemm::b_slivers(d.K);
    int t = static_cast<int>(kTaskVFloats / (static_cast<size_t>(kXi) * Cp));
    t = std::min(t, kMaxTaskTiles);
    if (threads > 1) t = std::min(t, CeilDiv(tiles, static_cast<long>(kTasksPerThread) * threads));
    task = std::max(2 * mr, t / mr * mr);
    tile_runs = (tiles + task - 1) / task;
    // Few tiles (a small picture at batch 1) would leave threads idle: split the output
    // channels too, at the price of transforming a run's input once per part.
    parts = 1;
    const long want = static_cast<long>(kTasksPerThread) * threads;
    if (threads > 1 && tile_runs < want) parts = static_cast<int>(std::min<long>(S, CeilDiv(want, tile_runs)));
    tasks = tile_runs * parts;
  }
};

// Scratch of one task, carved from the thread's kSlotCol buffer.
struct TaskBuffers {
  float* v;     // kXi planes of (task, Cp)
  float* m;     // kXi planes of (task rounded up to MR, NR)
  float* rows;  // the kA zero-padded input rows under one tile row: (kA, Wp, Cp)
  size_t v_plane, m_plane;
  TaskBuffers(const Plan& p) {
    const int mr = gemm::tile_m(), nr = gemm::tile_n();
    const int groups = CeilDiv(p.task, mr);
    v_plane = static_cast<size_t>(p.task) * p.Cp;
    m_plane = static_cast<size_t>(groups) * mr * nr;
    const size_t floats = kXi * (v_plane + m_plane) + kA * p.row_floats();
    v = gemm::scratch(gemm::kSlotCol, floats);
    m = v + kXi * v_plane;
    rows = m + kXi * m_plane;
  }
};

// Tile t of the batch (tiles in row-major order over images, tile rows and tile columns).
struct Tile {
  int n, th, tw;
  Tile(const Plan& p, long t) {
    const long per_image = static_cast<long>(p.TH) * p.TW;
    n = static_cast<int>(t / per_image);
    const int r = static_cast<int>(t % per_image);
    th = r / p.TW;
    tw = r % p.TW;
  }
  void next(const Plan& p) {
    if (++tw == p.TW) {
      tw = 0;
      if (++th == p.TH) {
        th = 0;
        ++n;
      }
    }
  }
};

// rows (kA, Wp, Cp) = input rows [kM*th - PT, kM*th - PT + kA) of image n, zero-padded: column j
// holds input column j - PL, channels past C are zero.
void PadTileRow(const ConvDims& d, const Plan& p, const float* x, int n, int th, float* rows) {
  const size_t cp = p.Cp;
  const int left = std::min(d.PL, p.Wp);
  const int body = std::max(0, std::min(d.W, p.Wp - d.PL));
  for (int r = 0; r < kA; ++r) {
    float* row = rows + r * p.row_floats();
    const int ih = kM * th - d.PT + r;
    if (ih < 0 || ih >= d.H) {
      std::fill(row, row + p.row_floats(), 0.0f);
      continue;
    }
    const float* src = x + (static_cast<size_t>(n) * d.H + ih) * d.W * d.C;
    std::fill(row, row + left * cp, 0.0f);
    float* dst = row + left * cp;
    if (cp == static_cast<size_t>(d.C)) {
      std::memcpy(dst, src, sizeof(float) * body * cp);
    } else {
      for (int iw = 0; iw < body; ++iw) {
        std::memcpy(dst + iw * cp, src + static_cast<size_t>(iw) * d.C, sizeof(float) * d.C);
        std::fill(dst + iw * cp + d.C, dst + (iw + 1) * cp, 0.0f);
      }
    }
    std::fill(dst + body * cp, row + p.row_floats(), 0.0f);
  }
}

// V's rows [0, count) = the transformed input patches of tiles [t0, t0 + count), one tile row
// at a time through the padded rows under it.
void TransformInput(const ConvDims& d, const Plan& p, const float* x, long t0, int count,
                    float* rows, float* v, size_t v_plane) {
  const size_t cp = p.Cp;
  for (int i = 0; i < count;) {
    const Tile tile(p, t0 + i);
    const int run = std::min(count - i, p.TW - tile.tw);
    PadTileRow(d, p, x, tile.n, tile.th, rows);
    for (int j = 0; j < run; ++j) {
      const float* base = rows + kM * static_cast<size_t>(tile.tw + j) * cp;
      float* out = v + static_cast<size_t>(i + j) * cp;
      for (size_t c = 0; c < cp; c += kL)
        InputTransform(base + c, p.row_floats(), cp, out + c, v_plane);
    }
    i += run;
  }
}

// The 1-D output transform A^T m of one column m[0..5] of vectors, into y[0..3]:
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
HWY_INLINE void OutputTransform1D(const V* m, V* y) {
  const D d;
  const V s12 = hn::Add(m[1], m[2]), d12 = hn::Sub(m[1], m[2]);
  const V s34 = hn::Add(m[3], m[4]), d34 = hn::Sub(m[3], m[4]);
  y[0] = hn::Add(hn::Add(m[0], s12), s34);
  y[1] = hn::MulAdd(hn::Set(d, 2.0f), d34, d12);
  y[2] = hn::MulAdd(hn::Set(d, 4.0f), s34, s12);
  y[3] = hn::Add(hn::MulAdd(hn::Set(d, 8.0f), d34, d12), m[5]);
}

// Output pixels of the tiles [t0, t0 + count) for output channels [k0, k0 + NR) from M:
// Y = A^T M A + bias, then the activation; pixels past the output's edge are not stored.
void TransformOutput(const ConvDims& d, const Plan& p, long t0, int count, int k0,
                     const float* bias, bool relu, const TaskBuffers& b,
                     float* y) {
  const D dd;
  const int nr = gemm::tile_n();
  const V zero = hn::Zero(dd);
  HWY_ALIGN float part[kL];
  HWY_ALIGN float am[kM * kA * kL];  // A^T M, (4, 6) vectors
  Tile tile(p, t0);
  for (int i = 0; i < count; ++i, tile.next(p)) {
    const int oh0 = kM * tile.th, ow0 = kM * tile.tw;
    const int rows = std::min(kM, d.OH - oh0), cols = std::min(kM, d.OW - ow0);
    float* dst = y + ((static_cast<size_t>(tile.n) * d.OH + oh0) * d.OW + ow0) * d.K;
    const size_t down = static_cast<size_t>(d.OW) * d.K;
    for (int h = 0; h < nr; h += kL) {
      const int k = k0 + h;
      if (k >= d.K) break;
      const float* src = b.m + static_cast<size_t>(i) * nr + h;
      for (int c = 0; c < kA; ++c) {
        V m[kA], t[kM];
        for (int r = 0; r < kA; ++r) m[r] = hn::LoadU(dd, src + (r * kA + c) * b.m_plane);
        OutputTransform1D(m, t);
        for (int r = 0; r < kM; ++r) hn::Store(t[r], dd, am + (r * kA + c) * kL);
      }
      const V bv = hn::LoadU(dd, bias + k);
      const int n = std::min(kL, d.K - k);
      for (int r = 0; r < rows; ++r) {
        V m[kA], out[kM];
        for (int c = 0; c < kA; ++c) m[c] = hn::Load(dd, am + (r * kA + c) * kL);
        OutputTransform1D(m, out);
        for (int q = 0; q < cols; ++q) {
          V o = hn::Add(out[q], bv);
          if (relu) o = hn::Max(o, zero);
          float* at = dst + r * down + static_cast<size_t>(q) * d.K + k;
          if (n == kL) {
            hn::StoreU(o, dd, at);
          } else {
            hn::Store(o, dd, part);
            for (int j = 0; j < n; ++j) at[j] = part[j];
          }
        }
      }
    }
  }
}


// The filter gradient of the same convolution, F(3x3, 4x4) (Lavin and Gray, section 4): each
// 4x4 tile of dy, e, meets the 6x6 input patch d under it as
//   dW += G^T [ (A e A^T) (.) (B^T d B) ] G,
// the transposed algorithm, with the same three matrices; summed over tiles before the last
// transform, so the products are again 36 GEMMs, now with the tiles as the summed dimension:
//   M_xi (C, K) += V_xi^T (C, tiles) * E_xi (tiles, K).

// Floats of V and E of one filter-gradient task, which stay in L2 while the 36 GEMMs use them.
constexpr size_t kFilterTaskFloats = size_t(256) << 10;
// Tiles per filter-gradient task at most.
constexpr int kMaxFilterTaskTiles = 128;
// Partial sums per thread, each over a fixed run of tasks (reproducible, see FilterImplicit).
constexpr int kFilterRunsPerThread = 2;

// The 1-D transform A e of one column e[0..3] of dy vectors, into t[0..5] (A is the transpose
// of the output transform A^T above).
HWY_INLINE void GradTransform1D(const V* e, V* t) {
  const D d;
  const V s02 = hn::Add(e[0], e[2]), s13 = hn::Add(e[1], e[3]);
  const V u = hn::MulAdd(hn::Set(d, 4.0f), e[2], e[0]);
  const V w = hn::Mul(hn::Set(d, 2.0f), hn::MulAdd(hn::Set(d, 4.0f), e[3], e[1]));
  t[0] = e[0];
  t[1] = hn::Add(s02, s13);
  t[2] = hn::Sub(s02, s13);
  t[3] = hn::Add(u, w);
  t[4] = hn::Sub(u, w);
  t[5] = e[3];
}

// The 1-D transform G^T m of m[0..5] into w[0..2] (G as in transform_weights).
HWY_INLINE void FilterTransform1D(const V* m, V* w) {
  const D d;
  const V s12 = hn::Add(m[1], m[2]), d12 = hn::Sub(m[1], m[2]);
  const V s34 = hn::Add(m[3], m[4]), d34 = hn::Sub(m[3], m[4]);
  const V sixth = hn::Set(d, 1.0f / 6.0f);
  w[0] = hn::MulAdd(hn::Set(d, 1.0f / 24.0f), s34,
                    hn::NegMulAdd(sixth, s12, hn::Mul(hn::Set(d, 0.25f), m[0])));
  w[1] = hn::MulAdd(hn::Set(d, 1.0f / 12.0f), d34, hn::Mul(hn::Set(d, -1.0f / 6.0f), d12));
  w[2] = hn::Add(hn::Mul(sixth, hn::Sub(s34, s12)), m[5]);
}

// E's rows [0, count) = A e A^T of the dy tiles [t0, t0 + count) (Kp floats per row, zero past
// K and past the output's edge); db (Kp floats) += the dy values read.
void TransformGrad(const ConvDims& d, const Plan& p, const float* dy, long t0, int count, int kp,
                   float* e, size_t e_plane, float* db) {
  const D dd;
  HWY_ALIGN float part[kL];
  HWY_ALIGN float ra[kM * kA * kL];  // each row of e times A^T, (4, 6) vectors
  Tile tile(p, t0);
  for (int i = 0; i < count; ++i, tile.next(p)) {
    const int oh0 = kM * tile.th, ow0 = kM * tile.tw;
    const int rows = std::min(kM, d.OH - oh0), cols = std::min(kM, d.OW - ow0);
    const float* src = dy + ((static_cast<size_t>(tile.n) * d.OH + oh0) * d.OW + ow0) * d.K;
    for (int h = 0; h < kp; h += kL) {
      const int n = std::max(0, std::min(kL, d.K - h));
      V sum = hn::Zero(dd);
      for (int r = 0; r < kM; ++r) {
        V ev[kM], t[kA];
        for (int c = 0; c < kM; ++c) {
          ev[c] = hn::Zero(dd);
          if (r >= rows || c >= cols || n == 0) continue;
          const float* at = src + (static_cast<size_t>(r) * d.OW + c) * d.K + h;
          if (n == kL) {
            ev[c] = hn::LoadU(dd, at);
          } else {
            for (int j = 0; j < kL; ++j) part[j] = j < n ? at[j] : 0.0f;
            ev[c] = hn::Load(dd, part);
          }
          sum = hn::Add(sum, ev[c]);
        }
        GradTransform1D(ev, t);
        for (int j = 0; j < kA; ++j) hn::Store(t[j], dd, ra + (r * kA + j) * kL);
      }
      hn::StoreU(hn::Add(hn::LoadU(dd, db + h), sum), dd, db + h);
      float* out = e + static_cast<size_t>(i) * kp + h;
      for (int j = 0; j < kA; ++j) {
        V ev[kM], t[kA];
        for (int r = 0; r < kM; ++r) ev[r] = hn::Load(dd, ra + (r * kA + j) * kL);
        GradTransform1D(ev, t);
        for (int q = 0; q < kA; ++q) hn::StoreU(t[q], dd, out + (q * kA + j) * e_plane);
      }
    }
  }
}

// acc (kXi planes of (C, Kp), then db (Kp)) += the products of tiles [t0, t0 + count).
void FilterTask(const ConvDims& d, const Plan& p, const float* x, const float* dy, long t0,
                int count, float* acc) {
  const int mr = gemm::tile_m(), nr = gemm::tile_n();
  const int kp = p.S * nr;
  const size_t v_plane = static_cast<size_t>(count) * p.Cp;
  const size_t e_plane = static_cast<size_t>(count) * kp;
  const size_t m_plane = static_cast<size_t>(d.C) * kp;
  float* v = gemm::scratch(gemm::kSlotCol, kXi * (v_plane + e_plane) + kA * p.row_floats());
  float* e = v + kXi * v_plane;
  float* rows = e + kXi * e_plane;
  TransformInput(d, p, x, t0, count, rows, v, v_plane);
  TransformGrad(d, p, dy, t0, count, kp, e, e_plane, acc + kXi * m_plane);
  // A = V_xi^T: row c of a tile is channel c0 + c, read down the tiles (stride Cp); rows past
  // C repeat the last channel and are not stored.
  for (int xi = 0; xi < kXi; ++xi) {
    for (int s = 0; s < p.S; ++s) {
      gemm::Segment seg{nullptr, e + xi * e_plane + static_cast<size_t>(s) * nr, count};
      for (int c0 = 0; c0 < d.C; c0 += mr) {
        long ro[8];
        for (int i = 0; i < mr; ++i) ro[i] = std::min(i, d.C - 1 - c0);
        seg.a = v + xi * v_plane + c0;
        float* c = acc + xi * m_plane + static_cast<size_t>(c0) * kp + static_cast<size_t>(s) * nr;
        gemm::kernel(&seg, 1, ro, p.Cp, kp, c, kp, std::min(mr, d.C - c0), nr, true);
      }
    }
  }
}

}  // namespace

size_t weight_floats(int C, int K) {
  return static_cast<size_t>(kXi) * gemm::b_slivers(K) * std::max(C, 1) * gemm::tile_n();
}

void transform_weights(int C, int K, const float* w, float* u, const Exec& e, int threads) {
  // Plane xi, sliver s is a packed B sliver: row c at u + ((xi*S + s)*C + c)*NR holds
  // U_xi(c, s*NR .. s*NR + NR), zero past K. In double, rounded once: the sixths and
  // twenty-fourths of G are not exact in float.
  //   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
  const auto g1d = [](double g0, double g1, double g2, double* t) {
    t[0] = g0 / 4;
    t[1] = -(g0 + g1 + g2) / 6;
    t[2] = -(g0 - g1 + g2) / 6;
    t[3] = g0 / 24 + g1 / 12 + g2 / 6;
    t[4] = g0 / 24 - g1 / 12 + g2 / 6;
    t[5] = g2;
  };
  const int nr = gemm::tile_n();
  const int S = gemm::b_slivers(K);
  const size_t plane = static_cast<size_t>(S) * C * nr;
  const auto slivers = [&](size_t s0, size_t s1) {
    for (size_t s = s0; s < s1; ++s) {
      for (int c = 0; c < C; ++c) {
        float* dst = u + (s * C + c) * nr;
        for (int j = 0; j < nr; ++j) {
          const int k = static_cast<int>(s) * nr + j;
          if (k >= K) {
            for (int xi = 0; xi < kXi; ++xi) dst[xi * plane + j] = 0.0f;
            continue;
          }
          const float* g = w + static_cast<size_t>(k) * 9 * C + c;  // tap (r, q) at g[(3r+q)*C]
          double gg[3][kA];  // (G g)^T: column q of G g
          for (int q = 0; q < 3; ++q) g1d(g[q * C], g[(3 + q) * C], g[(6 + q) * C], gg[q]);
          for (int r = 0; r < kA; ++r) {  // row r of (G g) G^T
            double t[kA];
            g1d(gg[0][r], gg[1][r], gg[2][r], t);
            for (int q = 0; q < kA; ++q) dst[(kA * r + q) * plane + j] = static_cast<float>(t[q]);
          }
        }
      }
    }
  };
  if (threads > 1 && e.pool && S > 1 && static_cast<double>(C) * K >= kMinParallelWinogradPairs) {
    e.pool->run(S, 1, slivers);
  } else {
    slivers(0, S);
  }
}

void forward(const ConvDims& d, const float* x, const float* u, const float* b, Act act, float* y,
             const Exec& e, int threads) {
  const int mr = gemm::tile_m(), nr = gemm::tile_n();
  const Plan p(d, threads);
  if (p.tiles <= 0 || d.K <= 0) return;
  // The bias padded to whole slivers, so the output transform loads it a vector at a time.
  std::vector<float> bias(static_cast<size_t>(p.S) * nr, 0.0f);
  if (b) std::copy(b, b + d.K, bias.begin());
  const bool relu = act == Act::kRelu;
  const size_t u_plane = static_cast<size_t>(p.S) * d.C * nr;
  const auto task = [&](size_t ti) {
    const long t0 = static_cast<long>(ti / p.parts) * p.task;
    const int part = static_cast<int>(ti % p.parts);
    const int count = static_cast<int>(std::min<long>(p.task, p.tiles - t0));
    const TaskBuffers buf(p);
    TransformInput(d, p, x, t0, count, buf.rows, buf.v, buf.v_plane);
    const int groups = CeilDiv(count, mr);
    // Row offsets of a group of MR (at most 8) tiles in V; in the last group, rows past the
    // task's tiles repeat its last tile, so they read real data and their results go unused.
    long ro[8], ro_last[8];
    const int last = count - (groups - 1) * mr;
    for (int i = 0; i < mr; ++i) {
      ro[i] = static_cast<long>(i) * p.Cp;
      ro_last[i] = static_cast<long>(std::min(i, last - 1)) * p.Cp;
    }
    for (int s = p.S * part / p.parts; s < p.S * (part + 1) / p.parts; ++s) {
      for (int xi = 0; xi < kXi; ++xi) {
        // Each plane's sliver of U stays in L1 while the task's tile groups stream past it.
        gemm::Segment seg{nullptr, u + xi * u_plane + static_cast<size_t>(s) * d.C * nr, d.C};
        const float* v = buf.v + xi * buf.v_plane;
        float* m = buf.m + xi * buf.m_plane;
        for (int g = 0; g < groups; ++g) {
          seg.a = v + static_cast<size_t>(g) * mr * p.Cp;
          gemm::kernel(&seg, 1, g + 1 < groups ? ro : ro_last, 1, nr,
                       m + static_cast<size_t>(g) * mr * nr, nr, mr, nr, false);
        }
      }
      TransformOutput(d, p, t0, count, s * nr, bias.data(), relu, buf, y);
    }
  };
  if (threads > 1 && e.pool && p.tasks > 1) {
    e.pool->run_tasks(p.tasks, task);
  } else {
    for (long t = 0; t < p.tasks; ++t) task(t);
  }
}

void filter(const ConvDims& d, const float* x, const float* dy, float* dw, float* db,
            const Exec& e, int threads) {
  const int nr = gemm::tile_n();
  const Plan p(d, 1);
  if (p.tiles <= 0 || d.K <= 0 || d.C <= 0) return;
  const int kp = p.S * nr;
  int task = static_cast<int>(kFilterTaskFloats / (kXi * static_cast<size_t>(p.Cp + kp)));
  task = std::max(1, std::min(task, kMaxFilterTaskTiles));
  const long tasks = (p.tiles + task - 1) / task;
  const long runs = threads > 1 && e.pool
                        ? std::min<long>(tasks, static_cast<long>(threads) * kFilterRunsPerThread)
                        : 1;
  const size_t m_plane = static_cast<size_t>(d.C) * kp;
  const size_t part_floats = kXi * m_plane + kp;
  float* partials = gemm::scratch(gemm::kSlotPartial, runs * part_floats);
  const auto run = [&](size_t r) {
    float* acc = partials + r * part_floats;
    std::fill(acc, acc + part_floats, 0.0f);
    const long first = tasks * static_cast<long>(r) / runs;
    const long last = tasks * static_cast<long>(r + 1) / runs;
    for (long t = first; t < last; ++t) {
      const long t0 = t * task;
      FilterTask(d, p, x, dy, t0, static_cast<int>(std::min<long>(task, p.tiles - t0)), acc);
    }
  };
  if (runs > 1) {
    e.pool->run_tasks(runs, run);
  } else {
    run(0);
  }
  // dW = G^T M G, M the runs' partials summed in order; dw is (K, 3, 3, C).
  const D dd;
  const auto channels = [&](size_t c0, size_t c1) {
    HWY_ALIGN float part[kL];
    for (size_t c = c0; c < c1; ++c) {
      for (int h = 0; h < d.K; h += kL) {
        V m[kXi], w1[kA * 3];
        for (int xi = 0; xi < kXi; ++xi) {
          const float* at = partials + xi * m_plane + c * kp + h;
          m[xi] = hn::LoadU(dd, at);
          for (long r = 1; r < runs; ++r)
            m[xi] = hn::Add(m[xi], hn::LoadU(dd, at + r * part_floats));
        }
        for (int i = 0; i < kA; ++i) FilterTransform1D(m + i * kA, w1 + i * 3);
        const int n = std::min(kL, d.K - h);
        for (int q = 0; q < 3; ++q) {
          V col[kA], w[3];
          for (int i = 0; i < kA; ++i) col[i] = w1[i * 3 + q];
          FilterTransform1D(col, w);
          for (int r = 0; r < 3; ++r) {
            hn::Store(w[r], dd, part);
            for (int j = 0; j < n; ++j)
              dw[((static_cast<size_t>(h + j) * 3 + r) * 3 + q) * d.C + c] = part[j];
          }
        }
      }
    }
  };
  if (runs > 1) {
    e.pool->run(d.C, 1, channels);
  } else {
    channels(0, d.C);
  }
  if (db) {
    const float* src = partials + kXi * m_plane;
    for (int k = 0; k < d.K; ++k) {
      float v = src[k];
      for (long r = 1; r < runs; ++r) v += src[r * part_floats + k];
      db[k] = v;
    }
  }
}

}  // namespace wino
}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tagnet {
namespace kern {
namespace wino {

namespace {
// Below these channel counts the transforms cost about as much as the multiply-adds saved.
constexpr int kMinC = 16;
constexpr int kMinK = 16;
// Channel pairs of the largest filter gradient run as Winograd: 128 x 128, 36 sums of 2.4 MB
// per partial.
constexpr long kMaxFilterPairs = 128 * 128;
int CeilDiv(long a, long b) { return static_cast<int>((a + b - 1) / b); }
}  // namespace

bool applies(const ConvDims& d) {
  if (d.KH != 3 || d.KW != 3 || d.SH != 1 || d.SW != 1) return false;
  if (d.OH != d.H + d.PT + d.PB - 2 || d.OW != d.W + d.PL + d.PR - 2) return false;
  if (d.C < kMinC || d.K < kMinK || d.OH < 1 || d.OW < 1) return false;
  // 36 multiply-adds per tile against 9 per output pixel; tiles that overhang output sizes
  // that are not multiples of 4 waste some, and the transforms cost the rest of the margin.
  const double tiles = static_cast<double>(CeilDiv(d.OH, kTile)) * CeilDiv(d.OW, kTile);
  return 1.5 * 36.0 * tiles <= 9.0 * d.OH * d.OW;
}

bool filter_applies(const ConvDims& d) {
  return applies(d) && static_cast<long>(d.C) * d.K <= kMaxFilterPairs;
}

}  // namespace wino
}  // namespace kern
}  // namespace tagnet
#endif  // HWY_ONCE
