// Winograd F(4x4, 3x3) forward convolution and its transpose F(3x3, 4x4) for the filter gradient,
// on the micro-kernel of gemm_hwy.cpp. Private to the core; conv_hwy.cpp decides when to use
// them and caches the transformed weights.
#include <cstddef>

#include "kernels.h"

#ifndef TAGNET_KERNELS_WINOGRAD_APPLIES_
#define TAGNET_KERNELS_WINOGRAD_APPLIES_
namespace tagnet {
namespace kern {
namespace wino {

// Output pixels per side of a Winograd tile: F(4x4, 3x3).
constexpr int kTile = 4;

// Whether a forward convolution should run as Winograd F(4x4, 3x3): 3x3 kernel, stride 1, an
// output size that matches the padding (any padding), and enough channels and output pixels
// that 4x fewer multiply-adds outweigh the transforms. The same on every target.
bool applies(const ConvDims& d);

// Whether the filter gradient should run as Winograd F(3x3, 4x4): applies(d), and few enough
// channel pairs that the 36 (C, K) sums each thread keeps stay a few MB.
bool filter_applies(const ConvDims& d);

}  // namespace wino
}  // namespace kern
}  // namespace tagnet
#endif  // TAGNET_KERNELS_WINOGRAD_APPLIES_

// The transforms and the product, per Highway target (see hwy_setup.h).
#if defined(TAGNET_KERNELS_WINOGRAD_HWY_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TAGNET_KERNELS_WINOGRAD_HWY_H_
#undef TAGNET_KERNELS_WINOGRAD_HWY_H_
#else
#define TAGNET_KERNELS_WINOGRAD_HWY_H_
#endif

#include "hwy_setup.h"

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {
namespace wino {

// Floats of the transformed weights of a (K, 3, 3, C) kernel.
size_t weight_floats(int C, int K);

// u (weight_floats(C, K) floats, 64-byte aligned) = the transformed weights of w (K, 3, 3, C);
// threads > 1 splits the work over e.pool.
void transform_weights(int C, int K, const float* w, float* u, const Exec& e, int threads);

// y (N, OH, OW, K) = act(conv(x) + b); b may be null; u from transform_weights.
void forward(const ConvDims& d, const float* x, const float* u, const float* b, Act act, float* y,
             const Exec& e, int threads);

// dw (K, 3, 3, C) = the filter gradient of the convolution d for input x and output gradient
// dy; db (K, may be null) = the bias gradient. Overwrites both.
void filter(const ConvDims& d, const float* x, const float* dy, float* dw, float* db,
            const Exec& e, int threads);

}  // namespace wino
}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();

#endif  // TAGNET_KERNELS_WINOGRAD_HWY_H_
