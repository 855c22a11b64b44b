#include "draw.h"

#include <cairo.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace tagnet::native {

// matplotlib's ggplot style (the tutorial's plt.style.use("ggplot")) for the first three;
// green instead of its grey fourth so that no line is close to the grey panel.
const unsigned kHistoryColours[4] = {0xE24A33, 0x348ABD, 0x988ED5, 0x4F9A2C};

namespace {

// cairo refuses larger image surfaces.
constexpr int kMaxSurfaceSide = 32767;

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

SurfacePtr new_surface(int width, int height) {
  SurfacePtr s(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  if (cairo_surface_status(s.get()) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error("cannot create a " + std::to_string(width) + "x" +
                             std::to_string(height) + " drawing surface: " +
                             cairo_status_to_string(cairo_surface_status(s.get())));
  return s;
}

ContextPtr new_context(cairo_surface_t* s) {
  ContextPtr c(cairo_create(s));
  if (cairo_status(c.get()) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cannot draw: ") + cairo_status_to_string(cairo_status(c.get())));
  return c;
}

// A drawing error leaves the context inert, so it is checked once before the file is written.
void check_context(cairo_t* cr, const std::string& path) {
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error("cannot draw " + path + ": " + cairo_status_to_string(cairo_status(cr)));
}

void set_colour(cairo_t* cr, unsigned rgb, double alpha = 1.0) {
  cairo_set_source_rgba(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                        (rgb & 255) / 255.0, alpha);
}

void write_png(cairo_surface_t* s, const std::string& path) {
  cairo_surface_flush(s);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  errno = 0;
  const cairo_status_t st = cairo_surface_write_to_png(s, tmp.c_str());
  if (st != CAIRO_STATUS_SUCCESS) {
    // cairo's own message is only "error while writing to output stream"; errno from its
    // fopen/fwrite says why.
    const int err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " +
                             (err ? std::strerror(err) : cairo_status_to_string(st)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
  }
}

void check_image(const Image& im, const char* what) {
  if (im.width < 1 || im.height < 1 || im.width > kMaxSurfaceSide || im.height > kMaxSurfaceSide)
    throw std::invalid_argument(std::string(what) + ": picture size " + std::to_string(im.width) +
                                "x" + std::to_string(im.height) + " is out of range");
  if (im.rgb.size() != size_t(im.width) * size_t(im.height) * 3)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(im.rgb.size()) +
                                " bytes for a " + std::to_string(im.width) + "x" +
                                std::to_string(im.height) + " RGB picture");
}

SurfacePtr surface_from_image(const Image& im) {
  SurfacePtr s = new_surface(im.width, im.height);
  cairo_surface_flush(s.get());
  unsigned char* data = cairo_image_surface_get_data(s.get());
  const int stride = cairo_image_surface_get_stride(s.get());
  for (int y = 0; y < im.height; ++y) {
    // RGB24 pixels are native-endian 32-bit words 0x00RRGGBB.
    auto* row = reinterpret_cast<uint32_t*>(data + size_t(y) * stride);
    const uint8_t* src = im.rgb.data() + size_t(y) * im.width * 3;
    for (int x = 0; x < im.width; ++x, src += 3)
      row[x] = (uint32_t(src[0]) << 16) | (uint32_t(src[1]) << 8) | src[2];
  }
  cairo_surface_mark_dirty(s.get());
  return s;
}

Image image_from_surface(cairo_surface_t* s) {
  cairo_surface_flush(s);
  Image im;
  im.width = cairo_image_surface_get_width(s);
  im.height = cairo_image_surface_get_height(s);
  im.rgb.resize(size_t(im.width) * im.height * 3);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < im.height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + size_t(y) * stride);
    uint8_t* dst = im.rgb.data() + size_t(y) * im.width * 3;
    for (int x = 0; x < im.width; ++x, dst += 3) {
      dst[0] = uint8_t(row[x] >> 16);
      dst[1] = uint8_t(row[x] >> 8);
      dst[2] = uint8_t(row[x]);
    }
  }
  return im;
}

// Paints `src` scaled into the rectangle (x, y, w, h). Padding the edges keeps the bilinear
// filter from fading the border into the background.
void paint_scaled(cairo_t* cr, cairo_surface_t* src, int src_w, int src_h, double x, double y,
                  double w, double h) {
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, h);
  cairo_clip(cr);
  cairo_translate(cr, x, y);
  cairo_scale(cr, w / src_w, h / src_h);
  cairo_set_source_surface(cr, src, 0, 0);
  cairo_pattern_t* pat = cairo_get_source(cr);
  cairo_pattern_set_extend(pat, CAIRO_EXTEND_PAD);
  cairo_pattern_set_filter(pat, w < src_w || h < src_h ? CAIRO_FILTER_GOOD : CAIRO_FILTER_BILINEAR);
  cairo_paint(cr);
  cairo_restore(cr);
}

// --- Text ---

// cairo's toy text API puts the context in an error state on invalid UTF-8, and captions come
// from file names, so bad bytes become '?'.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) &&
         (cp >= 0x20 || len > 1);
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Draws `s` with the point (x, y) at fraction (ax, ay) of its box: ax 0 left, 0.5 centre,
// 1 right; ay 0 top, 0.5 middle, 1 bottom (the box spans the font's ascent and descent).
void draw_text(cairo_t* cr, const std::string& s, double x, double y, double ax, double ay) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double w = text_width(cr, s);
  cairo_move_to(cr, x - ax * w, y - ay * (fe.ascent + fe.descent) + fe.ascent);
  cairo_show_text(cr, s.c_str());
}

