// The Trainer's data parallelism (Trainer::set_collective) with threads standing in for
// processes: slices of every global batch, uneven last batches, averaged gradients, reduced
// metrics, per-process and synchronised BatchNorm. Needs no MPI (test_distributed runs the CLI
// under mpirun).
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <exception>
#include <stdexcept>
#include <string>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tagnet/nn/model.h"
#include "tagnet/train/train.h"

namespace tagnet {
namespace {

// N threads that meet for every collective call; each sums the parts in rank order, so every
// thread gets the same bits.
class Room {
 public:
  explicit Room(int n) : n_(n), parts_(n) {}
  int size() const { return n_; }
  // Every thread's `v`, by rank.
  std::vector<std::vector<double>> gather(int rank, const double* v, size_t k) {
    parts_[rank].assign(v, v + k);
    meet();
    std::vector<std::vector<double>> all = parts_;
    meet();   // all have read before the next call writes
    return all;
  }

 private:
  void meet() {
    std::unique_lock<std::mutex> lk(m_);
    const uint64_t g = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return generation_ != g; });
    }
  }
  int n_;
  std::vector<std::vector<double>> parts_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

class ThreadRank : public Collective {
 public:
  ThreadRank(Room& room, int rank) : room_(room), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return room_.size(); }
  void sum(double* v, size_t n) override {
    const auto all = room_.gather(rank_, v, n);
    for (size_t i = 0; i < n; ++i) {
      v[i] = 0;
      for (const auto& p : all) v[i] += p[i];
    }
  }
  bool same(uint64_t v) override {
    const double halves[2] = {double(v >> 32), double(v & 0xffffffffu)};
    for (const auto& p : room_.gather(rank_, halves, 2))
      if (p[0] != halves[0] || p[1] != halves[1]) return false;
    return true;
  }
  void start_gradients(Model& model, float scale) override {
    model_ = &model;
    scale_ = scale;
    ready_ = model.arena_size();
  }
  void gradients_ready(size_t from) override {
    EXPECT_LE(from, ready_);   // backward hands over ever more of the arena
    ready_ = from;
  }
  void finish_gradients() override {
    EXPECT_EQ(ready_, 0u);
    std::vector<double> g(model_->grad_arena(), model_->grad_arena() + model_->arena_size());
    for (double& x : g) x = float(x * scale_);
    sum(g.data(), g.size());
    std::copy(g.begin(), g.end(), model_->grad_arena());
  }

 private:
  Room& room_;
  int rank_;
  Model* model_ = nullptr;
  float scale_ = 1;
  size_t ready_ = 0;
};

// Seeded 6x6 grey pictures with 3 classes.
class Pictures : public BatchSource {
 public:
  explicit Pictures(size_t n) : x_(n * 36), y_(n) {
    Rng rng(7);
    for (float& v : x_) v = rng.uniform();
    for (size_t i = 0; i < n; ++i) {
      y_[i] = static_cast<int>(rng.below(3));
      x_[i * 36 + y_[i] * 12] += 2.f;   // a bright pixel tells the class
    }
  }
  size_t size() const override { return y_.size(); }
  void fill(const std::vector<size_t>& idx, Tensor& x, Tensor& y, Rng&, bool) override {
    const int B = static_cast<int>(idx.size());
    x.resize({B, 6, 6, 1});
    y.resize({B, 3});
    y.zero();
    for (int b = 0; b < B; ++b) {
      std::memcpy(x.data() + size_t(b) * 36, x_.data() + idx[b] * 36, 36 * sizeof(float));
      y.at(size_t(b) * 3 + y_[idx[b]]) = 1.f;
    }
  }

 private:
  std::vector<float> x_;
  std::vector<int> y_;
};

Model small_net() {
  Model m({6, 6, 1});
  // No bias before BatchNorm: its true gradient is zero, and Adam would blow the rounding
  // noise of its gradient up into steps of the learning rate's size.
  m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame, Activation::kNone, false));
  m.add(std::make_unique<BatchNorm>(0.9f));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(3));
  m.add(std::make_unique<Softmax>());
  m.build(3);
  return m;
}

struct Outcome {
  std::vector<float> weights;
  std::vector<Progress> history;
};

// 2 epochs of 45 examples in batches of 8 (the last has 5) on `ranks` threads (0: alone).
std::vector<Outcome> train(int ranks, bool sync_batchnorm) {
  const int workers = std::max(1, ranks);
  std::vector<Outcome> runs(workers);
  Room room(workers);
  std::vector<std::exception_ptr> errors(workers);
  auto work = [&](int r) {
    try {
      Engine engine(Engine::Options{1, "ref"});
      Model m = small_net();
      Pictures train(45), val(13);
      Adam adam(0.01f);
      TrainOptions o;
      o.epochs = 2;
      o.batch_size = 8;
      o.seed = 9;
      o.sync_batchnorm = sync_batchnorm;
      Trainer t(m, train, adam, LossKind::kCategoricalCrossentropy, o, {&engine, false, nullptr, 0});
      t.set_validation(&val);
      ThreadRank rank(room, r);
      if (ranks > 0) t.set_collective(&rank);
      runs[r].history = t.run({});
      runs[r].weights.assign(m.param_arena(), m.param_arena() + m.arena_size());
    } catch (...) {
      errors[r] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < workers; ++r) threads.emplace_back(work, r);
  for (auto& th : threads) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return runs;
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(DataParallel, SynchronisedBatchNormMatchesOneProcess) {
  const Outcome one = train(0, false)[0];
  const std::vector<Outcome> three = train(3, true);
  for (const Outcome& r : three) {
    EXPECT_EQ(r.weights, three[0].weights);   // identical replicas, moving statistics included
    EXPECT_LT(max_difference(r.weights, one.weights), 1e-5f);
    ASSERT_EQ(r.history.size(), 2u);
    EXPECT_NEAR(r.history[1].loss, one.history[1].loss, 1e-5);
    EXPECT_NEAR(r.history[1].accuracy, one.history[1].accuracy, 1e-9);
    EXPECT_NEAR(r.history[1].val.loss, one.history[1].val.loss, 1e-5);
    EXPECT_EQ(r.history[1].val.examples, 13u);
  }
}

TEST(DataParallel, PerProcessBatchNormKeepsReplicasIdentical) {
  // Each thread normalises with its own slice's statistics: another run than one process's,
  // but the same model on every thread, moving averages included.
  const Outcome one = train(0, false)[0];
  const std::vector<Outcome> two = train(2, false);
  EXPECT_EQ(two[1].weights, two[0].weights);
  EXPECT_GT(max_difference(two[0].weights, one.weights), 1e-4f);
}

TEST(DataParallel, SynchronisedBatchNormNeedsAnExampleForEveryProcess) {
  // 45 examples in batches of 8 leave 5 for the last batch: too few for 6 processes.
  EXPECT_THROW(
      {
        try {
          train(6, true);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("leave 5 in one"), std::string::npos) << e.what();
          throw;
        }
      },
      std::invalid_argument);
}

}  // namespace
}  // namespace tagnet
