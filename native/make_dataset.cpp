#include "make_dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "fashion_mnist.h"
#include "tagnet/kernels/engine.h"
#include "tagnet/io/image.h"

namespace tagnet::native {

namespace fs = std::filesystem;

namespace {

constexpr int kSide = 28;            // Fashion-MNIST pictures are kSide x kSide
constexpr int kJpegQuality = 92;

struct Rgb {
  float r = 0, g = 0, b = 0;         // 0..255
};

// h in degrees, s and v in [0, 1].
Rgb hsv(float h, float s, float v) {
  h = std::fmod(h, 360.f);
  if (h < 0) h += 360.f;
  const float c = v * s, x = c * (1 - std::fabs(std::fmod(h / 60.f, 2.f) - 1)), m = v - c;
  float r, g, b;
  if (h < 60) r = c, g = x, b = 0;
  else if (h < 120) r = x, g = c, b = 0;
  else if (h < 180) r = 0, g = c, b = x;
  else if (h < 240) r = 0, g = x, b = c;
  else if (h < 300) r = x, g = 0, b = c;
  else r = c, g = 0, b = x;
  return {(r + m) * 255.f, (g + m) * 255.f, (b + m) * 255.f};
}

// A colour drawn uniformly from an HSV box. The draws are separate statements because the order
// in which function arguments are evaluated is unspecified, and the output must not depend on
// the compiler.
Rgb draw_hsv(Rng& rng, float h_lo, float h_hi, float s_lo, float s_hi, float v_lo, float v_hi) {
  const float h = rng.uniform(h_lo, h_hi);
  const float s = rng.uniform(s_lo, s_hi);
  const float v = rng.uniform(v_lo, v_hi);
  return hsv(h, s, v);
}

float smoothstep(float e0, float e1, float x) {
  const float t = std::clamp((x - e0) / (e1 - e0), 0.f, 1.f);
  return t * t * (3 - 2 * t);
}

// Every picture draws from its own generator, derived from the seed and a picture number, so a
// picture does not change when the pictures before it are drawn differently.
Rng stream(uint64_t seed, uint64_t id) {
  Rng mix(seed ^ (id * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull));
  return Rng(mix.next());
}

struct Split {
  IdxImages images;
  std::vector<uint8_t> labels;
};

Split load_split(const std::string& dir, const std::string& prefix) {
  Split s;
  s.images = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  s.labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (s.images.rows != kSide || s.images.cols != kSide)
    throw std::runtime_error(dir + ": Fashion-MNIST pictures must be 28x28");
  if (s.labels.size() != size_t(s.images.count))
    throw std::runtime_error(dir + ": " + std::to_string(s.images.count) + " pictures but " +
                             std::to_string(s.labels.size()) + " labels");
  return s;
}

// Indices of the pictures whose label is in `classes`, in a seeded random order.
std::vector<size_t> shuffled_pool(const Split& s, const std::vector<int>& classes, Rng rng) {
  std::vector<size_t> pool;
  for (size_t i = 0; i < s.labels.size(); ++i)
    if (std::find(classes.begin(), classes.end(), int(s.labels[i])) != classes.end())
      pool.push_back(i);
  rng.shuffle(pool);
  return pool;
}

// Mean picture of every Fashion-MNIST label over `s`: (10, 28, 28).
std::vector<double> class_means(const Split& s) {
  std::vector<double> mean(10 * kSide * kSide, 0.0);
  std::vector<double> count(10, 0.0);
  for (size_t i = 0; i < s.labels.size(); ++i) {
    const uint8_t* p = s.images.pixels.data() + i * kSide * kSide;
    double* m = mean.data() + size_t(s.labels[i] % 10) * kSide * kSide;
    for (int k = 0; k < kSide * kSide; ++k) m[k] += p[k];
    count[s.labels[i] % 10] += 1;
  }
  for (int c = 0; c < 10; ++c)
    for (int k = 0; k < kSide * kSide; ++k) mean[size_t(c) * kSide * kSide + k] /= std::max(count[c], 1.0);
  return mean;
}

double squared_distance(const uint8_t* p, const double* m) {
  double d = 0;
  for (int k = 0; k < kSide * kSide; ++k) {
    const double e = p[k] - m[k];
    d += e * e;
  }
  return d;
}

// Drops the pictures of `pool` that sit nearly as close to the mean picture of another garment's
// Fashion-MNIST label as to their own: Fashion-MNIST holds shirts drawn like dresses and the
// other way round, which the tutorial's product photos never show.
std::vector<size_t> unambiguous(const Split& s, const std::vector<double>& means,
                                const std::vector<int>& own, const std::vector<int>& others,
                                std::vector<size_t> pool) {
  constexpr double kMargin = 0.8;   // distance to own mean / to the nearest other, at most
  std::vector<size_t> kept;
  for (size_t i : pool) {
    const uint8_t* p = s.images.pixels.data() + i * kSide * kSide;
    const double d_own = squared_distance(p, means.data() + size_t(s.labels[i] % 10) * kSide * kSide);
    double d_other = std::numeric_limits<double>::infinity();
    for (int c : others)
      if (std::find(own.begin(), own.end(), c) == own.end())
        d_other = std::min(d_other, squared_distance(p, means.data() + size_t(c) * kSide * kSide));
    if (std::sqrt(d_own) <= kMargin * std::sqrt(d_other)) kept.push_back(i);
  }
  return kept;
}

// How one picture is drawn. The garment is the Fashion-MNIST grey picture used as coverage and
// shading: Fashion-MNIST negated the product photos, so a high grey value is a dark spot of the
// original photo and the grey level's deviation from the garment's mean is its texture.
struct Look {
  Rgb garment;
  float texture = 0.45f;       // multiplicative shading by the original grey levels
  float sheen = 0.05f;         // additive highlights, what keeps folds visible on black cloth
  float min_frac = 0.55f, max_frac = 0.9f;   // garment's longer side / canvas side
  float max_degrees = 8.f;
  float rotate_chance = 0.5f;
  float shadow_chance = 0.6f;
  float bg_lo = 0.74f, bg_hi = 0.97f;   // background brightness
  bool bg_any_hue = false;              // faint tints of every hue, not only greys and beiges
};

// A light, weakly tinted background: greys, warm beiges and greens, never red- or blue-leaning so
// that it cannot lend its colour to the garment, never dark so that black garments stay visible.
Rgb background_colour(Rng& rng, float v_lo, float v_hi, bool any_hue = false) {
  if (rng.uniform() < 0.4f) return draw_hsv(rng, 0.f, 0.f, 0.f, 0.f, v_lo, v_hi);
  if (any_hue) return draw_hsv(rng, 0.f, 360.f, 0.03f, 0.18f, v_lo, v_hi);
  return draw_hsv(rng, 40.f, 150.f, 0.02f, 0.1f, v_lo, v_hi);
}

// One box-blur pass of radius r along a line of n values `stride` apart, edges clamped.
void blur_line(const float* in, float* out, int n, size_t stride, int r) {
  const float inv = 1.f / float(2 * r + 1);
  auto at = [&](int k) { return in[size_t(std::clamp(k, 0, n - 1)) * stride]; };
  float acc = 0;
  for (int d = -r; d <= r; ++d) acc += at(d);
  for (int k = 0; k < n; ++k) {
    out[size_t(k) * stride] = acc * inv;
    acc += at(k + r + 1) - at(k - r);
  }
}

// Two box passes each way of an (S, S) plane: a tent-shaped blur, near enough to a Gaussian.
void blur(std::vector<float>& p, int S, int r) {
  if (r <= 0) return;
  std::vector<float> tmp(p.size());
  for (int pass = 0; pass < 2; ++pass) {
    for (int y = 0; y < S; ++y) blur_line(&p[size_t(y) * S], &tmp[size_t(y) * S], S, 1, r);
    for (int x = 0; x < S; ++x) blur_line(&tmp[x], &p[x], S, size_t(S), r);
  }
}

Image render(const uint8_t* src /* (28, 28) */, int S, const Look& look, Rng& rng) {
  // Normalise by a high percentile of the garment, not its maximum, so that a white garment
  // with one dark print still covers its whole outline.
  std::vector<uint8_t> levels;
  for (int i = 0; i < kSide * kSide; ++i)
    if (src[i] > 8) levels.push_back(src[i]);
  float ref = 255.f;
  if (!levels.empty()) {
    const size_t k = levels.size() * 9 / 10;
    std::nth_element(levels.begin(), levels.begin() + k, levels.end());
    ref = std::max<float>(levels[k], 24.f);
  }
  float g[kSide * kSide];
  int x_lo = kSide, x_hi = -1, y_lo = kSide, y_hi = -1;
  double sum = 0, count = 0;
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      const float v = std::min(src[y * kSide + x] / ref, 1.f);
      g[y * kSide + x] = v;
      if (v > 0.15f) {
        x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
        y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
        sum += v, count += 1;
      }
    }
  if (x_hi < 0) x_lo = 0, x_hi = kSide - 1, y_lo = 0, y_hi = kSide - 1;
  // Shading reads a copy whose outline pixels (those next to the empty background) take their
  // brightest neighbour's level: the outline is faint because of the photo's blur, not because
  // the cloth is lighter there, and shading it by its own level would draw a pale rim around
  // every garment.
  float shading[kSide * kSide];
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      float lo = 1.f, hi = 0.f;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx, yy = y + dy;
          const float v = xx >= 0 && yy >= 0 && xx < kSide && yy < kSide ? g[yy * kSide + xx] : 0.f;
          lo = std::min(lo, v), hi = std::max(hi, v);
        }
      shading[y * kSide + x] = lo < 0.15f ? hi : g[y * kSide + x];
    }
  const float mean = count > 0 ? float(sum / count) : 0.5f;

  // Geometry: the garment's bounding box is scaled so its longer side spans frac of the canvas,
  // then placed at a random spot that keeps it (rotated) inside the canvas.
  const float box_w = float(x_hi - x_lo + 1), box_h = float(y_hi - y_lo + 1);
  const float frac = rng.uniform(look.min_frac, look.max_frac);
  const float scale = frac * S / std::max(box_w, box_h);
  const float angle = rng.uniform() < look.rotate_chance
                          ? rng.uniform(-look.max_degrees, look.max_degrees) * 3.14159265f / 180.f
                          : 0.f;
  const float ca = std::cos(angle), sa = std::sin(angle);
  const float half_w = 0.5f * (std::fabs(ca) * box_w + std::fabs(sa) * box_h) * scale;
  const float half_h = 0.5f * (std::fabs(sa) * box_w + std::fabs(ca) * box_h) * scale;
  const float cx = half_w < 0.5f * S ? rng.uniform(half_w, S - half_w) : 0.5f * S;
  const float cy = half_h < 0.5f * S ? rng.uniform(half_h, S - half_h) : 0.5f * S;
  const float src_cx = 0.5f * (x_lo + x_hi + 1), src_cy = 0.5f * (y_lo + y_hi + 1);

  auto sample = [](const float* g, float u, float v) {   // bilinear, zero outside; pixel units
    u -= 0.5f, v -= 0.5f;
    const int x0 = int(std::floor(u)), y0 = int(std::floor(v));
    const float fx = u - x0, fy = v - y0;
    auto at = [&](int x, int y) {
      return x < 0 || y < 0 || x >= kSide || y >= kSide ? 0.f : g[y * kSide + x];
    };
    return (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) +
           (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
  };

  const size_t P = size_t(S) * S;
  std::vector<float> level(P), cover(P);   // (S, S) each
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
      const float u = (ca * dx + sa * dy) / scale + src_cx;
      const float v = (-sa * dx + ca * dy) / scale + src_cy;
      level[size_t(y) * S + x] = sample(shading, u, v);
      cover[size_t(y) * S + x] = sample(g, u, v);
    }
  // Thresholding (and shading by) a bilinear upscale draws wavy, faceted outlines; a blur of
  // about half a source pixel before the threshold rounds them the way a real outline is.
  blur(cover, S, int(std::lround(0.3f * scale)));
  blur(level, S, int(std::lround(0.2f * scale)));
  for (float& c : cover) c = smoothstep(0.02f, 0.14f, c);

  // Background: plain, a soft two-colour gradient, or a vignette.
  const Rgb bg0 = background_colour(rng, look.bg_lo, look.bg_hi, look.bg_any_hue);
  Rgb bg1 = bg0;
  const int kind = int(rng.below(3));
  if (kind == 1) {
    const float v0 = std::max({bg0.r, bg0.g, bg0.b}) / 255.f;
    bg1 = background_colour(rng, std::max(look.bg_lo - 0.02f, v0 - 0.1f), std::min(look.bg_hi + 0.01f, v0 + 0.06f),
                            look.bg_any_hue);
  }
  const float gdir = rng.uniform(0.f, 6.2831853f), gx = std::cos(gdir), gy = std::sin(gdir);
  const float vignette = kind == 2 ? rng.uniform(0.03f, 0.07f) : 0.f;

  std::vector<float> shadow(P, 0.f);
  float shadow_strength = 0;
  if (rng.uniform() < look.shadow_chance) {
    shadow_strength = rng.uniform(0.12f, 0.3f);
    const int ox = int(std::lround(rng.uniform(-0.03f, 0.03f) * S));
    const int oy = int(std::lround(rng.uniform(0.0f, 0.04f) * S));
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        const int sx = x - ox, sy = y - oy;
        if (sx >= 0 && sy >= 0 && sx < S && sy < S)
          shadow[size_t(y) * S + x] = cover[size_t(sy) * S + sx];
      }
    blur(shadow, S, std::max(1, S / 60));
  }

  // Light falls on the garment from one side.
  const float ldir = rng.uniform(0.f, 6.2831853f), lx = std::cos(ldir), ly = std::sin(ldir);
  const float light = rng.uniform(0.f, 0.1f);
  const float noise_sigma = rng.uniform(0.5f, 3.5f);

  Image img;
  img.width = img.height = S;
  img.rgb.resize(P * 3);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const size_t i = size_t(y) * S + x;
      const float nx = (x + 0.5f) / S - 0.5f, ny = (y + 0.5f) / S - 0.5f;
      const float t = std::clamp(0.5f + nx * gx + ny * gy, 0.f, 1.f);
      float dim = 1.f - vignette * 4.f * (nx * nx + ny * ny);
      dim *= 1.f - shadow_strength * shadow[i];
      const Rgb bg{(bg0.r + (bg1.r - bg0.r) * t) * dim, (bg0.g + (bg1.g - bg0.g) * t) * dim,
                   (bg0.b + (bg1.b - bg0.b) * t) * dim};

      // Lightening is capped lower than darkening so that light garments keep their contrast
      // with the light background.
      const float tex = std::clamp(mean - level[i], -0.5f, 0.35f);
      const float shade = (1.f + look.texture * tex) * (1.f + light * 2.f * (nx * lx + ny * ly));
      const float add = look.sheen * std::max(tex, 0.f) * 255.f;
      const Rgb fg{look.garment.r * shade + add, look.garment.g * shade + add,
                   look.garment.b * shade + add};

      const float a = cover[i];
      // Sum of three uniforms: near-Gaussian grain without libm, so it is the same everywhere.
      float n = rng.uniform();
      n += rng.uniform();
      n += rng.uniform();
      n = noise_sigma * 2.f * (n - 1.5f);
      const float out[3] = {bg.r + (fg.r - bg.r) * a + n, bg.g + (fg.g - bg.g) * a + n,
                            bg.b + (fg.b - bg.b) * a + n};
      for (int c = 0; c < 3; ++c)
        img.rgb[i * 3 + c] = static_cast<uint8_t>(std::clamp(out[c], 0.f, 255.f) + 0.5f);
    }
  return img;
}

