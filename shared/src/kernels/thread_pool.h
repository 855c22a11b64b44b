// A small fixed-size thread pool for the core's own kernels (XNNPACK keeps its own pthreadpool).
// Under Emscripten without pthreads it is built with one thread and runs work inline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tagnet {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(begin, end) over [0, n) split into at most threads() contiguous chunks of
  // multiples of `grain` (the last one may be shorter); returns when all are done.
  // The calling thread runs the first chunk. Not reentrant: fn must not call run().
  void run(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

  // Calls fn(task) for task in [0, tasks), tasks handed out dynamically to the threads.
  void run_tasks(size_t tasks, const std::function<void(size_t)>& fn);

 private:
  void worker(int index);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  // Written under mu_, read without it while spinning.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace tagnet
