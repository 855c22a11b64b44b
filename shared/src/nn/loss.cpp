#include "tagnet/nn/loss.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tagnet {

std::string loss_name(LossKind k) {
  switch (k) {
    case LossKind::kBinaryCrossentropy: return "binary_crossentropy";
    case LossKind::kCategoricalCrossentropy: return "categorical_crossentropy";
    case LossKind::kBinaryCrossentropyFromLogits: return "binary_crossentropy_from_logits";
  }
  return "?";
}

float loss_forward_backward(LossKind kind, const Tensor& logits, const Tensor& targets,
                            Tensor* dlogits) {
  if (logits.rank() != 2) throw std::invalid_argument("loss: logits must be (N, F), got " + logits.shape().str());
  targets.expect_shape(logits.shape(), "loss targets");
  const int N = logits.dim(0), F = logits.dim(1);
  if (N == 0) throw std::invalid_argument("loss: empty batch");
  if (dlogits) dlogits->resize(logits.shape());
  const float* z = logits.data();
  const float* t = targets.data();
  double total = 0;
  if (kind == LossKind::kCategoricalCrossentropy) {
    for (int n = 0; n < N; ++n) {
      const float* zr = z + size_t(n) * F;
      const float* tr = t + size_t(n) * F;
      const float mx = *std::max_element(zr, zr + F);
      double se = 0;
      for (int f = 0; f < F; ++f) se += std::exp(double(zr[f]) - mx);
      const double lse = mx + std::log(se);
      double tsum = 0;
      for (int f = 0; f < F; ++f) {
        total += tr[f] * (lse - zr[f]);
        tsum += tr[f];
      }
      if (dlogits) {
        float* g = dlogits->data() + size_t(n) * F;
        // d/dz of sum_f t_f (lse - z_f) = softmax * sum(t) - t.
        for (int f = 0; f < F; ++f)
          g[f] = static_cast<float>((std::exp(zr[f] - lse) * tsum - tr[f]) / N);
      }
    }
    return static_cast<float>(total / N);
  }
  // Binary cross-entropy from logits: max(z, 0) - z t + log(1 + exp(-|z|)).
  const double scale = 1.0 / (double(N) * F);
  for (size_t i = 0; i < logits.size(); ++i) {
    const double zi = z[i];
    total += std::max(zi, 0.0) - zi * t[i] + std::log1p(std::exp(-std::abs(zi)));
    if (dlogits) {
      const double p = zi >= 0 ? 1.0 / (1.0 + std::exp(-zi)) : std::exp(zi) / (1.0 + std::exp(zi));
      dlogits->at(i) = static_cast<float>((p - t[i]) * scale);
    }
  }
  return static_cast<float>(total * scale);
}

}  // namespace tagnet
