#include "tagnet/nn/optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tagnet/kernels/engine.h"
#include "tagnet/nn/model.h"

#include "thread_pool.h"

#include "json_number.h"

namespace tagnet {

void Optimizer::step(Model& model, const Engine& engine) {
  prepare(model.arena_size());
  ++iterations;
  // Keras' time-based decay: lr / (1 + decay * the number of steps before this one).
  const float lr_t = lr / (1.f + decay * static_cast<float>(iterations - 1));
  float* base = model.param_arena();   // write access: cached weights are rebuilt
  const float* gbase = model.grad_arena();
  // The trainable parameters as arena spans, neighbours merged: [offset, end).
  std::vector<std::pair<size_t, size_t>> spans;
  size_t total = 0;
  for (size_t li = 0; li < model.num_layers(); ++li) {
    Layer& l = model.layer(li);
    if (!l.trainable) continue;
    for (auto& p : l.params()) {
      if (!p.trainable) continue;
      const size_t off = static_cast<size_t>(p.value.data() - base), end = off + p.value.size();
      if (!spans.empty() && spans.back().second == off) spans.back().second = end;
      else spans.emplace_back(off, end);
      total += p.value.size();
    }
  }
  // Positions [begin, end) count trainable parameters only, spans laid end to end.
  engine.pool().run(total, 4096, [&](size_t begin, size_t end) {
    size_t pos = 0;
    for (const auto& [off, span_end] : spans) {
      const size_t n = span_end - off, lo = std::max(begin, pos), hi = std::min(end, pos + n);
      if (lo < hi) {
        const size_t o = off + (lo - pos);
        update(base + o, gbase + o, o, hi - lo, lr_t);
      }
      pos += n;
    }
  });
}

std::unique_ptr<Optimizer> Optimizer::from_config(const std::string& type, const nlohmann::json& c) {
  std::unique_ptr<Optimizer> o;
  if (type == "Adam")
    o = std::make_unique<Adam>(c.value("learning_rate", 1e-3f), c.value("decay", 0.f),
                               c.value("beta_1", 0.9f), c.value("beta_2", 0.999f),
                               c.value("epsilon", 1e-7f));
  else if (type == "SGD")
    o = std::make_unique<SGD>(c.value("learning_rate", 0.01f), c.value("momentum", 0.f),
                              c.value("nesterov", false), c.value("decay", 0.f));
  else
    throw std::invalid_argument("unknown optimizer '" + type + "'");
  o->iterations = json_integer_or(c, "iterations", 0, type + " iterations", 0, int64_t(1) << 53);
  return o;
}

Adam::Adam(float lr_, float decay_, float beta1, float beta2, float epsilon)
    : beta1_(beta1), beta2_(beta2), epsilon_(epsilon) {
  lr = lr_;
  decay = decay_;
}

nlohmann::json Adam::config() const {
  return {{"learning_rate", lr}, {"decay", decay},     {"beta_1", beta1_},
          {"beta_2", beta2_},    {"epsilon", epsilon_}, {"iterations", iterations}};
}

std::vector<std::pair<std::string, FloatBuffer*>> Adam::state() { return {{"m", &m_}, {"v", &v_}}; }

void Adam::prepare(size_t n) {
  ensure_state(m_, n);
  ensure_state(v_, n);
}

void Adam::update(float* p, const float* g, size_t off, size_t n, float lr_t) {
  const double t = static_cast<double>(iterations);
  const float a = static_cast<float>(lr_t * std::sqrt(1.0 - std::pow(beta2_, t)) /
                                     (1.0 - std::pow(beta1_, t)));
  float* m = m_.data() + off;
  float* v = v_.data() + off;
  const float b1 = beta1_, b2 = beta2_, eps = epsilon_;
  for (size_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.f - b1) * g[i];
    v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    p[i] -= a * m[i] / (std::sqrt(v[i]) + eps);
  }
}

SGD::SGD(float lr_, float momentum, bool nesterov, float decay_)
    : momentum_(momentum), nesterov_(nesterov) {
  lr = lr_;
  decay = decay_;
}

nlohmann::json SGD::config() const {
  return {{"learning_rate", lr}, {"momentum", momentum_}, {"nesterov", nesterov_},
          {"decay", decay}, {"iterations", iterations}};
}

std::vector<std::pair<std::string, FloatBuffer*>> SGD::state() { return {{"velocity", &velocity_}}; }

void SGD::prepare(size_t n) { ensure_state(velocity_, n); }

void SGD::update(float* p, const float* g, size_t off, size_t n, float lr_t) {
  float* vel = velocity_.data() + off;
  const float mom = momentum_;
  for (size_t i = 0; i < n; ++i) {
    vel[i] = mom * vel[i] - lr_t * g[i];
    p[i] += nesterov_ ? mom * vel[i] - lr_t * g[i] : vel[i];
  }
}

}  // namespace tagnet
