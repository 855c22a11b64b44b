// Keras ImageDataGenerator's geometric augmentation: one affine map about the picture's centre,
// sampled bilinearly (scipy.ndimage.affine_transform with order=1), then an optional mirror.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tagnet/io/image.h"

// The same seed must give the same pixels natively and in WASM, which has no fused
// multiply-add: keep GCC from fusing under -march=haswell.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace tagnet {

namespace {

// 3x3 affine matrices in (row, col, 1) coordinates, as keras_preprocessing builds them.
struct Mat3 {
  double m[3][3];
  static Mat3 identity() { return {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}; }
  Mat3 operator*(const Mat3& o) const {
    Mat3 r{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        r.m[i][j] = m[i][0] * o.m[0][j] + m[i][1] * o.m[1][j] + m[i][2] * o.m[2][j];
    return r;
  }
};

constexpr double kPi = 3.14159265358979323846;

// Coordinates this far out are already meaningless for every fill mode; the clamp keeps the
// integer conversion below defined for any parameters.
constexpr double kFar = 1e7;

// Maps a possibly out-of-range index into [0, n) for the non-constant modes.
inline int fold(int i, int n, FillMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case FillMode::kReflect: {
      const int period = 2 * n;
      int m = i % period;
      if (m < 0) m += period;
      return m < n ? m : period - 1 - m;
    }
    case FillMode::kWrap: {
      int m = i % n;
      return m < 0 ? m + n : m;
    }
    default:
      return i < 0 ? 0 : n - 1;
  }
}

bool is_identity(const AffineParams& p) {
  return p.theta_deg == 0 && p.tx == 0 && p.ty == 0 && p.shear_deg == 0 && p.zx == 1 &&
         p.zy == 1;
}

// Keras: a fraction of the size below 1, pixels from 1 up.
float draw_shift(float range, int size, Rng& rng) {
  const float s = rng.uniform(-range, range);
  return range < 1 ? s * size : s;
}

}  // namespace

std::string fill_mode_name(FillMode m) {
  switch (m) {
    case FillMode::kNearest: return "nearest";
    case FillMode::kConstant: return "constant";
    case FillMode::kReflect: return "reflect";
    case FillMode::kWrap: return "wrap";
  }
  return "nearest";
}

FillMode fill_mode_from_name(const std::string& s) {
  for (auto m : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap})
    if (fill_mode_name(m) == s) return m;
  throw std::invalid_argument("unknown fill mode '" + s + "' (nearest, constant, reflect, wrap)");
}

bool Augment::active() const {
  return rotation_deg != 0 || width_shift != 0 || height_shift != 0 || shear_deg != 0 ||
         zoom != 0 || hflip;
}

AffineParams draw_affine(const Augment& a, int H, int W, Rng& rng) {
  AffineParams p;
  if (a.rotation_deg != 0) p.theta_deg = rng.uniform(-a.rotation_deg, a.rotation_deg);
  if (a.height_shift != 0) p.tx = draw_shift(a.height_shift, H, rng);
  if (a.width_shift != 0) p.ty = draw_shift(a.width_shift, W, rng);
  if (a.shear_deg != 0) p.shear_deg = rng.uniform(-a.shear_deg, a.shear_deg);
  if (a.zoom != 0) {
    p.zx = rng.uniform(1 - a.zoom, 1 + a.zoom);
    p.zy = rng.uniform(1 - a.zoom, 1 + a.zoom);
  }
  if (a.hflip) p.flip = rng.uniform() < 0.5f;
  return p;
}