// The longest prefix of `s`, whole code points, that fits `max_w` with an ellipsis after it.
std::string fit_text(cairo_t* cr, const std::string& s, double max_w) {
  if (text_width(cr, s) <= max_w) return s;
  const std::string ellipsis = "\xE2\x80\xA6";
  std::string t = s;
  while (!t.empty()) {
    size_t cut = t.size() - 1;
    while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
    t.erase(cut);
    if (text_width(cr, t + ellipsis) <= max_w) return t + ellipsis;
  }
  return text_width(cr, ellipsis) <= max_w ? ellipsis : std::string();
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = s.find('\n', start);
    lines.push_back(valid_utf8(s.substr(start, nl == std::string::npos ? nl : nl - start)));
    if (nl == std::string::npos) return lines;
    start = nl + 1;
  }
}

// --- Axes ---

// A 1, 2 or 5 times a power of ten near `raw`.
double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

struct Axis {
  double lo = 0, hi = 1, step = 0.2;

  // Data limits widened by 5% on each side, as matplotlib's default margins.
  Axis(double data_lo, double data_hi, int ticks, bool integer) {
    if (!(data_hi - data_lo > 1e-12)) {
      data_lo -= integer ? 1 : 0.5;
      data_hi += integer ? 1 : 0.5;
    }
    const double m = 0.05 * (data_hi - data_lo);
    lo = data_lo - m;
    hi = data_hi + m;
    step = nice_step((hi - lo) / ticks);
    if (integer) step = std::max(step, 1.0);
  }
  std::vector<double> ticks() const {
    std::vector<double> t;
    for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k += 1)
      t.push_back(k * step);
    return t;
  }
  std::string label(double v) const {
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", decimals, std::abs(v) < 1e-9 * step ? 0.0 : v);
    return b;
  }
};

struct Series {
  const char* key;
  const char* name;
  unsigned colour;
  std::vector<std::pair<double, double>> points;   // (epoch, value)
};

struct Rect {
  double x, y, w, h;
  bool contains(double px, double py) const {
    return px >= x && px <= x + w && py >= y && py <= y + h;
  }
};

}  // namespace

