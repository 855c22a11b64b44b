// Winograd F(2x2, 3x3) forward convolution (Lavin and Gray, "Fast Algorithms for Convolutional
// Neural Networks"). Each 2x2 block of output pixels, a tile, comes from the 4x4 input patch d
// under it as
//   Y = A^T [ sum over c of (G g G^T) (.) (B^T d B) ] A
// (g the 3x3 kernel of one input/output channel pair, (.) elementwise), which turns the 36
// multiply-adds per tile and channel pair of a direct convolution into 16. Summed over the
// input channels, the elementwise products are 16 independent GEMMs, one per position xi of the
// 4x4 transformed tile:
//   M_xi (tiles, K) = V_xi (tiles, C) * U_xi (C, K),
// run on the micro-kernel of gemm_hwy.cpp. The transforms are additions (and halvings for the
// weights), cheap next to the GEMMs once C and K span a few vectors.
//
// A pool task owns a run of consecutive tiles (across tile rows and images, so that small
// batches still split evenly). It transforms their input patches into V (16 planes of
// (tiles, C)), then for each NR-wide sliver of output channels runs the micro-kernel over all
// 16 planes into M (16 planes of (tiles, NR), small enough to stay in cache) and transforms M
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

constexpr int kXi = 16;  // positions of a transformed tile

// Floats of V per task: V and M stay in L2 next to the transformed weights.
constexpr size_t kTaskVFloats = size_t(128) << 10;
// Tiles per task at most; enough MR-row groups to amortise one task's setup.
constexpr int kMaxTaskTiles = 120;
// Tasks per thread when the batch is small, so that threads that lose their core for a while
// do not hold up the others.
constexpr int kTasksPerThread = 4;

int CeilDiv(long a, long b) { return static_cast<int>((a + b - 1) / b); }

// B^T d B for the 4x4 patch d whose pixel (r, c) holds a vector of channels at
// base + r*rs + c*cs, stored as plane xi = 4*r + c at out + xi*plane.
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
// Column by column of d B, each needing two columns of d, so that few vectors are live at a
// time (16 would not fit the registers with the temporaries).
HWY_INLINE void InputTransform(const float* HWY_RESTRICT base, size_t rs, size_t cs,
                               float* HWY_RESTRICT out, size_t plane) {
  const D d;
  const float* r0 = base;
  const float* r1 = base + rs;
  const float* r2 = r1 + rs;
  const float* r3 = r2 + rs;
  // B^T applied down a column e[0..3] of d B, into planes c, 4 + c, 8 + c, 12 + c.
  const auto column = [&](int c, V e0, V e1, V e2, V e3) {
    hn::StoreU(hn::Sub(e0, e2), d, out + c * plane);
    hn::StoreU(hn::Add(e1, e2), d, out + (4 + c) * plane);
    hn::StoreU(hn::Sub(e2, e1), d, out + (8 + c) * plane);
    hn::StoreU(hn::Sub(e1, e3), d, out + (12 + c) * plane);
  };
  const auto ld = [&](const float* row, size_t c) { return hn::LoadU(d, row + c * cs); };
  // (d B)[r][0] = d[r][0] - d[r][2]
  column(0, hn::Sub(ld(r0, 0), ld(r0, 2)), hn::Sub(ld(r1, 0), ld(r1, 2)),
         hn::Sub(ld(r2, 0), ld(r2, 2)), hn::Sub(ld(r3, 0), ld(r3, 2)));
  {
    // (d B)[r][1] = d[r][1] + d[r][2], (d B)[r][2] = d[r][2] - d[r][1]
    const V a0 = ld(r0, 1), b0 = ld(r0, 2), a1 = ld(r1, 1), b1 = ld(r1, 2);
    const V a2 = ld(r2, 1), b2 = ld(r2, 2), a3 = ld(r3, 1), b3 = ld(r3, 2);
    column(1, hn::Add(a0, b0), hn::Add(a1, b1), hn::Add(a2, b2), hn::Add(a3, b3));
    column(2, hn::Sub(b0, a0), hn::Sub(b1, a1), hn::Sub(b2, a2), hn::Sub(b3, a3));
  }
  // (d B)[r][3] = d[r][1] - d[r][3]
  column(3, hn::Sub(ld(r0, 1), ld(r0, 3)), hn::Sub(ld(r1, 1), ld(r1, 3)),
         hn::Sub(ld(r2, 1), ld(r2, 3)), hn::Sub(ld(r3, 1), ld(r3, 3)));
}

