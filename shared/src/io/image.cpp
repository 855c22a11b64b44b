#include "tagnet/io/image.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>


// Float arithmetic here (resizing, stb's JPEG encoder) must round the same natively and in
// WASM, which has no fused multiply-add: keep GCC from fusing under -march=haswell.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

// Only the formats we promise: stb's TGA reader has no signature and would take random bytes
// for a picture. Static linkage keeps these copies of stb private to this file. stb's failure
// strings are off because one of them is assembled in a static buffer, a data race when
// pictures are decoded on several threads; errors name the format instead.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_FAILURE_STRINGS
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION

// Every allocation stb_image makes goes through a per-thread cap set from the picture's
// header, so a compressed stream that inflates far beyond the pixels (a zlib bomb) fails
// instead of taking memory without bound. New blocks are zeroed: stb 2.27 reads the Huffman
// tables of a progressive JPEG whose scans use a table no DHT segment defined, and garbage
// there indexes outside its lookup arrays.
#include "file_io.h"

namespace tagnet {
namespace {
thread_local size_t g_stbi_alloc_cap = ~size_t(0);
void* capped_calloc(size_t n) { return n > g_stbi_alloc_cap ? nullptr : std::calloc(1, n); }
void* capped_realloc(void* p, size_t n) {
  return n > g_stbi_alloc_cap ? nullptr : std::realloc(p, n);
}
}  // namespace
}  // namespace tagnet
#define STBI_MALLOC(n) tagnet::capped_calloc(n)
#define STBI_REALLOC(p, n) tagnet::capped_realloc(p, n)
#define STBI_FREE(p) std::free(p)

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunused-parameter"
#pragma clang diagnostic ignored "-Wsign-compare"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#pragma clang diagnostic ignored "-Wimplicit-fallthrough"
#pragma clang diagnostic ignored "-Wcast-qual"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#else
#include <stb_image.h>
#include <stb_image_write.h>
#endif
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace tagnet {

namespace {

// Files larger than this are not pictures we could decode anyway (stb takes an int length).
constexpr size_t kMaxFileBytes = size_t(1) << 30;

// Sets the allocation cap for the stb calls in its scope.
class AllocCap {
 public:
  explicit AllocCap(size_t bytes) { g_stbi_alloc_cap = bytes; }
  ~AllocCap() { g_stbi_alloc_cap = ~size_t(0); }
  AllocCap(const AllocCap&) = delete;
  AllocCap& operator=(const AllocCap&) = delete;
};

// Header parsing needs only stb's decoder state (tens of kilobytes).
constexpr size_t kHeaderAllocCap = size_t(4) << 20;

// No single buffer of a w x h picture needs 16 bytes per pixel: 16-bit RGBA is 8, and the
// compressed PNG data, at most that when incompressible, sits in a buffer grown by doubling.
// The margins cover padding to whole JPEG blocks and stb's fixed-size state.
size_t pixel_alloc_cap(int w, int h) {
  return size_t(16) * size_t(w + 64) * size_t(h + 64) + (size_t(1) << 20);
}

// The format by its signature, as stb tells them apart.
const char* sniff_format(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "JPEG";
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
  if (n >= 4 && std::memcmp(d, "GIF8", 4) == 0) return "GIF";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "BMP";
  return nullptr;
}

std::string dims(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

void check_image(const Image& im, const char* what) {
  if (im.width <= 0 || im.height <= 0 ||
      im.rgb.size() != size_t(im.width) * size_t(im.height) * 3)
    throw std::invalid_argument(std::string(what) + ": image " + dims(im.width, im.height) +
                                " with " + std::to_string(im.rgb.size()) + " bytes");
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}


// Source taps of one output coordinate along one axis: (index, weight) pairs summing to 1.
struct AxisTaps {
  std::vector<int> begin;  // (out + 1) offsets into index/weight
  std::vector<int> index;
  std::vector<float> weight;
};

AxisTaps axis_taps(int in, int out) {
  AxisTaps t;
  t.begin.reserve(out + 1);
  t.begin.push_back(0);
  const double scale = double(in) / out;
  for (int i = 0; i < out; ++i) {
    if (out < in) {
      // Each output covers [lo, hi) of the source; partly covered pixels count by overlap.
      const double lo = i * scale, hi = (i + 1) * scale;
      const int j_end = std::min(in, static_cast<int>(std::ceil(hi)));
      for (int j = static_cast<int>(std::floor(lo)); j < j_end; ++j) {
        const double overlap = std::min(hi, j + 1.0) - std::max(lo, double(j));
        if (overlap <= 1e-9) continue;
        t.index.push_back(j);
        t.weight.push_back(static_cast<float>(overlap / scale));
      }
    } else if (out > in) {
      // Half-pixel centres; beyond the outer centres the edge pixel is repeated.
      const double s = std::clamp((i + 0.5) * scale - 0.5, 0.0, double(in - 1));
      const int j0 = static_cast<int>(s);
      const float f = static_cast<float>(s - j0);
      t.index.push_back(j0);
      t.weight.push_back(1.f - f);
      if (f > 0.f) {
        t.index.push_back(std::min(j0 + 1, in - 1));
        t.weight.push_back(f);
      }
    } else {
      t.index.push_back(i);
      t.weight.push_back(1.f);
    }
    t.begin.push_back(static_cast<int>(t.index.size()));
  }
  return t;
}

// stb_image 2.27 (Debian 12) trusts the code counts of a JPEG Huffman table: more than 256
// codes write past its 257-entry size list and 256-entry value list (fixed upstream in 2.28).
// This walks the segments the way stb reads them (lengths, fill bytes, entropy-coded data up
// to the next marker other than RSTn or a stuffed 0) and refuses any such table stb could reach.
bool jpeg_huffman_counts_ok(const uint8_t* d, size_t n) {
  auto byte = [&](size_t i) -> unsigned { return i < n ? d[i] : 0; };  // stb reads 0 past the end
  size_t p = 2;  // after SOI
  while (p < n) {
    if (d[p] != 0xFF) {
      ++p;
      continue;
    }
    while (p < n && d[p] == 0xFF) ++p;
    if (p >= n) break;
    const unsigned m = d[p++];
    if (m == 0xD9) break;                                              // EOI
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
    const size_t len = (byte(p) << 8) | byte(p + 1);
    if (m == 0xC4) {
      // Tables follow one another until the segment's length is used up.
      long left = long(len) - 2;
      size_t q = p + 2;
      while (left > 0 && q < n) {
        const unsigned tc_th = byte(q);
        if ((tc_th >> 4) > 1 || (tc_th & 15) > 3) break;  // stb refuses the segment here
        unsigned codes = 0;
        for (int i = 1; i <= 16; ++i) codes += byte(q + i);
        if (codes > 256) return false;
        q += 17 + codes;
        left -= long(17 + codes);
      }
    }
    p += len;
    if (m == 0xDA) {
      // Entropy-coded data: FF 00 is a stuffed FF, FF D0..D7 a restart; any other FF xx ends it.
      while (p + 1 < n) {
        if (d[p] == 0xFF && d[p + 1] != 0x00 && d[p + 1] != 0xFF &&
            !(d[p + 1] >= 0xD0 && d[p + 1] <= 0xD7))
          break;
        p += (d[p] == 0xFF && d[p + 1] != 0xFF) ? 2 : 1;
      }
    }
  }
  return true;
}

// stb 2.27 copies a PNG's IDAT chunks into a buffer it allocates at the first non-empty one;
// an empty IDAT before that makes it memcpy zero bytes to a null pointer, which is undefined.
// Empty IDAT chunks add nothing to the pixel stream, so they are left out of a copy that stb
// reads instead; `out` stays empty when there is none.
void drop_empty_idat(const uint8_t* d, size_t n, std::vector<uint8_t>& out) {
  auto be32 = [&](size_t i) {
    return uint32_t(d[i]) << 24 | uint32_t(d[i + 1]) << 16 | uint32_t(d[i + 2]) << 8 | d[i + 3];
  };
  size_t kept = 8;  // bytes up to here are copied (or, while out is empty, identical)
  for (size_t p = 8; p + 12 <= n;) {
    const uint32_t len = be32(p);
    if (len > n - p - 12) break;  // truncated: stb reports it
    if (len == 0 && std::memcmp(d + p + 4, "IDAT", 4) == 0) {
      if (out.empty()) out.assign(d, d + p);
      else out.insert(out.end(), d + kept, d + p);
      kept = p + 12;
    }
    p += 12 + size_t(len);
  }
  if (!out.empty()) out.insert(out.end(), d + kept, d + n);
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& origin) {
  if (size == 0 || !data) throw ImageError(origin + ": not an image (empty)");
  if (size > static_cast<size_t>(INT_MAX))
    throw ImageError(origin + ": not an image (" + std::to_string(size) + " bytes)");
  const char* format = sniff_format(data, size);
  if (!format) throw ImageError(origin + ": not an image (not JPEG, PNG, BMP or GIF)");
  std::vector<uint8_t> cleaned;
  if (format[0] == 'P') drop_empty_idat(data, size, cleaned);
  if (!cleaned.empty()) {
    data = cleaned.data();
    size = cleaned.size();
  }
  const int len = static_cast<int>(size);
  // Before stbi_info too: it reads the tables that precede the frame header.
  if (format[0] == 'J' && !jpeg_huffman_counts_ok(data, size))
    throw ImageError(origin + ": truncated or corrupt image (bad JPEG Huffman table)");
  int w = 0, h = 0, comp = 0;
  {
    AllocCap cap(kHeaderAllocCap);
    if (!stbi_info_from_memory(data, len, &w, &h, &comp))
      throw ImageError(origin + ": truncated or corrupt image (bad " + format + " header)");
  }
  auto check_dims = [&](int iw, int ih) {
    if (iw <= 0 || ih <= 0 || iw > kMaxImageSide || ih > kMaxImageSide ||
        int64_t(iw) * ih > kMaxImagePixels)
      throw ImageError(origin + ": image too large (" + dims(iw, ih) + ", at most " +
                       std::to_string(kMaxImageSide) + " per side and " +
                       std::to_string(kMaxImagePixels >> 20) + " Mpixel)");
  };
  check_dims(w, h);
  stbi_uc* px;
  {
    AllocCap cap(pixel_alloc_cap(w, h));
    px = stbi_load_from_memory(data, len, &w, &h, &comp, 3);
  }
  if (!px) throw ImageError(origin + ": truncated or corrupt image (bad " + format + " data)");
  Image im;
  try {
    check_dims(w, h);
    im.width = w;
    im.height = h;
    im.rgb.assign(px, px + size_t(w) * size_t(h) * 3);
  } catch (...) {
    stbi_image_free(px);
    throw;
  }
  stbi_image_free(px);
  return im;
}

Image load_image(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ImageError(path + ": cannot open (" + std::strerror(errno) + ")");
  // Read in chunks rather than by the reported size: that also works for pipes.
  constexpr size_t kChunk = size_t(1) << 20;
  std::vector<uint8_t> bytes;
  for (;;) {
    const size_t have = bytes.size();
    bytes.resize(have + kChunk);
    const size_t n = std::fread(bytes.data() + have, 1, kChunk, f);
    bytes.resize(have + n);
    if (n < kChunk) break;
    if (bytes.size() > kMaxFileBytes) {
      std::fclose(f);
      throw ImageError(path + ": not an image (larger than " +
                       std::to_string(kMaxFileBytes >> 20) + " MB)");
    }
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) throw ImageError(path + ": cannot read (" + std::strerror(err) + ")");
  return decode_image(bytes.data(), bytes.size(), path);
}

Image image_from_rgba(const uint8_t* rgba, int width, int height) {
  if (width <= 0 || height <= 0 || int64_t(width) * height > kMaxImagePixels)
    throw std::invalid_argument("image_from_rgba: bad size " + dims(width, height));
  Image im;
  im.width = width;
  im.height = height;
  const size_t n = size_t(width) * size_t(height);
  im.rgb.resize(n * 3);
  for (size_t i = 0; i < n; ++i) {
    im.rgb[i * 3 + 0] = rgba[i * 4 + 0];
    im.rgb[i * 3 + 1] = rgba[i * 4 + 1];
    im.rgb[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return im;
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_image(image, "encode_png");
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append_bytes, &out, image.width, image.height, 3,
                              image.rgb.data(), image.width * 3))
    throw std::runtime_error("encode_png: encoder failed");
  return out;
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  check_image(image, "encode_jpeg");
  std::vector<uint8_t> out;
  if (!stbi_write_jpg_to_func(append_bytes, &out, image.width, image.height, 3,
                              image.rgb.data(), std::clamp(quality, 1, 100)))
    throw std::runtime_error("encode_jpeg: encoder failed");
  return out;
}

void save_png(const std::string& path, const Image& image) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_png(image);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

void save_jpeg(const std::string& path, const Image& image, int quality) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_jpeg(image, quality);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

Image resize_image(const Image& image, int width, int height) {
  check_image(image, "resize_image");
  if (width <= 0 || height <= 0 || int64_t(width) * height > kMaxImagePixels)
    throw std::invalid_argument("resize_image: bad target size " + dims(width, height));
  if (width == image.width && height == image.height) return image;
  const int iw = image.width, ih = image.height;
  const AxisTaps tx = axis_taps(iw, width), ty = axis_taps(ih, height);

  // Columns first: rows (ih, width, 3) in float, so rounding happens once, at the end.
  std::vector<float> rows(size_t(ih) * width * 3);
  for (int y = 0; y < ih; ++y) {
    const uint8_t* src = image.rgb.data() + size_t(y) * iw * 3;
    float* dst = rows.data() + size_t(y) * width * 3;
    for (int x = 0; x < width; ++x) {
      float r = 0, g = 0, b = 0;
      for (int k = tx.begin[x]; k < tx.begin[x + 1]; ++k) {
        const uint8_t* p = src + size_t(tx.index[k]) * 3;
        const float w = tx.weight[k];
        r += w * p[0];
        g += w * p[1];
        b += w * p[2];
      }
      dst[x * 3 + 0] = r;
      dst[x * 3 + 1] = g;
      dst[x * 3 + 2] = b;
    }
  }

  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(size_t(width) * height * 3);
  std::vector<float> acc(size_t(width) * 3);
  const size_t row_len = size_t(width) * 3;
  for (int y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int k = ty.begin[y]; k < ty.begin[y + 1]; ++k) {
      const float* src = rows.data() + size_t(ty.index[k]) * row_len;
      const float w = ty.weight[k];
      for (size_t i = 0; i < row_len; ++i) acc[i] += w * src[i];
    }
    uint8_t* dst = out.rgb.data() + size_t(y) * row_len;
    for (size_t i = 0; i < row_len; ++i)
      dst[i] = static_cast<uint8_t>(std::clamp(acc[i] + 0.5f, 0.f, 255.f));
  }
  return out;
}

void image_to_input(const Image& image, int H, int W, int C, float* out) {
  if (C != 1 && C != 3)
    throw std::invalid_argument("image_to_input: C must be 1 or 3, got " + std::to_string(C));
  check_image(image, "image_to_input");
  Image resized;
  const Image* im = &image;
  if (image.width != W || image.height != H) {
    resized = resize_image(image, W, H);
    im = &resized;
  }
  const size_t n = size_t(H) * W;
  const uint8_t* p = im->rgb.data();
  constexpr float kScale = 1.f / 255.f;
  if (C == 3) {
    for (size_t i = 0; i < n * 3; ++i) out[i] = p[i] * kScale;
  } else {
    for (size_t i = 0; i < n; ++i)
      out[i] = (0.299f * p[i * 3] + 0.587f * p[i * 3 + 1] + 0.114f * p[i * 3 + 2]) * kScale;
  }
}

}  // namespace tagnet
