// The engine: which kernels run (chosen once, at construction) and on how many threads.
//
//   tagnet::Engine engine({/*threads=*/2, /*backend=*/"auto"});
//   std::cerr << engine.describe() << "\n";   // "backend hwy, AVX2 kernels, 2 threads"
//
// Backends: "xnnpack" (native builds with XNNPACK: forward ops on XNNPACK, the rest on
// tagnet's own kernels), "hwy" (tagnet's own Highway kernels: what the WASM build runs),
// "ref" (plain reference loops, single-threaded: the test oracle). "auto" is hwy, the fastest
// of them on the tutorial networks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tagnet {

class ThreadPool;
namespace kern {
struct Backend;
}

class Engine {
 public:
  // More threads than any machine tagnet runs on has: a bound on what a number may ask for.
  static constexpr int kMaxThreads = 1024;
  struct Options {
    int threads = 0;               // 0: all hardware threads; at most kMaxThreads
    std::string backend = "auto";
  };
  Engine();
  explicit Engine(const Options& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& backend_name() const;
  int threads() const;
  // The instruction set tagnet's own kernels run with (chosen at start-up for this CPU, e.g.
  // "AVX3" for AVX-512, "AVX2", "SSE4", "WASM"); empty for the ref backend.
  std::string instruction_set() const;
  std::string describe() const;
  static std::vector<std::string> available_backends();
  // The instruction sets tagnet's own kernels are built for that this CPU runs, best first;
  // the environment variable TAGNET_HWY_TARGET picks one of them instead of the best.
  static std::vector<std::string> available_instruction_sets();
  // The one tagnet's own kernels run with in this process (what instruction_set() reports for
  // every backend but ref).
  static std::string chosen_instruction_set();

  // For the core's layers.
  const kern::Backend& backend() const { return *backend_; }
  ThreadPool& pool() const { return *pool_; }

 private:
  const kern::Backend* backend_;
  std::unique_ptr<ThreadPool> pool_;
  std::string name_;
};

// A small, fast, platform-independent generator (splitmix64), so that a seed gives the same
// numbers natively and in WASM (std distributions differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : s_(seed) {}
  uint64_t next() { return mix(s_ += kGolden); }
  // The i-th number (from 0) that Rng(seed) gives, without the i before it: parts of a stream
  // can be drawn in any order, on any thread.
  static uint64_t nth(uint64_t seed, uint64_t i) { return mix(seed + (i + 1) * kGolden); }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((next() >> 32) * n >> 32); }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(static_cast<uint32_t>(i))]);
  }

 private:
  static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
};

}  // namespace tagnet
