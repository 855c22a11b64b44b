// Reference kernels: the test oracle. Plain loops, written to be read rather than to be fast;
// long sums accumulate in double so the oracle is closer to exact than any float kernel.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels.h"

namespace tagnet {
namespace kern {

void gemm_ref(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
              long csb, float* C, long ldc, bool accumulate) {
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double s = 0.0;
      for (int k = 0; k < K; ++k) {
        s += static_cast<double>(A[i * rsa + k * csa]) * B[k * rsb + j * csb];
      }
      // Not reading C unless accumulating: with accumulate == false C may hold garbage (NaN).
      float* c = C + i * ldc + j;
      *c = accumulate ? static_cast<float>(*c + s) : static_cast<float>(s);
    }
  }
}

void conv2d_forward_ref(const ConvDims& d, const float* x /* (N, H, W, C) */,
                        const float* w /* (K, KH, KW, C) */, const float* b /* (K) */, Act act,
                        float* y /* (N, OH, OW, K) */) {
  for (int n = 0; n < d.N; ++n) {
    for (int oh = 0; oh < d.OH; ++oh) {
      for (int ow = 0; ow < d.OW; ++ow) {
        for (int k = 0; k < d.K; ++k) {
          double s = b ? b[k] : 0.0;
          for (int kh = 0; kh < d.KH; ++kh) {
            const int ih = oh * d.SH - d.PT + kh;
            if (ih < 0 || ih >= d.H) continue;  // zero padding contributes nothing
            for (int kw = 0; kw < d.KW; ++kw) {
              const int iw = ow * d.SW - d.PL + kw;
              if (iw < 0 || iw >= d.W) continue;
              const float* xp = x + ((static_cast<size_t>(n) * d.H + ih) * d.W + iw) * d.C;
              const float* wp = w + ((static_cast<size_t>(k) * d.KH + kh) * d.KW + kw) * d.C;
              for (int c = 0; c < d.C; ++c) s += static_cast<double>(xp[c]) * wp[c];
            }
          }
          if (act == Act::kRelu && s < 0.0) s = 0.0;
          y[((static_cast<size_t>(n) * d.OH + oh) * d.OW + ow) * d.K + k] = static_cast<float>(s);
        }
      }
    }
  }
}

