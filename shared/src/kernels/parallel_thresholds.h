// When the core's kernels split an op over threads. Private to the core.
//
// Below each threshold an op runs on the calling thread, because waking the threads costs
// more than they would save. Timings are from the 2-core x86 development machine (AVX2);
// waking tagnet::ThreadPool takes about 6 us there. Granularity (how work is cut once it is
// split) stays with each kernel.
#pragma once

#include <cstddef>

namespace tagnet {
namespace kern {

// Element-wise and reduction kernels, in element operations: 2^16 take ~5 us, one wake-up.
constexpr size_t kMinParallelWork = size_t{1} << 16;
// GEMM-like kernels (gemm, convolution, dense): 2^21 flops take ~20 us at ~100 GFLOP/s.
constexpr double kMinParallelFlops = 1 << 21;
// Packing or flipping weights, in floats written: 2^16 take ~5 us, one wake-up.
constexpr double kMinParallelPackFloats = 65536.0;
// Winograd weight transform, in (C, K) pairs: cached, so split only from 128x128 (~0.7 ms).
constexpr double kMinParallelWinogradPairs = 16384.0;
// XNNPACK's own pool, in element ops: waking it costs 20-30 us (relu 2^17: 16 us, 64 threaded).
constexpr double kMinXnnpackThreadedWork = 1 << 18;

}  // namespace kern
}  // namespace tagnet
