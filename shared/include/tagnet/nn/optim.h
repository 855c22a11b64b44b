// Optimizers: one flat loop over the (value, gradient, state) spans of the trainable
// parameters of trainable layers.
//
//   tagnet::Adam adam(/*lr=*/1e-3f, /*decay=*/1e-3f / 75);
//   adam.step(model);   // after model.compute_gradients(...)
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tagnet/kernels/tensor.h"

namespace tagnet {

class Engine;

class Model;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string type() const = 0;
  virtual nlohmann::json config() const = 0;
  // Applies the model's current gradients to its parameters, in one parallel pass over the
  // trainable spans of the arena on the engine's threads.
  void step(Model& model, const Engine& engine);
  // Per-parameter state buffers, each the size of the model's parameter arena.
  virtual std::vector<std::pair<std::string, FloatBuffer*>> state() = 0;

  static std::unique_ptr<Optimizer> from_config(const std::string& type, const nlohmann::json& c);

  float lr = 1e-3f;
  float decay = 0.f;
  int64_t iterations = 0;

 protected:
  // Updates params[i] for i in [0, n) with gradient grads[i]; `offset` locates the span in
  // the arena-sized state buffers. Called from several threads on disjoint spans.
  virtual void update(float* params, const float* grads, size_t offset, size_t n, float lr_t) = 0;
  void ensure_state(FloatBuffer& buf, size_t n) { if (buf.size() != n) buf.assign(n, 0.f); }
  virtual void prepare(size_t arena_size) = 0;
};

// Adam (Kingma & Ba 2015, arXiv:1412.6980) as Keras implements it: bias correction folded into
// the step size, epsilon outside the square root (default 1e-7).
class Adam : public Optimizer {
 public:
  explicit Adam(float lr = 1e-3f, float decay = 0.f, float beta1 = 0.9f, float beta2 = 0.999f,
                float epsilon = 1e-7f);
  std::string type() const override { return "Adam"; }
  nlohmann::json config() const override;
  std::vector<std::pair<std::string, FloatBuffer*>> state() override;

 protected:
  void prepare(size_t arena_size) override;
  void update(float* p, const float* g, size_t offset, size_t n, float lr_t) override;

 private:
  float beta1_, beta2_, epsilon_;
  FloatBuffer m_, v_;
};

// SGD with momentum, optionally Nesterov, as Keras: v = momentum*v - lr*g;
// p += v (plain) or p += momentum*v - lr*g (Nesterov).
class SGD : public Optimizer {
 public:
  explicit SGD(float lr = 0.01f, float momentum = 0.f, bool nesterov = false, float decay = 0.f);
  std::string type() const override { return "SGD"; }
  nlohmann::json config() const override;
  std::vector<std::pair<std::string, FloatBuffer*>> state() override;

 protected:
  void prepare(size_t arena_size) override;
  void update(float* p, const float* g, size_t offset, size_t n, float lr_t) override;

 private:
  float momentum_;
  bool nesterov_;
  FloatBuffer velocity_;
};

}  // namespace tagnet