enum class Colour { kBlack, kBlue, kRed, kWhite, kGreen, kYellow, kAny };
enum class Garment { kJeans, kDress, kShirt, kPullover, kCoat, kSneaker, kBoot };

struct Kind {
  std::string name;
  Colour colour;
  Garment garment;
  int share = 1;   // pictures: share x per_class
};

const Kind kKinds[] = {
    {"black_jeans", Colour::kBlack, Garment::kJeans},
    {"blue_dress", Colour::kBlue, Garment::kDress},
    {"blue_jeans", Colour::kBlue, Garment::kJeans},
    {"blue_shirt", Colour::kBlue, Garment::kShirt},
    {"red_dress", Colour::kRed, Garment::kDress},
    {"red_shirt", Colour::kRed, Garment::kShirt},
};
const Kind kUnseen = {"black_dress", Colour::kBlack, Garment::kDress};

constexpr std::pair<Colour, const char*> kColours[] = {
    {Colour::kBlack, "black"}, {Colour::kBlue, "blue"},   {Colour::kRed, "red"},
    {Colour::kWhite, "white"}, {Colour::kGreen, "green"}, {Colour::kYellow, "yellow"},
};
constexpr std::pair<Garment, const char*> kGarments[] = {
    {Garment::kJeans, "jeans"},       {Garment::kDress, "dress"},     {Garment::kShirt, "shirt"},
    {Garment::kPullover, "pullover"}, {Garment::kCoat, "coat"},       {Garment::kSneaker, "sneaker"},
    {Garment::kBoot, "boot"},
};