void save_history_plot(const std::string& path, const nlohmann::json& history,
                       const std::string& title) {
  if (!history.is_array())
    throw std::invalid_argument("history plot: the history must be a JSON array of epochs");
  Series series[4] = {{"loss", "train_loss", kHistoryColours[0], {}},
                      {"val_loss", "val_loss", kHistoryColours[1], {}},
                      {"accuracy", "train_acc", kHistoryColours[2], {}},
                      {"val_accuracy", "val_acc", kHistoryColours[3], {}}};
  for (size_t i = 0; i < history.size(); ++i) {
    const nlohmann::json& e = history[i];
    if (!e.is_object())
      throw std::invalid_argument("history plot: epoch " + std::to_string(i) + " is not an object");
    const auto ep = e.find("epoch");
    const double x = ep != e.end() && ep->is_number() ? ep->get<double>() : double(i + 1);
    for (Series& s : series) {
      const auto it = e.find(s.key);
      if (it == e.end() || !it->is_number()) continue;
      const double v = it->get<double>();
      if (std::isfinite(v) && std::isfinite(x)) s.points.emplace_back(x, v);
    }
  }
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      xlo = std::min(xlo, x), xhi = std::max(xhi, x);
      ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    }
  if (xlo > xhi) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  const Axis ax(xlo, xhi, 8, true), ay(ylo, yhi, 6, false);

  constexpr int W = 800, H = 500;
  const double L = 72, R = W - 24, T = 48, B = H - 56;   // panel edges
  auto px = [&](double x) { return L + (x - ax.lo) / (ax.hi - ax.lo) * (R - L); };
  auto py = [&](double y) { return B - (y - ay.lo) / (ay.hi - ay.lo) * (B - T); };

  SurfacePtr surface = new_surface(W, H);
  ContextPtr ctx = new_context(surface.get());
  cairo_t* cr = ctx.get();
  set_colour(cr, 0xFFFFFF);
  cairo_paint(cr);
  set_colour(cr, 0xE5E5E5);
  cairo_rectangle(cr, L, T, R - L, B - T);
  cairo_fill(cr);

  // Grid on the half pixel so that one-pixel lines stay sharp.
  set_colour(cr, 0xFFFFFF);
  cairo_set_line_width(cr, 1);
  for (double t : ax.ticks()) {
    const double x = std::round(px(t)) + 0.5;
    cairo_move_to(cr, x, T);
    cairo_line_to(cr, x, B);
  }
  for (double t : ay.ticks()) {
    const double y = std::round(py(t)) + 0.5;
    cairo_move_to(cr, L, y);
    cairo_line_to(cr, R, y);
  }
  cairo_stroke(cr);

  set_font(cr, 12);
  set_colour(cr, 0x555555);
  for (double t : ax.ticks()) draw_text(cr, ax.label(t), px(t), B + 5, 0.5, 0);
  for (double t : ay.ticks()) draw_text(cr, ay.label(t), L - 6, py(t), 1, 0.5);

  // Markers show the points of short histories, where a single epoch has no line at all.
  size_t longest = 0;
  for (const Series& s : series) longest = std::max(longest, s.points.size());
  const bool markers = longest <= 30;
  cairo_save(cr);
  cairo_rectangle(cr, L, T, R - L, B - T);
  cairo_clip(cr);
  cairo_set_line_width(cr, 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    set_colour(cr, s.colour);
    cairo_new_path(cr);
    for (const auto& [x, y] : s.points) cairo_line_to(cr, px(x), py(y));
    cairo_stroke(cr);
    if (markers)
      for (const auto& [x, y] : s.points) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, px(x), py(y), 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
  }
  cairo_restore(cr);

  // The legend goes to the first corner, in matplotlib's order for loc="best", that covers
  // the fewest points sampled along the lines.
  std::vector<const Series*> shown;
  for (const Series& s : series)
    if (!s.points.empty()) shown.push_back(&s);
  if (!shown.empty()) {
    set_font(cr, 12);
    const double pad = 8, sample = 24, row = 18;
    double text_w = 0;
    for (const Series* s : shown) text_w = std::max(text_w, text_width(cr, s->name));
    const double w = pad + sample + 6 + text_w + pad, h = pad + row * shown.size() + pad - 4;
    const Rect corners[4] = {{R - 10 - w, T + 10, w, h}, {L + 10, T + 10, w, h},
                             {L + 10, B - 10 - h, w, h}, {R - 10 - w, B - 10 - h, w, h}};
    const Rect* best = &corners[0];
    size_t best_hits = SIZE_MAX;
    for (const Rect& c : corners) {
      size_t hits = 0;
      for (const Series* s : shown) {
        const auto& p = s->points;
        for (size_t i = 0; i < p.size(); ++i) {
          hits += c.contains(px(p[i].first), py(p[i].second));
          if (i + 1 == p.size()) break;
          for (int k = 1; k < 16; ++k) {
            const double f = k / 16.0;
            hits += c.contains(px(p[i].first + f * (p[i + 1].first - p[i].first)),
                               py(p[i].second + f * (p[i + 1].second - p[i].second)));
          }
        }
      }
      if (hits < best_hits) best_hits = hits, best = &c;
    }
    set_colour(cr, 0xFFFFFF, 0.85);
    cairo_rectangle(cr, best->x, best->y, best->w, best->h);
    cairo_fill_preserve(cr);
    set_colour(cr, 0xBBBBBB);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (size_t i = 0; i < shown.size(); ++i) {
      const double y = best->y + pad + row * (i + 0.5) - 2;
      const double x = best->x + pad;
      set_colour(cr, shown[i]->colour);
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, x, y);
      cairo_line_to(cr, x + sample, y);
      cairo_stroke(cr);
      if (markers) {
        cairo_arc(cr, x + sample / 2, y, 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
      set_colour(cr, 0x333333);
      draw_text(cr, shown[i]->name, x + sample + 6, y, 0, 0.5);
    }
  }

  set_font(cr, 14);
  set_colour(cr, 0x333333);
  draw_text(cr, "Epoch #", (L + R) / 2, H - 8, 0.5, 1);
  cairo_save(cr);
  cairo_translate(cr, 8, (T + B) / 2);
  cairo_rotate(cr, -M_PI / 2);
  draw_text(cr, "Loss/Accuracy", 0, 0, 0.5, 0);
  cairo_restore(cr);
  set_font(cr, 16);
  set_colour(cr, 0x222222);
  draw_text(cr, fit_text(cr, valid_utf8(title), W - 16), (L + R) / 2, T / 2, 0.5, 0.5);

  check_context(cr, path);
  write_png(surface.get(), path);
}