void apply_affine(const float* src, int H, int W, int C, float* dst, const AffineParams& p,
                  FillMode fill, float cval) {
  // src, dst: (H, W, C)
  const size_t pixel = size_t(C);
  if (is_identity(p)) {
    if (!p.flip) {
      std::memcpy(dst, src, sizeof(float) * size_t(H) * W * C);
      return;
    }
    for (int r = 0; r < H; ++r)
      for (int c = 0; c < W; ++c)
        std::memcpy(dst + (size_t(r) * W + c) * pixel, src + (size_t(r) * W + (W - 1 - c)) * pixel,
                    sizeof(float) * pixel);
    return;
  }

  // Same composition and order as keras_preprocessing.apply_affine_transform.
  Mat3 a = Mat3::identity();
  if (p.theta_deg != 0) {
    const double t = p.theta_deg * kPi / 180, c = std::cos(t), s = std::sin(t);
    a = Mat3{{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
  }
  if (p.tx != 0 || p.ty != 0) a = a * Mat3{{{1, 0, p.tx}, {0, 1, p.ty}, {0, 0, 1}}};
  if (p.shear_deg != 0) {
    const double s = p.shear_deg * kPi / 180;
    a = a * Mat3{{{1, -std::sin(s), 0}, {0, std::cos(s), 0}, {0, 0, 1}}};
  }
  if (p.zx != 1 || p.zy != 1) a = a * Mat3{{{p.zx, 0, 0}, {0, p.zy, 0}, {0, 0, 1}}};
  const double orow = H / 2.0 - 0.5, ocol = W / 2.0 - 0.5;
  a = Mat3{{{1, 0, orow}, {0, 1, ocol}, {0, 0, 1}}} * a *
      Mat3{{{1, 0, -orow}, {0, 1, -ocol}, {0, 0, 1}}};

  // Outside [0, n - 1] by more than rounding noise counts as outside for kConstant.
  constexpr double kEdge = 1e-6;
  constexpr double kSnap = 1e-9;
  for (int r = 0; r < H; ++r) {
    for (int c = 0; c < W; ++c) {
      float* out = dst + (size_t(r) * W + (p.flip ? W - 1 - c : c)) * pixel;
      double y = a.m[0][0] * r + a.m[0][1] * c + a.m[0][2];
      double x = a.m[1][0] * r + a.m[1][1] * c + a.m[1][2];
      if (!(y > -kFar)) y = -kFar;  // also catches NaN
      if (!(x > -kFar)) x = -kFar;
      y = std::min(y, kFar);
      x = std::min(x, kFar);
      // cos(90 deg) is 6e-17, not 0: without the snap, right-angle rotations would blend a
      // 1e-16 share of a neighbour into exact pixels.
      if (std::abs(y - std::nearbyint(y)) < kSnap) y = std::nearbyint(y);
      if (std::abs(x - std::nearbyint(x)) < kSnap) x = std::nearbyint(x);
      if (fill == FillMode::kConstant) {
        if (y < -kEdge || y > H - 1 + kEdge || x < -kEdge || x > W - 1 + kEdge) {
          for (int k = 0; k < C; ++k) out[k] = cval;
          continue;
        }
        y = std::clamp(y, 0.0, double(H - 1));
        x = std::clamp(x, 0.0, double(W - 1));
      }
      const double fy = std::floor(y), fx = std::floor(x);
      const float wy = static_cast<float>(y - fy), wx = static_cast<float>(x - fx);
      const int iy = static_cast<int>(fy), ix = static_cast<int>(fx);
      const int r0 = fold(iy, H, fill), r1 = fold(iy + 1, H, fill);
      const int c0 = fold(ix, W, fill), c1 = fold(ix + 1, W, fill);
      const float* p00 = src + (size_t(r0) * W + c0) * pixel;
      const float* p01 = src + (size_t(r0) * W + c1) * pixel;
      const float* p10 = src + (size_t(r1) * W + c0) * pixel;
      const float* p11 = src + (size_t(r1) * W + c1) * pixel;
      const float w00 = (1 - wy) * (1 - wx), w01 = (1 - wy) * wx;
      const float w10 = wy * (1 - wx), w11 = wy * wx;
      for (int k = 0; k < C; ++k)
        out[k] = w00 * p00[k] + w01 * p01[k] + w10 * p10[k] + w11 * p11[k];
    }
  }
}

void augment_image(const float* src, int H, int W, int C, float* dst, const Augment& a,
                   Rng& rng) {
  if (!a.active()) {
    std::memcpy(dst, src, sizeof(float) * size_t(H) * W * C);
    return;
  }
  apply_affine(src, H, W, C, dst, draw_affine(a, H, W, rng), a.fill, a.cval);
}

}  // namespace tagnet
