// The Highway set-up every SIMD kernel file shares. Private to the core; a file that uses
// Highway includes this header before anything else, so all of them build for one target.
//
// Highway is used with static dispatch only: the one target is the build's (-march on x86,
// SIMD128 under Emscripten). Highway 1.0 selects its AVX2 target only when AES and PCLMUL are
// enabled too, which GCC's -march=haswell does not do (no __AES__), and it would then fall back
// to SSSE3. tagnet's kernels use neither instruction, so that requirement is lifted here.
#pragma once

#ifndef HWY_DISABLE_PCLMUL_AES
#define HWY_DISABLE_PCLMUL_AES
#endif
#include <hwy/highway.h>

namespace tagnet {
namespace kern {

namespace hn = hwy::HWY_NAMESPACE;

// Whole float vectors of the build's target, and their lane count.
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
constexpr int kL = static_cast<int>(hn::MaxLanes(D()));

}  // namespace kern
}  // namespace tagnet