void conv2d_backward_data_ref(const ConvDims& d, const float* dy /* (N, OH, OW, K) */,
                              const float* w /* (K, KH, KW, C) */,
                              float* dx /* (N, H, W, C) */) {
  // Scatter each output gradient back over its receptive field; a double buffer keeps the
  // overlapping contributions exact before the single store into dx.
  std::vector<double> acc(static_cast<size_t>(d.N) * d.H * d.W * d.C, 0.0);
  for (int n = 0; n < d.N; ++n) {
    for (int oh = 0; oh < d.OH; ++oh) {
      for (int ow = 0; ow < d.OW; ++ow) {
        for (int k = 0; k < d.K; ++k) {
          const double g = dy[((static_cast<size_t>(n) * d.OH + oh) * d.OW + ow) * d.K + k];
          for (int kh = 0; kh < d.KH; ++kh) {
            const int ih = oh * d.SH - d.PT + kh;
            if (ih < 0 || ih >= d.H) continue;
            for (int kw = 0; kw < d.KW; ++kw) {
              const int iw = ow * d.SW - d.PL + kw;
              if (iw < 0 || iw >= d.W) continue;
              double* ap = acc.data() + ((static_cast<size_t>(n) * d.H + ih) * d.W + iw) * d.C;
              const float* wp = w + ((static_cast<size_t>(k) * d.KH + kh) * d.KW + kw) * d.C;
              for (int c = 0; c < d.C; ++c) ap[c] += g * wp[c];
            }
          }
        }
      }
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

void conv2d_backward_filter_ref(const ConvDims& d, const float* x /* (N, H, W, C) */,
                                const float* dy /* (N, OH, OW, K) */,
                                float* dw /* (K, KH, KW, C) */, float* db /* (K) or null */) {
  std::vector<double> acc(static_cast<size_t>(d.K) * d.R(), 0.0);
  std::vector<double> bacc(d.K, 0.0);
  for (int n = 0; n < d.N; ++n) {
    for (int oh = 0; oh < d.OH; ++oh) {
      for (int ow = 0; ow < d.OW; ++ow) {
        for (int k = 0; k < d.K; ++k) {
          const double g = dy[((static_cast<size_t>(n) * d.OH + oh) * d.OW + ow) * d.K + k];
          bacc[k] += g;
          for (int kh = 0; kh < d.KH; ++kh) {
            const int ih = oh * d.SH - d.PT + kh;
            if (ih < 0 || ih >= d.H) continue;
            for (int kw = 0; kw < d.KW; ++kw) {
              const int iw = ow * d.SW - d.PL + kw;
              if (iw < 0 || iw >= d.W) continue;
              const float* xp = x + ((static_cast<size_t>(n) * d.H + ih) * d.W + iw) * d.C;
              double* ap = acc.data() + ((static_cast<size_t>(k) * d.KH + kh) * d.KW + kw) * d.C;
              for (int c = 0; c < d.C; ++c) ap[c] += g * xp[c];
            }
          }
        }
      }
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) dw[i] = static_cast<float>(acc[i]);
  if (db) {
    for (int k = 0; k < d.K; ++k) db[k] = static_cast<float>(bacc[k]);
  }
}

void dense_forward_ref(int N, int I, int O, const float* x /* (N, I) */,
                       const float* w /* (O, I) */, const float* b /* (O) */, Act act,
                       float* y /* (N, O) */) {
  for (int n = 0; n < N; ++n) {
    const float* xr = x + static_cast<size_t>(n) * I;
    for (int o = 0; o < O; ++o) {
      const float* wr = w + static_cast<size_t>(o) * I;
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < I; ++i) s += static_cast<double>(xr[i]) * wr[i];
      if (act == Act::kRelu && s < 0.0) s = 0.0;
      y[static_cast<size_t>(n) * O + o] = static_cast<float>(s);
    }
  }
}

void dense_backward_data_ref(int N, int I, int O, const float* dy /* (N, O) */,
                             const float* w /* (O, I) */, float* dx /* (N, I) */) {
  for (int n = 0; n < N; ++n) {
    const float* gr = dy + static_cast<size_t>(n) * O;
    float* dr = dx + static_cast<size_t>(n) * I;
    for (int i = 0; i < I; ++i) {
      double s = 0.0;
      for (int o = 0; o < O; ++o) {
        s += static_cast<double>(gr[o]) * w[static_cast<size_t>(o) * I + i];
      }
      dr[i] = static_cast<float>(s);
    }
  }
}

void dense_backward_filter_ref(int N, int I, int O, const float* x /* (N, I) */,
                               const float* dy /* (N, O) */, float* dw /* (O, I) */,
                               float* db /* (O) or null */) {
  for (int o = 0; o < O; ++o) {
    for (int i = 0; i < I; ++i) {
      double s = 0.0;
      for (int n = 0; n < N; ++n) {
        s += static_cast<double>(dy[static_cast<size_t>(n) * O + o]) *
             x[static_cast<size_t>(n) * I + i];
      }
      dw[static_cast<size_t>(o) * I + i] = static_cast<float>(s);
    }
    if (db) {
      double s = 0.0;
      for (int n = 0; n < N; ++n) s += dy[static_cast<size_t>(n) * O + o];
      db[o] = static_cast<float>(s);
    }
  }
}

namespace {

// Offset into x (N, H, W, C) of the first maximum of one pooling window; strict `>` keeps the
// earliest position in row-major window order when values tie.
size_t maxpool_argmax(const PoolDims& d, const float* x, int n, int oh, int ow, int c) {
  size_t best = ((static_cast<size_t>(n) * d.H + oh * d.SH) * d.W + ow * d.SW) * d.C + c;
  for (int ph = 0; ph < d.PH; ++ph) {
    for (int pw = 0; pw < d.PW; ++pw) {
      const size_t at =
          ((static_cast<size_t>(n) * d.H + oh * d.SH + ph) * d.W + ow * d.SW + pw) * d.C + c;
      if (x[at] > x[best]) best = at;
    }
  }
  return best;
}

}  // namespace

void maxpool_forward_ref(const PoolDims& d, const float* x /* (N, H, W, C) */,
                         float* y /* (N, OH, OW, C) */) {
  for (int n = 0; n < d.N; ++n) {
    for (int oh = 0; oh < d.OH; ++oh) {
      for (int ow = 0; ow < d.OW; ++ow) {
        for (int c = 0; c < d.C; ++c) {
          y[((static_cast<size_t>(n) * d.OH + oh) * d.OW + ow) * d.C + c] =
              x[maxpool_argmax(d, x, n, oh, ow, c)];
        }
      }
    }
  }
}

void maxpool_backward_ref(const PoolDims& d, const float* x /* (N, H, W, C) */,
                          const float* y /* (N, OH, OW, C) */, const float* dy /* like y */,
                          float* dx /* like x */) {
  // The argmax is recomputed from x; y is the forward output and adds no information here.
  std::fill(dx, dx + static_cast<size_t>(d.N) * d.H * d.W * d.C, 0.0f);
  for (int n = 0; n < d.N; ++n) {
    for (int oh = 0; oh < d.OH; ++oh) {
      for (int ow = 0; ow < d.OW; ++ow) {
        for (int c = 0; c < d.C; ++c) {
          const size_t at = maxpool_argmax(d, x, n, oh, ow, c);
          if (!d.relu_input || x[at] > 0.0f)
            dx[at] += dy[((static_cast<size_t>(n) * d.OH + oh) * d.OW + ow) * d.C + c];
        }
      }
    }
  }
}

void gap_forward_ref(int N, int HW, int C, const float* x /* (N, HW, C) */,
                     float* y /* (N, C) */) {
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c) {
      double s = 0.0;
      for (int p = 0; p < HW; ++p) s += x[(static_cast<size_t>(n) * HW + p) * C + c];
      y[static_cast<size_t>(n) * C + c] = static_cast<float>(s / HW);
    }
  }
}

void gap_backward_ref(int N, int HW, int C, const float* dy /* (N, C) */,
                      float* dx /* (N, HW, C) */) {
  for (int n = 0; n < N; ++n) {
    for (int p = 0; p < HW; ++p) {
      for (int c = 0; c < C; ++c) {
        float* q = dx + (static_cast<size_t>(n) * HW + p) * C + c;
        *q = static_cast<float>(static_cast<double>(dy[static_cast<size_t>(n) * C + c]) / HW);
      }
    }
  }
}

void relu_forward_ref(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_ref(size_t n, const float* y, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) {
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  }
}

void sigmoid_forward_ref(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; ++i) {
    y[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x[i]))));
  }
}

