// The engine: which kernels run (chosen once, at construction) and on how many threads.
//
//   tagnet::Engine engine({/*threads=*/2, /*backend=*/"auto"});
//   std::cerr << engine.describe() << "\n";   // "backend xnnpack, 2 threads"
//
// Backends: "xnnpack" (native builds with XNNPACK: forward ops on XNNPACK, the rest on
// tagnet's own kernels), "hwy" (tagnet's own Highway kernels: what the WASM build runs),
// "ref" (plain reference loops, single-threaded: the test oracle). "auto" picks the first
// available of xnnpack, hwy.
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
  struct Options {
    int threads = 0;               // 0: all hardware threads
    std::string backend = "auto";
  };
  Engine();
  explicit Engine(const Options& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& backend_name() const;
  int threads() const;
  std::string describe() const;
  static std::vector<std::string> available_backends();

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
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((next() >> 32) * n >> 32); }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(static_cast<uint32_t>(i))]);
  }

 private:
  uint64_t s_;
};

// Sums over the processes that train one model together (tagnet::Collective, train.h): what
// synchronised BatchNorm normalises with.
class ProcessSums {
 public:
  virtual ~ProcessSums() = default;
  virtual void statistics(double* v, size_t n) = 0;   // of the inputs, in place
  // Of gradients, each process's weighted by its share of the global batch (its loss is the
  // mean over its own examples), returned in this process's units.
  virtual void gradients(double* v, size_t n) = 0;
};

// What a forward or backward pass runs with.
struct Context {
  const Engine* engine = nullptr;
  bool training = false;
  Rng* rng = nullptr;            // dropout masks; required when training with Dropout
  uint64_t param_version = 0;    // a new value makes the layers rebuild cached weights
  ProcessSums* sums = nullptr;   // set: BatchNorm trains on the statistics of every process's batch
};

}  // namespace tagnet