// How a convolution is cut into tiles and tasks.
struct Plan {
  int TH, TW;   // tiles per image, down and across
  long tiles;   // in the whole batch
  int Cp;       // C rounded up to whole vectors: the row stride of V
  int S;        // NR-wide slivers of output channels
  int task;     // tiles per task, a multiple of MR
  long tasks;
  int Wp;       // columns of a zero-padded input row: what the tiles of a row read
  size_t row_floats() const { return static_cast<size_t>(Wp) * Cp; }
  Plan(const ConvDims& d, int threads) {
    const int mr = gemm::tile_m();
    TH = CeilDiv(d.OH, 2);
    TW = CeilDiv(d.OW, 2);
    Wp = 2 * TW + 2;
    tiles = static_cast<long>(d.N) * TH * TW;
    Cp = CeilDiv(d.C, kL) * kL;
    S = gemm::b_slivers(d.K);
    int t = static_cast<int>(kTaskVFloats / (static_cast<size_t>(kXi) * Cp));
    t = std::min(t, kMaxTaskTiles);
    if (threads > 1) t = std::min(t, CeilDiv(tiles, static_cast<long>(kTasksPerThread) * threads));
    task = std::max(2 * mr, t / mr * mr);
    tasks = (tiles + task - 1) / task;
  }
};