Look clothing_look(const Kind& kind, Rng& rng) {
  Look look;
  switch (kind.colour) {
    case Colour::kBlack: {
      // Near-black with a slight cool or warm tint.
      const float v = rng.uniform(14.f, 58.f);
      look.garment = {v + rng.uniform(-4.f, 4.f), v + rng.uniform(-4.f, 4.f),
                      v + rng.uniform(-4.f, 6.f)};
      look.texture = 0.6f;
      look.sheen = 0.16f;
      break;
    }
    case Colour::kBlue:
      // Navy through denim to light blue; jeans keep to the greyer denim hues.
      look.garment = kind.garment == Garment::kJeans
                         ? draw_hsv(rng, 205.f, 222.f, 0.45f, 0.75f, 0.3f, 0.72f)
                         : draw_hsv(rng, 200.f, 235.f, 0.45f, 0.92f, 0.28f, 0.92f);
      break;
    case Colour::kRed:
      // Dark red through bright red to crimson.
      look.garment = draw_hsv(rng, -14.f, 5.f, 0.7f, 0.95f, 0.4f, 0.95f);
      break;
    case Colour::kWhite:
      look.garment = draw_hsv(rng, 30.f, 60.f, 0.f, 0.06f, 0.86f, 0.98f);
      look.texture = 0.7f;
      break;
    case Colour::kGreen:
      look.garment = draw_hsv(rng, 95.f, 150.f, 0.45f, 0.9f, 0.3f, 0.85f);
      break;
    case Colour::kYellow:
      look.garment = draw_hsv(rng, 45.f, 58.f, 0.6f, 0.95f, 0.8f, 1.f);
      break;
    case Colour::kAny:
      // Muted tints of every hue, greys and browns, short of the named colours (no near-black,
      // no strong blue, red, green or yellow): the garment's shape has to tell its kind.
      look.garment = draw_hsv(rng, 0.f, 360.f, 0.f, 0.35f, 0.32f, 0.84f);
      look.texture = rng.uniform(0.45f, 0.9f);
      break;
  }
  return look;
}

