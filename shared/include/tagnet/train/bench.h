// The benchmark behind `tagnet bench` (and the WASM bench): throughput and latency of the
// tutorial networks, GEMM GFLOP/s, and per-layer forward/backward GFLOP/s.
//
//   nlohmann::json r = tagnet::run_bench(engine, {});
//   r["smallervggnet"]["train_images_per_s"]
#pragma once

#include <nlohmann/json.hpp>

#include "tagnet/kernels/engine.h"

namespace tagnet {

struct BenchOptions {
  double seconds_per_figure = 2.0;   // timing budget per measured figure (at least 3 runs)
  bool per_layer = true;
  bool smallervggnet = true;
  bool fashionnet = true;
};

// Keys: "backend", "threads", "gemm_gflops", "smallervggnet" / "fashionnet" each with
// "train_images_per_s", "infer_b1_ms", "infer_b32_images_per_s", "layers" (per layer: name,
// type, forward_ms, backward_ms, forward_gflops, backward_gflops at batch 32).
nlohmann::json run_bench(const Engine& engine, const BenchOptions& options);

}  // namespace tagnet