void sigmoid_backward_ref(size_t n, const float* y, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) {
    const double s = y[i];
    dx[i] = static_cast<float>(dy[i] * s * (1.0 - s));
  }
}

void softmax_forward_ref(int rows, int cols, const float* x /* (rows, cols) */,
                         float* y /* (rows, cols) */) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * cols;
    float* yr = y + static_cast<size_t>(r) * cols;
    // Subtracting the row maximum keeps exp() from overflowing on large logits.
    const double mx = *std::max_element(xr, xr + cols);
    double sum = 0.0;
    for (int c = 0; c < cols; ++c) sum += std::exp(xr[c] - mx);
    for (int c = 0; c < cols; ++c) yr[c] = static_cast<float>(std::exp(xr[c] - mx) / sum);
  }
}

void softmax_backward_ref(int rows, int cols, const float* y /* (rows, cols) */,
                          const float* dy /* like y */, float* dx /* like y */) {
  for (int r = 0; r < rows; ++r) {
    const float* yr = y + static_cast<size_t>(r) * cols;
    const float* gr = dy + static_cast<size_t>(r) * cols;
    float* dr = dx + static_cast<size_t>(r) * cols;
    double dot = 0.0;
    for (int c = 0; c < cols; ++c) dot += static_cast<double>(gr[c]) * yr[c];
    for (int c = 0; c < cols; ++c) dr[c] = static_cast<float>(yr[c] * (gr[c] - dot));
  }
}