// Fashion-MNIST labels: 0 T-shirt, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
// 7 sneaker, 8 bag, 9 ankle boot.
std::vector<int> classes_of(Garment g) {
  switch (g) {
    case Garment::kJeans: return {1};
    case Garment::kDress: return {3};
    case Garment::kShirt: break;
    case Garment::kPullover: return {2};
    case Garment::kCoat: return {4};
    case Garment::kSneaker: return {7};
    case Garment::kBoot: return {9};
  }
  return {0, 6};
}

// The examples are what a reader tries a trained network on first, so they are the most typical
// of a seeded sample (closest to their class's mean training picture) before the odd ones that
// Fashion-MNIST also holds. Returns the sample reordered, most typical first.
std::vector<size_t> most_typical(const Split& test, const Split& train, std::vector<size_t> pool) {
  const std::vector<double> mean = class_means(train);
  pool.resize(std::min<size_t>(pool.size(), 60));
  std::vector<std::pair<double, size_t>> scored;
  for (size_t i : pool) {
    const uint8_t* p = test.images.pixels.data() + i * kSide * kSide;
    scored.emplace_back(squared_distance(p, mean.data() + size_t(test.labels[i] % 10) * kSide * kSide), i);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  for (size_t k = 0; k < pool.size(); ++k) pool[k] = scored[k].second;
  return pool;
}

std::string numbered(int i, const char* ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05d.%s", i, ext);
  return buf;
}

fs::path destination(const std::string& out_dir) {
  if (out_dir.empty()) throw std::invalid_argument("output directory must not be empty");
  fs::path out = fs::path(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();   // "dir/" names dir
  return out;
}

// Called before the slow work starts, and again just before the rename.
void check_destination(const fs::path& out, bool overwrite) {
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out))
    throw std::runtime_error(out.string() + " exists and is not a directory");
  if (!fs::is_empty(out) && !overwrite)
    throw std::runtime_error(out.string() +
                             " already exists and is not empty; pass overwrite to replace it");
}

