#include "tagnet/kernels/engine.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "kernels.h"
#include "thread_pool.h"

namespace tagnet {

namespace kern {

// The table is a name and function pointers, all of one size (tests/test_kernels.cpp checks it).
Backend complete_backend(const Backend& partial, const Backend& fallback) {
  constexpr size_t kSlots = sizeof(Backend) / sizeof(void*);
  static_assert(kSlots * sizeof(void*) == sizeof(Backend), "every slot is one pointer wide");
  void* slots[kSlots];
  void* rest[kSlots];
  std::memcpy(slots, &partial, sizeof(Backend));
  std::memcpy(rest, &fallback, sizeof(Backend));
  for (size_t i = 1; i < kSlots; ++i)
    if (!slots[i]) slots[i] = rest[i];
  Backend out;
  std::memcpy(&out, slots, sizeof(Backend));
  return out;
}

}  // namespace kern

namespace {
const kern::Backend* find_backend(const std::string& name) {
  if (name == "ref") return kern::backend_ref();
  if (name == "hwy") return kern::backend_hwy();
  if (name == "xnnpack") return kern::backend_xnnpack();
  // tagnet's own kernels: faster than the XNNPACK build the native binaries link against on
  // the tutorial networks' training and batch inference (scripts/bench-vs-peers.sh, README).
  if (name == "auto") return kern::backend_hwy();
  return nullptr;
}
}  // namespace

Engine::Engine() : Engine(Options{}) {}

Engine::Engine(const Options& o) {
  kern::hwy_target();  // a bad TAGNET_HWY_TARGET stops here, before any work
  backend_ = find_backend(o.backend);
  if (!backend_) {
    std::string names;
    for (auto& n : available_backends()) names += (names.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown or unavailable backend '" + o.backend +
                                "' (available: " + names + ")");
  }
  name_ = backend_->name;
  if (o.threads > kMaxThreads)
    throw std::invalid_argument("threads: at most " + std::to_string(kMaxThreads) + ", not " + std::to_string(o.threads));
  int threads = o.threads;
  if (threads <= 0) threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, unsigned(kMaxThreads)));
  if (name_ == "ref") threads = 1;
  pool_ = std::make_unique<ThreadPool>(threads);
}

Engine::~Engine() = default;

const std::string& Engine::backend_name() const { return name_; }
int Engine::threads() const { return pool_->threads(); }

std::string Engine::instruction_set() const {
  return backend_ == kern::backend_ref() ? "" : chosen_instruction_set();
}

std::string Engine::chosen_instruction_set() { return kern::hwy_target().name; }

std::string Engine::describe() const {
  const std::string isa = instruction_set();
  return "backend " + name_ + (isa.empty() ? "" : ", " + isa + " kernels") + ", " +
         std::to_string(threads()) + (threads() == 1 ? " thread" : " threads");
}

std::vector<std::string> Engine::available_backends() {
  std::vector<std::string> v;
  if (kern::backend_xnnpack()) v.push_back("xnnpack");
  v.push_back("hwy");
  v.push_back("ref");
  return v;
}

std::vector<std::string> Engine::available_instruction_sets() {
  std::vector<std::string> v;
  for (const kern::HwyTarget& t : kern::hwy_targets()) v.push_back(t.name);
  return v;
}

}  // namespace tagnet