void save_montage(const std::string& path, const std::vector<Image>& tiles,
                  const std::vector<std::string>& captions, int columns, int tile_px) {
  if (tiles.empty()) throw std::invalid_argument("montage: no pictures");
  if (columns < 1 || tile_px < 1)
    throw std::invalid_argument("montage: columns and tile size must be at least 1");
  if (!captions.empty() && captions.size() != tiles.size())
    throw std::invalid_argument("montage: " + std::to_string(captions.size()) + " captions for " +
                                std::to_string(tiles.size()) + " pictures");
  for (const Image& im : tiles) check_image(im, "montage");
  const int cols = static_cast<int>(std::min<size_t>(size_t(columns), tiles.size()));
  const int rows = static_cast<int>((tiles.size() + cols - 1) / cols);

  std::vector<std::vector<std::string>> lines(tiles.size());
  size_t max_lines = 0;
  for (size_t i = 0; i < captions.size(); ++i) {
    lines[i] = split_lines(captions[i]);
    max_lines = std::max(max_lines, lines[i].size());
  }
  const double font = std::clamp(tile_px / 8.0, 9.0, 14.0);
  const int line_h = static_cast<int>(std::ceil(font * 1.3));
  const int caption_h = max_lines ? static_cast<int>(max_lines) * line_h + 4 : 0;
  const int cell_w = tile_px + kMontageGap, cell_h = tile_px + caption_h + kMontageGap;
  const int64_t W = int64_t(cols) * cell_w + kMontageGap, H = int64_t(rows) * cell_h + kMontageGap;
  if (W > kMaxSurfaceSide || H > kMaxSurfaceSide)
    throw std::invalid_argument("montage: " + std::to_string(W) + "x" + std::to_string(H) +
                                " pixels is too large; use fewer or smaller tiles");

  SurfacePtr surface = new_surface(int(W), int(H));
  ContextPtr ctx = new_context(surface.get());
  cairo_t* cr = ctx.get();
  set_colour(cr, 0xFFFFFF);
  cairo_paint(cr);
  set_font(cr, font);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  for (size_t i = 0; i < tiles.size(); ++i) {
    const Image& im = tiles[i];
    const double x0 = kMontageGap + double(i % cols) * cell_w;
    const double y0 = kMontageGap + double(i / cols) * cell_h;
    // The tile's square shows where a picture of another aspect ends.
    set_colour(cr, 0xEEEEEE);
    cairo_rectangle(cr, x0, y0, tile_px, tile_px);
    cairo_fill(cr);
    const double scale = std::min(double(tile_px) / im.width, double(tile_px) / im.height);
    const double w = std::max(1.0, std::round(im.width * scale));
    const double h = std::max(1.0, std::round(im.height * scale));
    SurfacePtr pic = surface_from_image(im);
    paint_scaled(cr, pic.get(), im.width, im.height, x0 + std::floor((tile_px - w) / 2),
                 y0 + std::floor((tile_px - h) / 2), w, h);
    set_colour(cr, 0x222222);
    for (size_t k = 0; k < lines[i].size(); ++k) {
      const std::string text = fit_text(cr, lines[i][k], tile_px);
      draw_text(cr, text, x0 + tile_px / 2.0, y0 + tile_px + 3 + double(k) * line_h, 0.5, 0);
    }
  }
  check_context(cr, path);
  write_png(surface.get(), path);
}

