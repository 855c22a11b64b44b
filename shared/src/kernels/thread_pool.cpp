#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace tagnet {

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

// A training step runs dozens of parallel ops back to back, each a fraction of a millisecond:
// waiting a little while awake before sleeping saves the wake-up latency of a condition
// variable on most of them. The wait is bounded, so idle threads still sleep, and it yields
// the core, so other processes' threads on a busy machine lose nothing to it.
template <class Ready>
void spin_until(const Ready& ready) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int i = 1; !ready(); ++i) {
    std::this_thread::yield();
    if (i % 16 == 0 && std::chrono::steady_clock::now() > until) return;
  }
}

}  // namespace

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    spin_until([&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::run(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  const size_t units = (n + grain - 1) / grain;
  const size_t parts = std::min<size_t>(units, static_cast<size_t>(threads_));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  const std::function<void(int)> job = [&](int i) {
    if (static_cast<size_t>(i) >= parts) return;
    const size_t b = units * i / parts * grain;
    const size_t e = std::min(n, units * (i + 1) / parts * grain);
    if (b < e) fn(b, e);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    pending_ = threads_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  job(0);
  spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
}

void ThreadPool::run_tasks(size_t tasks, const std::function<void(size_t)>& fn) {
  if (tasks == 0) return;
  if (threads_ == 1 || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::atomic<size_t> next{0};
  run(static_cast<size_t>(threads_), 1, [&](size_t, size_t) {
    for (size_t t; (t = next.fetch_add(1)) < tasks;) fn(t);
  });
}

}  // namespace tagnet
