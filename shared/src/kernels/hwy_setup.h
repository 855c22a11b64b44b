// The Highway set-up every SIMD kernel file shares. Private to the core.
//
// The kernels are compiled once per instruction set (Highway's dynamic dispatch): a kernel
// file defines HWY_TARGET_INCLUDE as its own name and includes <hwy/foreach_target.h>, which
// re-includes the file once per target; this header then opens the target's namespace,
// tagnet::kern::HWY_NAMESPACE (N_AVX3, N_AVX2, N_SSE4, the fallback N_SCALAR, or N_WASM under
// Emscripten), where the file's code lives. kernels_hwy.cpp collects one Backend table per
// target and chooses the best one the CPU runs (kern::hwy_targets()). Which targets are built
// is set in CMakeLists.txt (HWY_DISABLED_TARGETS).
//
// Like Highway's own -inl headers this one has a per-target include guard.
#if defined(TAGNET_KERNELS_HWY_SETUP_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TAGNET_KERNELS_HWY_SETUP_H_
#undef TAGNET_KERNELS_HWY_SETUP_H_
#else
#define TAGNET_KERNELS_HWY_SETUP_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tagnet {
namespace kern {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// Whole float vectors of the target, and their lane count.
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
constexpr int kL = static_cast<int>(hn::MaxLanes(D()));

}  // namespace HWY_NAMESPACE
}  // namespace kern
}  // namespace tagnet
HWY_AFTER_NAMESPACE();

#endif  // TAGNET_KERNELS_HWY_SETUP_H_