void batchnorm_forward_train_ref(int M, int C, const float* x /* (M, C) */,
                                 const float* gamma /* (C) */, const float* beta /* (C) */,
                                 float eps, float* y /* (M, C) */, float* mean /* (C) */,
                                 float* invstd /* (C) */) {
  for (int c = 0; c < C; ++c) {
    // Two passes: the one-pass E[x^2] - E[x]^2 form loses precision when |mean| >> std.
    double s = 0.0;
    for (int m = 0; m < M; ++m) s += x[static_cast<size_t>(m) * C + c];
    const double mu = s / M;
    double v = 0.0;
    for (int m = 0; m < M; ++m) {
      const double t = x[static_cast<size_t>(m) * C + c] - mu;
      v += t * t;
    }
    const double is = 1.0 / std::sqrt(v / M + eps);
    mean[c] = static_cast<float>(mu);
    invstd[c] = static_cast<float>(is);
    for (int m = 0; m < M; ++m) {
      const size_t at = static_cast<size_t>(m) * C + c;
      y[at] = static_cast<float>(gamma[c] * (x[at] - mu) * is + beta[c]);
    }
  }
}

void batchnorm_forward_infer_ref(int M, int C, const float* x /* (M, C) */,
                                 const float* gamma /* (C) */, const float* beta /* (C) */,
                                 const float* moving_mean /* (C) */,
                                 const float* moving_var /* (C) */, float eps,
                                 float* y /* (M, C) */) {
  for (int c = 0; c < C; ++c) {
    const double is = 1.0 / std::sqrt(static_cast<double>(moving_var[c]) + eps);
    for (int m = 0; m < M; ++m) {
      const size_t at = static_cast<size_t>(m) * C + c;
      y[at] = static_cast<float>(gamma[c] * (x[at] - static_cast<double>(moving_mean[c])) * is +
                                 beta[c]);
    }
  }
}

void batchnorm_backward_ref(int M, int C, const float* x /* (M, C) */, const float* dy /* (M, C) */,
                            const float* gamma /* (C) */, const float* mean /* (C) */,
                            const float* invstd /* (C) */, float* dx /* (M, C) */,
                            float* dgamma /* (C) */, float* dbeta /* (C) */, bool relu_input) {
  // Training-mode gradient: mean and variance depend on x, which gives the two
  // correction terms beyond gamma * invstd * dy.
  for (int c = 0; c < C; ++c) {
    const double mu = mean[c], is = invstd[c];
    double sdy = 0.0, sdyx = 0.0;
    for (int m = 0; m < M; ++m) {
      const size_t at = static_cast<size_t>(m) * C + c;
      const double xhat = (x[at] - mu) * is;
      sdy += dy[at];
      sdyx += dy[at] * xhat;
    }
    dbeta[c] = static_cast<float>(sdy);
    dgamma[c] = static_cast<float>(sdyx);
    const double scale = gamma[c] * is;
    for (int m = 0; m < M; ++m) {
      const size_t at = static_cast<size_t>(m) * C + c;
      const double xhat = (x[at] - mu) * is;
      dx[at] = relu_input && !(x[at] > 0.0f)
                   ? 0.0f
                   : static_cast<float>(scale * (dy[at] - sdy / M - xhat * sdyx / M));
    }
  }
}