// Scratch of one task, carved from the thread's kSlotCol buffer.
struct TaskBuffers {
  float* v;     // 16 planes of (task, Cp)
  float* m;     // 16 planes of (task rounded up to MR, NR)
  float* rows;  // the 4 zero-padded input rows under one tile row: (4, Wp, Cp)
  size_t v_plane, m_plane;
  TaskBuffers(const Plan& p) {
    const int mr = gemm::tile_m(), nr = gemm::tile_n();
    const int groups = CeilDiv(p.task, mr);
    v_plane = static_cast<size_t>(p.task) * p.Cp;
    m_plane = static_cast<size_t>(groups) * mr * nr;
    const size_t floats = kXi * (v_plane + m_plane) + 4 * p.row_floats();
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

// rows (4, Wp, Cp) = input rows [2*th - PT, 2*th - PT + 4) of image n, zero-padded: column j
// holds input column j - PL, channels past C are zero.
void PadTileRow(const ConvDims& d, const Plan& p, const float* x, int n, int th, float* rows) {
  const size_t cp = p.Cp;
  const int left = std::min(d.PL, p.Wp);
  const int body = std::max(0, std::min(d.W, p.Wp - d.PL));
  for (int r = 0; r < 4; ++r) {
    float* row = rows + r * p.row_floats();
    const int ih = 2 * th - d.PT + r;
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
                    const TaskBuffers& b) {
  const size_t cp = p.Cp;
  for (int i = 0; i < count;) {
    const Tile tile(p, t0 + i);
    const int run = std::min(count - i, p.TW - tile.tw);
    PadTileRow(d, p, x, tile.n, tile.th, b.rows);
    for (int j = 0; j < run; ++j) {
      const float* base = b.rows + 2 * static_cast<size_t>(tile.tw + j) * cp;
      float* out = b.v + static_cast<size_t>(i + j) * cp;
      for (size_t c = 0; c < cp; c += kL)
        InputTransform(base + c, p.row_floats(), cp, out + c, b.v_plane);
    }
    i += run;
  }
}

// Output pixels of the tiles [t0, t0 + count) for output channels [k0, k0 + NR) from M:
// Y = A^T M A + bias, then the activation.
//   A^T = [1 1 1 0; 0 1 -1 -1]
void TransformOutput(const ConvDims& d, const Plan& p, long t0, int count, int k0,
                     const float* bias, bool relu, const TaskBuffers& b,
                     float* y) {
  const D dd;
  const int nr = gemm::tile_n();
  const V zero = hn::Zero(dd);
  HWY_ALIGN float part[kL];
  Tile tile(p, t0);
  for (int i = 0; i < count; ++i, tile.next(p)) {
    const int oh0 = 2 * tile.th, ow0 = 2 * tile.tw;
    const bool full_h = oh0 + 1 < d.OH, full_w = ow0 + 1 < d.OW;
    float* dst = y + ((static_cast<size_t>(tile.n) * d.OH + oh0) * d.OW + ow0) * d.K;
    const size_t down = static_cast<size_t>(d.OW) * d.K;
    for (int h = 0; h < nr; h += kL) {
      const int k = k0 + h;
      if (k >= d.K) break;
      const float* src = b.m + static_cast<size_t>(i) * nr + h;
      V m[16];
      for (int xi = 0; xi < 16; ++xi) m[xi] = hn::LoadU(dd, src + xi * b.m_plane);
      V a0[4], a1[4];  // A^T M: two rows of four
      for (int c = 0; c < 4; ++c) {
        a0[c] = hn::Add(hn::Add(m[c], m[4 + c]), m[8 + c]);
        a1[c] = hn::Sub(hn::Sub(m[4 + c], m[8 + c]), m[12 + c]);
      }
      const V bv = hn::LoadU(dd, bias + k);
      V out[4] = {hn::Add(hn::Add(hn::Add(a0[0], a0[1]), a0[2]), bv),
                  hn::Add(hn::Sub(hn::Sub(a0[1], a0[2]), a0[3]), bv),
                  hn::Add(hn::Add(hn::Add(a1[0], a1[1]), a1[2]), bv),
                  hn::Add(hn::Sub(hn::Sub(a1[1], a1[2]), a1[3]), bv)};
      if (relu)
        for (V& o : out) o = hn::Max(o, zero);
      const int n = std::min(kL, d.K - k);
      const bool inside[4] = {true, full_w, full_h, full_h && full_w};
      const size_t at[4] = {0, static_cast<size_t>(d.K), down, down + d.K};
      for (int q = 0; q < 4; ++q) {
        if (!inside[q]) continue;
        float* o = dst + at[q] + k;
        if (n == kL) {
          hn::StoreU(out[q], dd, o);
        } else {
          hn::Store(out[q], dd, part);
          for (int j = 0; j < n; ++j) o[j] = part[j];
        }
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
  // U_xi(c, s*NR .. s*NR + NR), zero past K.
  //   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
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
          float gg[4][3];  // G g
          for (int q = 0; q < 3; ++q) {
            const float g0 = g[q * C], g1 = g[(3 + q) * C], g2 = g[(6 + q) * C];
            gg[0][q] = g0;
            gg[1][q] = 0.5f * (g0 + g1 + g2);
            gg[2][q] = 0.5f * (g0 - g1 + g2);
            gg[3][q] = g2;
          }
          for (int r = 0; r < 4; ++r) {  // (G g) G^T
            const float g0 = gg[r][0], g1 = gg[r][1], g2 = gg[r][2];
            dst[(4 * r + 0) * plane + j] = g0;
            dst[(4 * r + 1) * plane + j] = 0.5f * (g0 + g1 + g2);
            dst[(4 * r + 2) * plane + j] = 0.5f * (g0 - g1 + g2);
            dst[(4 * r + 3) * plane + j] = g2;
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
    const long t0 = static_cast<long>(ti) * p.task;
    const int count = static_cast<int>(std::min<long>(p.task, p.tiles - t0));
    const TaskBuffers buf(p);
    TransformInput(d, p, x, t0, count, buf);
    const int groups = CeilDiv(count, mr);
    // Row offsets of a group of MR (at most 8) tiles in V; in the last group, rows past the
    // task's tiles repeat its last tile, so they read real data and their results go unused.
    long ro[8], ro_last[8];
    const int last = count - (groups - 1) * mr;
    for (int i = 0; i < mr; ++i) {
      ro[i] = static_cast<long>(i) * p.Cp;
      ro_last[i] = static_cast<long>(std::min(i, last - 1)) * p.Cp;
    }
    for (int s = 0; s < p.S; ++s) {
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
int CeilDiv(long a, long b) { return static_cast<int>((a + b - 1) / b); }
}  // namespace

bool applies(const ConvDims& d) {
  if (d.KH != 3 || d.KW != 3 || d.SH != 1 || d.SW != 1) return false;
  if (d.OH != d.H + d.PT + d.PB - 2 || d.OW != d.W + d.PL + d.PR - 2) return false;
  if (d.C < kMinC || d.K < kMinK || d.OH < 1 || d.OW < 1) return false;
  // 16 multiply-adds per tile against 9 per output pixel; tiles that overhang odd output
  // sizes waste some, and the transforms cost the rest of the margin.
  const double tiles = static_cast<double>(CeilDiv(d.OH, 2)) * CeilDiv(d.OW, 2);
  return 1.5 * 16.0 * tiles <= 9.0 * d.OH * d.OW;
}

}  // namespace wino
}  // namespace kern
}  // namespace tagnet
#endif  // HWY_ONCE
