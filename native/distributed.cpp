#include "distributed.h"

#include <cstdio>
#include <cstdlib>

#if TAGNET_USE_MPI
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>
#endif

namespace tagnet::native {

#if TAGNET_USE_MPI

namespace {

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (*end || x < 0) fail(std::string(name) + " must be a number of at least 0, not '" + v + "'");
  return x;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Every MPI call but MPI_Init and MPI_Finalize runs on one communication thread (so MPI needs
// only MPI_THREAD_SERIALIZED), in the order the compute thread queues them. The compute thread
// goes on with backward while gradient buckets travel, and never waits longer than the timeout
// without the thread making progress: a process that died or a network that went away ends the
// run with an error instead of a hang.
class MpiProcesses final : public Collective {
 public:
  MpiProcesses(double timeout_s, size_t bucket_bytes) : timeout_(timeout_s), bucket_bytes_(bucket_bytes) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    thread_ = std::thread([this] { loop(); });
  }
  ~MpiProcesses() override {
    {
      std::lock_guard<std::mutex> lk(m_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void sum(double* v, size_t n) override {
    queue([=] { MPI_Allreduce(MPI_IN_PLACE, v, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); });
    wait("summing metrics");
  }

  bool same(uint64_t v) override {
    uint64_t lo = v, hi = v;
    queue([&] {
      MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
      MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    });
    wait("comparing the processes' models");
    return lo == hi;
  }

  void start_gradients(Model& model, float scale) override {
    plan_buckets(model);
    grads_ = model.grad_arena();
    scale_ = scale;
    next_ = 0;
    stats_.bytes = (buckets_.empty() ? 0 : buckets_.front().second - buckets_.back().first) * sizeof(float);
    stats_.buckets = buckets_.size();
  }

  void gradients_ready(size_t from) override {
    // Buckets go from the arena's end down, as backward finishes the layers.
    for (; next_ < buckets_.size() && from <= buckets_[next_].first; ++next_) {
      const auto [b, e] = buckets_[next_];
      float* g = grads_ + b;
      const float scale = scale_;
      queue([this, g, n = e - b, scale] {
        const auto t0 = Clock::now();
        if (scale != 1.f)
          for (size_t i = 0; i < n; ++i) g[i] *= scale;
        MPI_Allreduce(MPI_IN_PLACE, g, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        busy_seconds_ += seconds_since(t0);
      });
    }
  }

  void finish_gradients() override {
    const auto t0 = Clock::now();
    wait("averaging gradients");
    stats_.exposed_seconds += seconds_since(t0);
    stats_.seconds += busy_seconds_;
    busy_seconds_ = 0;
    ++stats_.steps;
  }

  const AllreduceStats& stats() const { return stats_; }

 private:
  // Buckets [begin, end) of the gradient arena, from its end down, cut at layer boundaries once
  // a bucket holds bucket_bytes_; gradients below the lowest trainable layer stay zero and stay home.
  void plan_buckets(const Model& model) {
    if (&model == planned_for_ && model.arena_size() == planned_size_) return;
    planned_for_ = &model;
    planned_size_ = model.arena_size();
    std::vector<size_t> starts;   // of each layer with parameters, in the arena
    size_t lowest = model.arena_size();
    for (size_t i = model.num_layers(); i-- > 0;) {
      const Layer& l = model.layer(i);
      if (l.params().empty()) continue;
      const size_t at = static_cast<size_t>(l.params().front().grad.data() - model.grad_arena());
      starts.push_back(at);
      if (l.trainable && l.param_count(true) > 0) lowest = at;
    }
    buckets_.clear();
    size_t end = model.arena_size();
    for (size_t at : starts) {
      if (at < lowest) break;
      if (bucket_bytes_ > 0 && (end - at) * sizeof(float) >= bucket_bytes_) {
        buckets_.emplace_back(at, end);
        end = at;
      }
    }
    if (end > lowest) buckets_.emplace_back(lowest, end);
  }

  void queue(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lk(m_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }

  // Returns when every queued job is done; gives up after the timeout without progress.
  void wait(const char* what) {
    std::unique_lock<std::mutex> lk(m_);
    while (!jobs_.empty() || busy_) {
      const size_t seen = done_;
      if (!done_cv_.wait_for(lk, std::chrono::duration<double>(timeout_),
                             [&] { return done_ != seen || (jobs_.empty() && !busy_); })) {
        char b[256];
        std::snprintf(b, sizeof b,
                      "no answer from the other processes for %.0f s while %s: one of them stopped, or the network "
                      "is down (TAGNET_TIMEOUT sets the wait)",
                      timeout_, what);
        fail(b);
      }
    }
  }

  void loop() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return quit_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
      lk.unlock();
      job();
      lk.lock();
      busy_ = false;
      ++done_;
      done_cv_.notify_all();
    }
  }

  int rank_ = 0, size_ = 1;
  double timeout_;
  size_t bucket_bytes_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false, quit_ = false;
  size_t done_ = 0;
  // The step's gradients, owned by the compute thread between start and finish.
  const Model* planned_for_ = nullptr;
  size_t planned_size_ = 0;
  std::vector<std::pair<size_t, size_t>> buckets_;
  float* grads_ = nullptr;
  float scale_ = 1;
  size_t next_ = 0;
  double busy_seconds_ = 0;   // written by the communication thread, read after wait()
  AllreduceStats stats_;
};

std::unique_ptr<MpiProcesses> g_processes;
int g_error_fd = 2;   // stderr as it was before a process other than rank 0 silenced it
int g_rank = 0, g_size = 1;

}  // namespace

void join_processes(int* argc, char*** argv) {
  // mpirun (Open MPI's, or a PMIx launcher) tells its processes who they are; alone, tagnet
  // does not start MPI at all.
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK")) return;
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  if (g_rank > 0) {
    g_error_fd = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
  }
  if (provided < MPI_THREAD_SERIALIZED) fail("this MPI cannot be called from a communication thread");
  const double bucket_mb = env_number("TAGNET_BUCKET_MB", 4);
  const double timeout = env_number("TAGNET_TIMEOUT", 300);
  if (timeout <= 0) fail("TAGNET_TIMEOUT must be more than 0 seconds");
  g_processes = std::make_unique<MpiProcesses>(timeout, static_cast<size_t>(bucket_mb * (1 << 20)));
  std::fprintf(stderr, "tagnet: process 0 of %d (MPI), gradients in buckets of %g MiB%s\n", g_size, bucket_mb,
               bucket_mb > 0 ? " during backward" : " after backward");
}

Collective* processes() { return g_processes.get(); }
bool leads() { return g_rank == 0; }

int default_threads() {
  if (!g_processes) return 0;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int here = local ? std::max(1, std::atoi(local)) : 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / here);
}

void leave_processes() {
  if (!g_processes) return;
  g_processes.reset();
  MPI_Finalize();
}

void fail(const std::string& message) {
  std::fflush(stdout);
  std::string line = "tagnet: ";
  if (g_size > 1) line += "process " + std::to_string(g_rank) + " of " + std::to_string(g_size) + ": ";
  line += "error: " + message + "\n";
  if (write(g_error_fd, line.data(), line.size()) < 0) std::_Exit(1);
  // Not MPI_Finalize: the others may be inside a collective call. mpirun notices the exit and
  // stops them.
  std::_Exit(1);
}

AllreduceStats allreduce_stats() { return g_processes ? g_processes->stats() : AllreduceStats{}; }

#else  // a build without MPI runs alone

void join_processes(int*, char***) {}
Collective* processes() { return nullptr; }
bool leads() { return true; }
int default_threads() { return 0; }
void leave_processes() {}

void fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "tagnet: error: %s\n", message.c_str());
  std::_Exit(1);
}

AllreduceStats allreduce_stats() { return {}; }

#endif

}  // namespace tagnet::native