// Builds the dataset into a sibling temporary directory and renames it into place; removes the
// temporary directory if anything fails.
template <typename Build>
MakeDatasetReport write_atomically(const fs::path& out, bool overwrite, Build build) {
  const std::string pid = std::to_string(::getpid());
  fs::path tmp = out, old = out;
  tmp += ".tmp-" + pid;
  old += ".old-" + pid;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    MakeDatasetReport report = build(tmp);
    check_destination(out, overwrite);
    if (fs::exists(out)) {
      fs::remove_all(old);
      fs::rename(out, old);
      try {
        fs::rename(tmp, out);
      } catch (...) {
        std::error_code ec;
        fs::rename(old, out, ec);
        throw;
      }
      fs::remove_all(old);
    } else {
      fs::rename(tmp, out);
    }
    return report;
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace

namespace {

// Folders of colour + garment pictures (`kinds`, drawn by `look_of`) from Fashion-MNIST train
// pictures, and examples/ with three test pictures of each fashion-color kind and of black_dress.
// `tutorial_garments` keeps to the pictures that look like their garment only, as the
// tutorial's product photos do; with seven garments that would leave too few pullovers.
template <typename LookOf>
MakeDatasetReport make_colour_garment(const std::string& out_dir, const std::string& fmnist_dir,
                                      uint64_t seed, int per_class, int size, bool overwrite,
                                      const std::vector<Kind>& kinds, LookOf look_of, bool tutorial_garments) {
  if (per_class < 1) throw std::invalid_argument("per_class must be at least 1");
  if (size < 16 || size > 4096) throw std::invalid_argument("size must be in 16..4096");
  const fs::path out = destination(out_dir);
  check_destination(out, overwrite);
  const Split train = load_split(fmnist_dir, "train");
  const Split test = load_split(fmnist_dir, "t10k");

  // Folders sharing a garment take disjoint pictures of it, so that e.g. blue_jeans and
  // black_jeans never show the same trousers.
  std::vector<Garment> garments;
  for (const auto& [g, name] : kGarments)
    if (std::any_of(kinds.begin(), kinds.end(), [g = g](const Kind& k) { return k.garment == g; }))
      garments.push_back(g);
  std::vector<std::vector<size_t>> picks(kinds.size());
  const std::vector<double> means = class_means(train);
  std::vector<int> all_garment_labels;
  for (Garment g : garments)
    for (int c : classes_of(g)) all_garment_labels.push_back(c);
  for (Garment g : garments) {
    std::vector<size_t> pool = shuffled_pool(train, classes_of(g), stream(seed, 1 + int(g)));
    if (tutorial_garments) pool = unambiguous(train, means, classes_of(g), all_garment_labels, std::move(pool));
    size_t next = 0;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (kinds[k].garment != g) continue;
      const size_t count = size_t(per_class) * size_t(kinds[k].share);
      if (next + count > pool.size())
        throw std::invalid_argument("per_class " + std::to_string(per_class) +
                                    " needs more Fashion-MNIST pictures than there are");
      picks[k].assign(pool.begin() + next, pool.begin() + next + count);
      next += count;
    }
  }

  return write_atomically(out, overwrite, [&](const fs::path& root) {
    MakeDatasetReport report;
    for (size_t k = 0; k < kinds.size(); ++k) {
      const fs::path dir = root / "dataset" / kinds[k].name;
      fs::create_directories(dir);
      for (size_t i = 0; i < picks[k].size(); ++i) {
        Rng rng = stream(seed, (uint64_t(k + 1) << 32) | uint64_t(i));
        const Look look = look_of(kinds[k], rng);
        const uint8_t* src = train.images.pixels.data() + picks[k][i] * kSide * kSide;
        save_jpeg((dir / numbered(int(i), "jpg")).string(), render(src, size, look, rng), kJpegQuality);
      }
      report.per_folder.emplace_back(std::string("dataset/") + kinds[k].name, picks[k].size());
      report.images += picks[k].size();
    }

    // Three unseen test pictures of every kind and of the combination no folder holds.
    const fs::path dir = root / "examples";
    fs::create_directories(dir);
    std::vector<Kind> examples(std::begin(kKinds), std::end(kKinds));
    examples.push_back(kUnseen);
    size_t written = 0;
    std::vector<size_t> pools[3];
    size_t used[3] = {0, 0, 0};
    for (Garment g : {Garment::kJeans, Garment::kDress, Garment::kShirt})
      pools[int(g)] = most_typical(
          test, train, shuffled_pool(test, classes_of(g), stream(seed, 100 + int(g))));
    for (size_t k = 0; k < examples.size(); ++k) {
      const Garment g = examples[k].garment;
      for (int j = 0; j < 3; ++j) {
        const size_t src_index = pools[int(g)].at(used[int(g)]++);
        Rng rng = stream(seed, (uint64_t(1000 + k) << 32) | uint64_t(j));
        const Look look = clothing_look(examples[k], rng);
        char name[64];
        std::snprintf(name, sizeof name, "%s_%02d.jpg", examples[k].name.c_str(), j + 1);
        save_jpeg((dir / name).string(),
                  render(test.images.pixels.data() + src_index * kSide * kSide, size, look, rng),
                  kJpegQuality);
        ++written;
      }
    }
    report.per_folder.emplace_back("examples", written);
    report.images += written;
    return report;
  });
}

// The wardrobe's looks: the clothing colours, over backgrounds of any faint tint whose
// brightness keeps the garment visible, at more sizes and angles.
Look wardrobe_look(const Kind& kind, Rng& rng) {
  // Half of the tutorial's own kinds look as in fashion-color, the pictures the page's examples
  // come from.
  const bool tutorial = std::any_of(std::begin(kKinds), std::end(kKinds), [&](const Kind& k) { return k.name == kind.name; });
  if (tutorial && rng.uniform() < 0.5f) return clothing_look(kind, rng);
  Look look = clothing_look(kind, rng);
  const float v = std::max({look.garment.r, look.garment.g, look.garment.b}) / 255.f;
  look.bg_lo = v > 0.8f ? 0.25f : v < 0.3f ? 0.6f : 0.7f;
  look.bg_hi = v > 0.8f ? 0.65f : 0.97f;
  look.bg_any_hue = true;
  look.min_frac = 0.4f;
  look.max_frac = 0.95f;
  look.max_degrees = 15.f;
  return look;
}

}  // namespace