// The elementwise kernels below compute in float, one multiply-add per element: that is exact
// enough for an oracle, and every backend then gives the same numbers.

void batchnorm_backward_infer_ref(int M, int C, const float* dy /* (M, C) */,
                                  const float* gamma /* (C) */, const float* moving_var /* (C) */,
                                  float eps, float* dx /* (M, C) */) {
  std::vector<float> scale(C);
  for (int c = 0; c < C; ++c) scale[c] = gamma[c] / std::sqrt(moving_var[c] + eps);
  for (int m = 0; m < M; ++m) {
    for (int c = 0; c < C; ++c) {
      const size_t at = static_cast<size_t>(m) * C + c;
      dx[at] = dy[at] * scale[c];
    }
  }
}

void dropout_forward_ref(size_t n, const float* x, const float* mask, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * mask[i];
}

void dropout_backward_ref(size_t n, const float* mask, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * mask[i];
}

void identity_forward_ref(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i];
}

void identity_backward_ref(size_t n, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i];
}

// ---- the ref table: adapters from the Backend signatures, ignoring state and Exec ----

namespace {

void gemm(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long rsb,
          long csb, float* C, long ldc, bool accumulate, const Exec&) {
  gemm_ref(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
}

void conv2d_forward(const ConvDims& d, const float* x, const float* w, const float* b, Act act,
                    float* y, OpStatePtr&, const Exec&) {
  conv2d_forward_ref(d, x, w, b, act, y);
}

void conv2d_backward_data(const ConvDims& d, const float* dy, const float* w, float* dx,
                          const Exec&) {
  conv2d_backward_data_ref(d, dy, w, dx);
}

void conv2d_backward_filter(const ConvDims& d, const float* x, const float* dy, float* dw,
                            float* db, const Exec&) {
  conv2d_backward_filter_ref(d, x, dy, dw, db);
}

void dense_forward(int N, int I, int O, const float* x, const float* w, const float* b, Act act,
                   float* y, OpStatePtr&, const Exec&) {
  dense_forward_ref(N, I, O, x, w, b, act, y);
}

void dense_backward_data(int N, int I, int O, const float* dy, const float* w, float* dx,
                         const Exec&) {
  dense_backward_data_ref(N, I, O, dy, w, dx);
}

void dense_backward_filter(int N, int I, int O, const float* x, const float* dy, float* dw,
                           float* db, const Exec&) {
  dense_backward_filter_ref(N, I, O, x, dy, dw, db);
}

void maxpool_forward(const PoolDims& d, const float* x, float* y, OpStatePtr&, const Exec&) {
  maxpool_forward_ref(d, x, y);
}

void maxpool_backward(const PoolDims& d, const float* x, const float* y, const float* dy, float* dx,
                      const Exec&) {
  maxpool_backward_ref(d, x, y, dy, dx);
}

void gap_forward(int N, int HW, int C, const float* x, float* y, OpStatePtr&, const Exec&) {
  gap_forward_ref(N, HW, C, x, y);
}

void gap_backward(int N, int HW, int C, const float* dy, float* dx, const Exec&) {
  gap_backward_ref(N, HW, C, dy, dx);
}

void relu_forward(size_t n, const float* x, float* y, OpStatePtr&, const Exec&) {
  relu_forward_ref(n, x, y);
}

void relu_backward(size_t n, const float* y, const float* dy, float* dx, const Exec&) {
  relu_backward_ref(n, y, dy, dx);
}

void sigmoid_forward(size_t n, const float* x, float* y, OpStatePtr&, const Exec&) {
  sigmoid_forward_ref(n, x, y);
}

void sigmoid_backward(size_t n, const float* y, const float* dy, float* dx, const Exec&) {
  sigmoid_backward_ref(n, y, dy, dx);
}

void softmax_forward(int rows, int cols, const float* x, float* y, OpStatePtr&, const Exec&) {
  softmax_forward_ref(rows, cols, x, y);
}

void softmax_backward(int rows, int cols, const float* y, const float* dy, float* dx, const Exec&) {
  softmax_backward_ref(rows, cols, y, dy, dx);
}

void batchnorm_forward_train(int M, int C, const float* x, const float* gamma, const float* beta,
                             float eps, float* y, float* mean, float* invstd, const Exec&) {
  batchnorm_forward_train_ref(M, C, x, gamma, beta, eps, y, mean, invstd);
}

void batchnorm_forward_infer(int M, int C, const float* x, const float* gamma, const float* beta,
                             const float* moving_mean, const float* moving_var, float eps, float* y,
                             const Exec&) {
  batchnorm_forward_infer_ref(M, C, x, gamma, beta, moving_mean, moving_var, eps, y);
}

void batchnorm_backward(int M, int C, const float* x, const float* dy, const float* gamma,
                        const float* mean, const float* invstd, float* dx, float* dgamma,
                        float* dbeta, bool relu_input, const Exec&) {
  batchnorm_backward_ref(M, C, x, dy, gamma, mean, invstd, dx, dgamma, dbeta, relu_input);
}

void batchnorm_backward_infer(int M, int C, const float* dy, const float* gamma,
                              const float* moving_var, float eps, float* dx, const Exec&) {
  batchnorm_backward_infer_ref(M, C, dy, gamma, moving_var, eps, dx);
}

void dropout_forward(size_t n, const float* x, const float* mask, float* y, const Exec&) {
  dropout_forward_ref(n, x, mask, y);
}

void dropout_backward(size_t n, const float* mask, const float* dy, float* dx, const Exec&) {
  dropout_backward_ref(n, mask, dy, dx);
}

void identity_forward(size_t n, const float* x, float* y, const Exec&) {
  identity_forward_ref(n, x, y);
}

void identity_backward(size_t n, const float* dy, float* dx, const Exec&) {
  identity_backward_ref(n, dy, dx);
}

}  // namespace

const Backend* backend_ref() {
  static const Backend table = {
      /* .name                     = */ "ref",
      /* .gemm                     = */ gemm,
      /* .conv2d_forward           = */ conv2d_forward,
      /* .conv2d_backward_data     = */ conv2d_backward_data,
      /* .conv2d_backward_filter   = */ conv2d_backward_filter,
      /* .dense_forward            = */ dense_forward,
      /* .dense_backward_data      = */ dense_backward_data,
      /* .dense_backward_filter    = */ dense_backward_filter,
      /* .maxpool_forward          = */ maxpool_forward,
      /* .maxpool_backward         = */ maxpool_backward,
      /* .gap_forward              = */ gap_forward,
      /* .gap_backward             = */ gap_backward,
      /* .relu_forward             = */ relu_forward,
      /* .relu_backward            = */ relu_backward,
      /* .sigmoid_forward          = */ sigmoid_forward,
      /* .sigmoid_backward         = */ sigmoid_backward,
      /* .softmax_forward          = */ softmax_forward,
      /* .softmax_backward         = */ softmax_backward,
      /* .batchnorm_forward_train  = */ batchnorm_forward_train,
      /* .batchnorm_forward_infer  = */ batchnorm_forward_infer,
      /* .batchnorm_backward       = */ batchnorm_backward,
      /* .batchnorm_backward_infer = */ batchnorm_backward_infer,
      /* .dropout_forward          = */ dropout_forward,
      /* .dropout_backward         = */ dropout_backward,
      /* .identity_forward         = */ identity_forward,
      /* .identity_backward        = */ identity_backward,
  };
  return &table;
}

}  // namespace kern
}  // namespace tagnet
