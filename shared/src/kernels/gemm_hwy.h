// Packed GEMM building blocks behind gemm_hwy, shared with the convolution and dense kernels,
// declared for each Highway target (see hwy_setup.h). Private to the core.
//
// Matrices are addressed by strides: element (r, c) of a matrix X is X[r*rs + c*cs], so a
// transposed operand is the same pointer with its two strides swapped.
#include <cstddef>

#include "kernels.h"

#if defined(TAGNET_KERNELS_GEMM_HWY_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TAGNET_KERNELS_GEMM_HWY_H_
#undef TAGNET_KERNELS_GEMM_HWY_H_
#else
#define TAGNET_KERNELS_GEMM_HWY_H_
#endif

#include "hwy_setup.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {

// The GEMM-based kernels of the `hwy` table (gemm_hwy.cpp, conv_hwy.cpp), as in kernels.h's
// Backend: C (M, N) = (accumulate ? C : 0) + A * B with strided operands, and the convolution
// and dense layers on it.
void gemm_hwy(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
              long csb, float* C, long ldc, bool accumulate, const Exec& e);
void conv2d_forward_hwy(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                        float* y, OpStatePtr& state, const Exec& e);
void conv2d_backward_data_hwy(const ConvDims& d, const float* dy, const float* w, float* dx,
                              const Exec& e);
void conv2d_backward_filter_hwy(const ConvDims& d, const float* x, const float* dy, float* dw,
                                float* db, const Exec& e);
void dense_forward_hwy(int N, int I, int O, const float* x, const float* w, const float* b, Act act,
                       float* y, OpStatePtr& state, const Exec& e);
void dense_backward_data_hwy(int N, int I, int O, const float* dy, const float* w, float* dx,
                             const Exec& e);
void dense_backward_filter_hwy(int N, int I, int O, const float* x, const float* dy, float* dw,
                               float* db, const Exec& e);

namespace gemm {

// Rows (MR) and columns (NR) of the micro-kernel's register tile. NR is two SIMD vectors.
int tile_m();
int tile_n();
inline int b_slivers(int N) { return (N + tile_n() - 1) / tile_n(); }

// B (K, N) repacked as NR-wide column slivers, the layout the micro-kernel streams. K is cut
// into blocks of kc rows; block b starts at data + b*kc*S*NR (S = b_slivers(N)), and inside it
// sliver s holds rows [b*kc, b*kc + kb) of columns [s*NR, s*NR + NR) as kb consecutive NR-float
// rows. With kc = K there is one block: sliver s at data + s*K*NR, row k at + k*NR.
struct PackedB {
  const float* data;
  int K, N;         // the whole packed matrix
  int kc;           // rows per K block
  int s_first = 0;  // a gemm_st call reads its N columns starting at this sliver
};
// The default K block for a B (K, N) (what gemm_st uses when it packs B itself).
int default_kc(int K, int N);
size_t packed_b_floats(int K, int N);
// Packs the slivers [s_begin, s_end) of B (K, N), so several threads can pack disjoint ranges;
// columns past N are zero-filled. dst holds packed_b_floats(K, N) floats.
void pack_b(int K, int N, int kc, const float* B, long rsb, long csb, float* dst, int s_begin,
            int s_end);

// Single-threaded C (M, N) = (accumulate ? C : 0) + A (M, K) * B (K, N), C(i, j) at
// C[i*rsc + j*csc]. Uses the calling thread's scratch only, so concurrent calls from pool
// tasks are safe as long as their C regions are disjoint.
void gemm_st(int M, int N, int K, const float* A, long rsa, long csa, const PackedB& B, float* C,
             long rsc, long csc, bool accumulate);
void gemm_st(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
             long csb, float* C, long rsc, long csc, bool accumulate);

// The micro-kernel, for callers that assemble the K dimension from pieces (implicit-GEMM
// convolution): C tile (MR, NR) (+)= sum over segments s of A_s (MR, len_s) * B_s (len_s, NR),
// where A_s(i, k) = a_s[ro[i] + k*aks] (ro has MR entries) and B_s(k, j) = b_s[k*bks + j].
// Only the top-left (m, n) corner of the tile is stored, C(i, j) at c[i*rsc + j], as
// relu?(C_old (if accumulate) + sum + bias (n floats, if not null)). Every B_s row must have
// NR readable floats and every ro[i] must address readable rows, also for i >= m.
struct Segment {
  const float* a;
  const float* b;
  long len;
};
void kernel(const Segment* segs, int nseg, const long* ro, long aks, long bks, float* c, long rsc,
            int m, int n, bool accumulate, const float* bias = nullptr, bool relu = false);

// Per-thread scratch buffers, grown on demand and kept for reuse, 64-byte aligned. Each slot
// is one independent buffer; a pointer stays valid until the same slot is requested larger.
enum Slot : int {
  kSlotPackA = 0,  // gemm_st: A panels and edge tiles
  kSlotPackB,      // gemm_st: B blocks packed on the fly
  kSlotSharedB,    // gemm_hwy: B shared by all threads (caller's buffer)
  kSlotTmpC,       // gemm_st: row-major staging of a C with non-unit column stride
  kSlotCol,        // conv: im2col chunk or zero-padded input rows
  kSlotConvB,      // conv: packed weights shared by all threads (caller's buffer)
  kSlotPartial,    // conv: partial parameter gradients of all threads (caller's buffer)
  kSlotConvW,      // conv: the backward pass's flipped weights, before a Winograd transform
  kSlotCount
};
float* scratch(Slot slot, size_t floats);

}  // namespace gemm
}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();

#endif  // TAGNET_KERNELS_GEMM_HWY_H_