MakeDatasetReport make_fashion_color(const std::string& out_dir, const std::string& fmnist_dir,
                                     uint64_t seed, int per_class, int size, bool overwrite) {
  return make_colour_garment(out_dir, fmnist_dir, seed, per_class, size, overwrite,
                             std::vector<Kind>(std::begin(kKinds), std::end(kKinds)), clothing_look,
                             /*tutorial_garments=*/true);
}

MakeDatasetReport make_wardrobe(const std::string& out_dir, const std::string& fmnist_dir,
                                uint64_t seed, int per_class, int size, bool overwrite) {
  std::vector<Kind> kinds;
  for (const auto& [c, cn] : kColours)
    for (const auto& [g, gn] : kGarments)
      if (c != kUnseen.colour || g != kUnseen.garment) kinds.push_back({std::string(cn) + "_" + gn, c, g});
  // Garments in colours without a name, labelled by kind alone, so that the network learns
  // shapes apart from the six colours.
  for (const auto& [g, gn] : kGarments) kinds.push_back({gn, Colour::kAny, g, 8});
  return make_colour_garment(out_dir, fmnist_dir, seed, per_class, size, overwrite, kinds, wardrobe_look,
                             /*tutorial_garments=*/false);
}

namespace {

// The two classes of "a-b", or nothing.
std::vector<std::pair<std::string, int>> class_pair(const std::string& kind) {
  const size_t dash = kind.find('-');
  if (dash == std::string::npos) return {};
  const auto& names = kFashionMnistClasses;
  std::vector<std::pair<std::string, int>> out;
  for (const std::string& name : {kind.substr(0, dash), kind.substr(dash + 1)}) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) return {};
    out.emplace_back(name, int(it - names.begin()));
  }
  if (out[0].second == out[1].second) return {};
  return out;
}

}  // namespace