Image annotate_image(const Image& img, const std::vector<std::string>& lines, int min_width) {
  check_image(img, "annotate");
  int W = img.width, H = img.height;
  if (W < min_width) {
    const int64_t h = std::max<int64_t>(1, std::llround(double(img.height) * min_width / img.width));
    if (min_width > kMaxSurfaceSide || h > kMaxSurfaceSide)
      throw std::invalid_argument("annotate: enlarging to " + std::to_string(min_width) +
                                  " pixels wide is too large");
    W = min_width;
    H = int(h);
  }
  SurfacePtr surface = surface_from_image(img);
  if (W != img.width) {
    SurfacePtr big = new_surface(W, H);
    ContextPtr c = new_context(big.get());
    paint_scaled(c.get(), surface.get(), img.width, img.height, 0, 0, W, H);
    surface = std::move(big);
  }
  ContextPtr ctx = new_context(surface.get());
  cairo_t* cr = ctx.get();

  std::vector<std::string> text;
  for (const std::string& l : lines) text.push_back(valid_utf8(l));
  if (!text.empty()) {
    // About the tutorial's cv2.putText scale 0.7 on a 400-pixel picture, growing with the
    // picture, and smaller when the widest line would not fit.
    double font = std::clamp(18.0 * W / 400.0, 12.0, 72.0);
    set_font(cr, font, true);
    double widest = 0;
    for (const std::string& l : text) widest = std::max(widest, text_width(cr, l));
    const double room = W - font * 1.5;
    if (widest > room && widest > 0) {
      font = std::max(6.0, font * room / widest);
      set_font(cr, font, true);
      widest = 0;
      for (const std::string& l : text) widest = std::max(widest, text_width(cr, l));
    }
    const double margin = font * 0.4, line_h = font * 1.35;
    cairo_set_source_rgba(cr, 0, 0, 0, 0.55);
    cairo_rectangle(cr, margin, margin, widest + 2 * margin, line_h * text.size() + margin);
    cairo_fill(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (size_t i = 0; i < text.size(); ++i) {
      cairo_font_extents_t fe;
      cairo_font_extents(cr, &fe);
      cairo_move_to(cr, 2 * margin, margin * 1.5 + line_h * i + fe.ascent);
      cairo_text_path(cr, text[i].c_str());
      // A dark outline under the fill keeps the text readable on light pictures too.
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_set_line_width(cr, std::max(2.0, font / 6));
      cairo_stroke_preserve(cr);
      cairo_set_source_rgb(cr, 0, 1, 0);
      cairo_fill(cr);
    }
  }
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(std::string("annotate: ") + cairo_status_to_string(cairo_status(cr)));
  return image_from_surface(surface.get());
}

}  // namespace tagnet::native