MakeDatasetReport make_two_class(const std::string& out_dir, const std::string& fmnist_dir,
                                 const std::string& pair, uint64_t seed, int size, bool overwrite,
                                 bool test_split) {
  if (size < 16 || size > 4096) throw std::invalid_argument("size must be in 16..4096");
  const auto classes = class_pair(pair);
  if (classes.empty())
    throw std::invalid_argument("unknown dataset kind '" + pair +
                                "' (fashion-color, wardrobe, or two different Fashion-MNIST classes such as pullover-coat)");
  const fs::path out = destination(out_dir);
  check_destination(out, overwrite);
  const Split train = load_split(fmnist_dir, test_split ? "t10k" : "train");
  const int train_count = test_split ? 500 : 1000, validation_count = 500;

  return write_atomically(out, overwrite, [&](const fs::path& root) {
    MakeDatasetReport report;
    for (const char* split : {"train", "validation"}) {
      const bool is_train = split[0] == 't';
      for (const auto& [name, label] : classes) {
        // Train takes the first train_count pictures of the shuffled pool, validation the next
        // validation_count: disjoint by construction.
        const std::vector<size_t> pool =
            shuffled_pool(train, {label}, stream(seed, 10 + uint64_t(label)));
        const size_t first = is_train ? 0 : train_count;
        const int count = is_train ? train_count : validation_count;
        if (pool.size() < size_t(train_count + validation_count))
          throw std::runtime_error(fmnist_dir + ": too few " + name + " pictures");
        const fs::path dir = root / split / name;
        fs::create_directories(dir);
        for (int i = 0; i < count; ++i) {
          Rng rng =
              stream(seed, (uint64_t(label) << 40) | (uint64_t(is_train) << 32) | uint64_t(i));
          // Mild colour: mostly muted tints, so shape and texture decide the class.
          Look look;
          look.garment = draw_hsv(rng, 0.f, 360.f, 0.f, 0.4f, 0.25f, 0.8f);
          look.texture = 0.9f;
          look.sheen = 0.08f;
          look.min_frac = 0.7f;
          look.max_frac = 0.92f;
          look.max_degrees = 6.f;
          const uint8_t* src = train.images.pixels.data() + pool[first + i] * kSide * kSide;
          save_jpeg((dir / numbered(i, "jpg")).string(), render(src, size, look, rng),
                    kJpegQuality);
        }
        report.per_folder.emplace_back(std::string(split) + "/" + name, size_t(count));
        report.images += size_t(count);
      }
    }
    return report;
  });
}

}  // namespace tagnet::native
