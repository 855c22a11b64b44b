// Picture I/O, resizing, input conversion and augmentation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "tagnet/io/image.h"

// A private encoder copy for the formats and channel counts the library never writes.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;
using tagnet::AffineParams;
using tagnet::FillMode;
using tagnet::Image;
using tagnet::ImageError;

namespace {

Image gradient(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &im.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = uint8_t((x + y) * 7 % 256);
    }
  return im;
}

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = w;
  im.height = h;
  for (int i = 0; i < w * h; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

void append(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// comp channels per pixel: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
std::vector<uint8_t> png_bytes(const std::vector<uint8_t>& px, int w, int h, int comp) {
  std::vector<uint8_t> out;
  EXPECT_TRUE(stbi_write_png_to_func(append, &out, w, h, comp, px.data(), w * comp));
  return out;
}

std::vector<uint8_t> bmp_bytes(const std::vector<uint8_t>& px, int w, int h, int comp) {
  std::vector<uint8_t> out;
  EXPECT_TRUE(stbi_write_bmp_to_func(append, &out, w, h, comp, px.data()));
  return out;
}

// GIF89a, 2x2, global palette {red, blue}: frame 1 is red blue / blue red, frame 2 the
// opposite. LZW with minimum code size 2: clear(4) i0 i1 i2 i3 end(5), codes of 3 bits until
// the table reaches 8 entries, then 4 bits.
std::vector<uint8_t> gif_bytes(bool two_frames) {
  std::vector<uint8_t> g = {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x80, 0, 0,
                            255, 0,   0,   0,   0,   255};
  const std::vector<uint8_t> frame1 = {0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0,
                                       2,    3, 0x44, 0x02, 0x05, 0};
  const std::vector<uint8_t> frame2 = {0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0,
                                       2,    3, 0x0C, 0x10, 0x05, 0};
  g.insert(g.end(), frame1.begin(), frame1.end());
  if (two_frames) g.insert(g.end(), frame2.begin(), frame2.end());
  g.push_back(0x3B);
  return g;
}

// A PNG around a given zlib stream, split into IDAT chunks of `chunk` bytes. The CRCs are
// left zero: stb does not check them.
std::vector<uint8_t> png_with_idat(int w, int h, int depth, int color_type,
                                   const std::vector<uint8_t>& zlib, size_t chunk) {
  std::vector<uint8_t> p = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) p.push_back(uint8_t(v >> (8 * i)));
  };
  auto add_chunk = [&](const char* type, const uint8_t* d, size_t n) {
    be32(uint32_t(n));
    p.insert(p.end(), type, type + 4);
    p.insert(p.end(), d, d + n);
    be32(0);
  };
  const uint8_t ihdr[13] = {uint8_t(w >> 24), uint8_t(w >> 16), uint8_t(w >> 8), uint8_t(w),
                            uint8_t(h >> 24), uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h),
                            uint8_t(depth),   uint8_t(color_type), 0, 0, 0};
  add_chunk("IHDR", ihdr, 13);
  for (size_t at = 0; at < zlib.size(); at += chunk)
    add_chunk("IDAT", zlib.data() + at, std::min(chunk, zlib.size() - at));
  add_chunk("IEND", nullptr, 0);
  return p;
}

// zlib with stored (uncompressed) blocks: the worst case for compressed size.
std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> z = {0x78, 0x01};
  size_t at = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    z.push_back(at + n == raw.size() ? 1 : 0);
    z.insert(z.end(), {uint8_t(n), uint8_t(n >> 8), uint8_t(~n), uint8_t(~n >> 8)});
    z.insert(z.end(), raw.begin() + at, raw.begin() + at + n);
    at += n;
  } while (at < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  const uint32_t adler = (b << 16) | a;
  for (int i = 3; i >= 0; --i) z.push_back(uint8_t(adler >> (8 * i)));
  return z;
}

Image decode(const std::vector<uint8_t>& b) { return tagnet::decode_image(b.data(), b.size(), "mem"); }

std::string error_of(const std::vector<uint8_t>& b, const std::string& origin = "pic") {
  try {
    tagnet::decode_image(b.data(), b.size(), origin);
  } catch (const ImageError& e) {
    return e.what();
  }
  return "";
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// One directory per test and process: CTest may run the tests of this file in parallel.
std::string temp_dir() {
  const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const fs::path d =
      fs::temp_directory_path() / ("tagnet_image_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

// --- Decoding ---

TEST(Decode, PngRoundTripIsExact) {
  const Image im = gradient(17, 9);
  const Image back = decode(tagnet::encode_png(im));
  EXPECT_EQ(back.width, 17);
  EXPECT_EQ(back.height, 9);
  EXPECT_EQ(back.rgb, im.rgb);
}

TEST(Decode, GreyAndAlphaBecomeRgb) {
  const int w = 3, h = 2;
  std::vector<uint8_t> grey = {0, 50, 100, 150, 200, 250};
  std::vector<uint8_t> grey_alpha, rgba;
  for (uint8_t v : grey) {
    grey_alpha.insert(grey_alpha.end(), {v, uint8_t(255 - v)});
    rgba.insert(rgba.end(), {v, uint8_t(v / 2), uint8_t(255 - v), 7});
  }
  for (int comp : {1, 2}) {
    const Image im = decode(png_bytes(comp == 1 ? grey : grey_alpha, w, h, comp));
    ASSERT_EQ(im.rgb.size(), size_t(w * h * 3));
    for (int i = 0; i < w * h; ++i)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(im.rgb[i * 3 + c], grey[i]) << comp << " " << i;
  }
  // Alpha is dropped, not composited: a nearly transparent pixel keeps its colour.
  const Image im = decode(png_bytes(rgba, w, h, 4));
  for (int i = 0; i < w * h; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(im.rgb[i * 3 + c], rgba[i * 4 + c]);
}

TEST(Decode, Bmp24And32) {
  const Image im = gradient(7, 5);  // odd width: rows are padded in the file
  EXPECT_EQ(decode(bmp_bytes(im.rgb, 7, 5, 3)).rgb, im.rgb);
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < im.rgb.size(); i += 3)
    rgba.insert(rgba.end(), {im.rgb[i], im.rgb[i + 1], im.rgb[i + 2], 128});
  EXPECT_EQ(decode(bmp_bytes(rgba, 7, 5, 4)).rgb, im.rgb);
}

TEST(Decode, JpegIsClose) {
  Image im;
  im.width = 32;
  im.height = 24;
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x)
      im.rgb.insert(im.rgb.end(), {uint8_t(60 + 4 * x), uint8_t(40 + 5 * y), uint8_t(128)});
  const Image back = decode(tagnet::encode_jpeg(im, 95));
  ASSERT_EQ(back.width, 32);
  ASSERT_EQ(back.height, 24);
  double err = 0;
  for (size_t i = 0; i < im.rgb.size(); ++i) err += std::abs(int(back.rgb[i]) - int(im.rgb[i]));
  EXPECT_LT(err / im.rgb.size(), 2.0);
}

TEST(Decode, GifFirstFrame) {
  const std::vector<uint8_t> expect = {255, 0, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0};
  for (bool two : {false, true}) {
    const Image im = decode(gif_bytes(two));
    EXPECT_EQ(im.width, 2);
    EXPECT_EQ(im.height, 2);
    EXPECT_EQ(im.rgb, expect) << "two frames: " << two;
  }
}

TEST(Decode, NotAnImage) {
  const std::string text = "hello, this is plainly not a picture of anything at all";
  const std::string e = error_of(std::vector<uint8_t>(text.begin(), text.end()), "notes.txt");
  EXPECT_TRUE(starts_with(e, "notes.txt: not an image (")) << e;
  EXPECT_TRUE(starts_with(error_of({}, "empty.png"), "empty.png: not an image")) << error_of({});
  EXPECT_THROW(tagnet::decode_image(nullptr, 0, "null"), ImageError);
}

TEST(Decode, TruncatedOrCorrupt) {
  std::vector<uint8_t> png = tagnet::encode_png(gradient(40, 30));
  png.resize(60);  // signature, IHDR and the start of IDAT
  const std::string e = error_of(png, "cut.png");
  EXPECT_TRUE(starts_with(e, "cut.png: truncated or corrupt image (")) << e;
}

TEST(Decode, HugeDimensionsRefusedFromTheHeader) {
  std::vector<uint8_t> png = tagnet::encode_png(gradient(4, 4));
  // IHDR width at bytes 16..19, big-endian; stb does not check chunk CRCs.
  auto set_be = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = uint8_t(v >> (24 - 8 * i));
  };
  set_be(16, 100000);
  std::string e = error_of(png, "wide.png");
  EXPECT_TRUE(starts_with(e, "wide.png: image too large (100000x4")) << e;
  set_be(16, 10000);
  set_be(20, 10000);  // 100 Mpixel, each side allowed
  e = error_of(png, "big.png");
  EXPECT_TRUE(starts_with(e, "big.png: image too large (10000x10000")) << e;

  std::vector<uint8_t> bmp = bmp_bytes(gradient(4, 4).rgb, 4, 4, 3);
  bmp[18] = 0x00; bmp[19] = 0x50; bmp[20] = 0; bmp[21] = 0;  // width 20480
  e = error_of(bmp, "wide.bmp");
  EXPECT_TRUE(starts_with(e, "wide.bmp: image too large (20480x4")) << e;
}

// Deflate of n >= 1 zero bytes at the best ratio: a literal, then (length 258, distance 1)
// matches, 13 bits per 258 bytes, then literals for the rest; one fixed-Huffman block.
std::vector<uint8_t> zlib_of_zeros(size_t n) {
  std::vector<uint8_t> z = {0x78, 0x01};
  uint32_t acc = 0;
  int bits = 0;
  auto put = [&](uint32_t v, int len, bool huffman) {
    for (int i = 0; i < len; ++i) {
      const uint32_t bit = huffman ? (v >> (len - 1 - i)) & 1 : (v >> i) & 1;  // codes MSB first
      acc |= bit << bits;
      if (++bits == 8) {
        z.push_back(uint8_t(acc));
        acc = 0;
        bits = 0;
      }
    }
  };
  put(1, 1, false);     // final block
  put(1, 2, false);     // fixed Huffman
  put(0x30, 8, true);   // literal 0
  size_t done = 1;
  for (; done + 258 <= n; done += 258) {
    put(0xC5, 8, true);  // length 258
    put(0, 5, true);     // distance 1
  }
  for (; done < n; ++done) put(0x30, 8, true);
  put(0, 7, true);  // end of block
  if (bits) z.push_back(uint8_t(acc));
  const uint32_t b = uint32_t(n % 65521);
  for (uint32_t v : {b >> 8, b, 0u, 1u}) z.push_back(uint8_t(v));  // Adler-32 of zeros
  return z;
}

// stb_image 2.27 writes past its tables for a Huffman table of more than 256 codes.
TEST(Decode, OversizedJpegHuffmanTableIsRefused) {
  std::vector<uint8_t> jpg = tagnet::encode_jpeg(gradient(16, 16), 90);
  size_t dht = 0;
  for (size_t i = 2; i + 1 < jpg.size() && !dht; ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) dht = i;
  ASSERT_GT(dht, 0u);
  for (int i = 0; i < 16; ++i) jpg[dht + 5 + i] = 0xFF;  // code counts after length and class
  const std::string e = error_of(jpg, "huff.jpg");
  EXPECT_EQ(e, "huff.jpg: truncated or corrupt image (bad JPEG Huffman table)");
}

// A 1x1 picture whose pixel stream inflates to megabytes: refused, not inflated.
TEST(Decode, ZlibBombIsRefused) {
  const std::vector<uint8_t> zlib = zlib_of_zeros(size_t(8) << 20);
  ASSERT_LT(zlib.size(), size_t(60000));
  const std::string e = error_of(png_with_idat(1, 1, 8, 2, zlib, 8192), "bomb.png");
  EXPECT_TRUE(starts_with(e, "bomb.png: truncated or corrupt image (")) << e;
  // An honest stream for the same picture decodes, also through the fixed-Huffman path.
  EXPECT_EQ(decode(png_with_idat(1, 1, 8, 2, zlib_of_zeros(4), 8192)).rgb,
            (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(decode(png_with_idat(1, 1, 8, 2, zlib_stored({0, 1, 2, 3}), 8192)).rgb,
            (std::vector<uint8_t>{1, 2, 3}));
}

// stb 2.27 memcpys an empty IDAT chunk that comes before any pixel data to a null pointer
// (undefined behaviour, reported by UBSan); empty IDAT chunks add nothing, so the picture is
// the same without them.
TEST(Decode, EmptyIdatChunksAreSkipped) {
  const Image im = gradient(3, 2);
  std::vector<uint8_t> png = tagnet::encode_png(im);
  const std::vector<uint8_t> empty_idat = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
  size_t idat = 0;
  for (size_t i = 8; i + 4 <= png.size() && !idat; ++i)
    if (std::equal(png.begin() + i, png.begin() + i + 4, "IDAT")) idat = i - 4;
  ASSERT_GT(idat, 0u);
  png.insert(png.begin() + idat, empty_idat.begin(), empty_idat.end());
  png.insert(png.end() - 12, empty_idat.begin(), empty_idat.end());  // and one before IEND
  EXPECT_EQ(decode(png).rgb, im.rgb);
  // Only empty IDAT chunks: no pixel data.
  std::vector<uint8_t> none(png.begin(), png.begin() + idat + 12);
  none.insert(none.end(), png.end() - 12, png.end());
  EXPECT_TRUE(starts_with(error_of(none, "none.png"), "none.png: truncated or corrupt image (bad PNG data)"))
      << error_of(none, "none.png");
}

// Some progressive JPEGs make stb 2.27 decode a scan with a Huffman table no DHT segment
// defined, reading whatever its allocation held: these two, found by tests/fuzz, read outside
// stb's tables when that memory was dirty. Allocations are zeroed now, so the outcome is the
// same whatever the heap held before.
TEST(Decode, ProgressiveJpegWithUndefinedHuffmanTablesIsDeterministic) {
  const fs::path dir = fs::path(__FILE__).parent_path() / "fuzz" / "regressions" / "image";
  for (const char* name : {"progressive-undefined-huffman-1.jpg", "progressive-undefined-huffman-2.jpg"}) {
    std::ifstream in(dir / name, std::ios::binary);
    ASSERT_TRUE(in) << (dir / name);
    const std::vector<uint8_t> jpg{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::string first;
    for (const uint8_t fill : {0x00, 0xFF, 0x5A}) {
      {
        // Freed blocks keep their bytes: the decoder's next allocations may reuse them.
        std::vector<std::vector<uint8_t>> dirt;
        for (size_t n = 1024; n <= (size_t(64) << 10); n += 512) dirt.emplace_back(n, fill);
      }
      std::string outcome;
      try {
        const Image im = decode(jpg);
        outcome = std::to_string(im.width) + "x" + std::to_string(im.height) + ":" +
                  std::string(im.rgb.begin(), im.rgb.end());
      } catch (const ImageError& e) {
        outcome = e.what();
      }
      if (fill == 0x00) first = outcome;
      else EXPECT_EQ(outcome, first) << name << " after a heap filled with " << int(fill);
    }
  }
}

// The allocation cap must leave room for the largest honest case: 16-bit RGBA that does not
// compress at all, in many small IDAT chunks (stb grows their buffer by doubling).
TEST(Decode, IncompressibleSixteenBitRgba) {
  const int w = 700, h = 500;
  std::vector<uint8_t> raw;
  raw.reserve(size_t(h) * (w * 8 + 1));
  tagnet::Rng rng(8);
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < w * 8; ++i) raw.push_back(uint8_t(rng.below(256)));
  }
  const Image im = decode(png_with_idat(w, h, 16, 6, zlib_stored(raw), 8192));
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  // 16 bits become 8 (the high byte); alpha is dropped.
  for (int i : {0, 1, 2, 12345, w * h - 1}) {
    const int y = i / w, x = i % w;
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(im.rgb[size_t(i) * 3 + c], raw[size_t(y) * (w * 8 + 1) + 1 + x * 8 + c * 2]);
  }
}

// Every truncation and thousands of random corruptions of each format either decode to a
// consistent picture or raise ImageError; nothing else may happen (run under ASan to see
// memory errors too).
TEST(Decode, SurvivesTruncationAndCorruption) {
  const Image im = gradient(16, 12);
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < im.rgb.size(); i += 3)
    rgba.insert(rgba.end(), {im.rgb[i], im.rgb[i + 1], im.rgb[i + 2], uint8_t(i)});
  const std::vector<std::vector<uint8_t>> samples = {
      tagnet::encode_png(im),  tagnet::encode_jpeg(im, 80), png_bytes(rgba, 16, 12, 4),
      bmp_bytes(im.rgb, 16, 12, 3), gif_bytes(true)};
  tagnet::Rng rng(1234);
  size_t decoded = 0, refused = 0;
  auto attempt = [&](const std::vector<uint8_t>& b) {
    try {
      const Image out = tagnet::decode_image(b.data(), b.size(), "fuzz");
      ASSERT_GT(out.width, 0);
      ASSERT_GT(out.height, 0);
      ASSERT_EQ(out.rgb.size(), size_t(out.width) * out.height * 3);
      ++decoded;
    } catch (const ImageError& e) {
      ASSERT_TRUE(starts_with(e.what(), "fuzz: ")) << e.what();
      ++refused;
    }
  };
  for (const auto& s : samples) {
    for (size_t n = 0; n < s.size(); ++n) attempt(std::vector<uint8_t>(s.begin(), s.begin() + n));
    for (int trial = 0; trial < 3000; ++trial) {
      std::vector<uint8_t> b = s;
      const int flips = 1 + int(rng.below(6));
      for (int f = 0; f < flips; ++f) {
        const size_t at = rng.below(uint32_t(b.size()));
        // Mostly in the header, where the structure lives.
        const size_t pos = rng.below(2) ? at : at % std::min<size_t>(b.size(), 64);
        b[pos] = rng.below(4) ? uint8_t(b[pos] ^ (1u << rng.below(8))) : uint8_t(rng.below(256));
      }
      if (rng.below(8) == 0) b.resize(rng.below(uint32_t(b.size())));
      attempt(b);
    }
  }
  EXPECT_GT(decoded, 0u);
  EXPECT_GT(refused, 0u);
}

// --- Files ---

TEST(Files, SaveAndLoadPng) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/a.png";
  const Image im = gradient(10, 6);
  tagnet::save_png(path, im);
  tagnet::save_png(path, im);  // replacing an existing file
  EXPECT_EQ(tagnet::load_image(path).rgb, im.rgb);
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"a.png"});  // no temporary left
  fs::remove_all(dir);
}

TEST(Files, SaveAndLoadJpeg) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/b.jpg";
  tagnet::save_jpeg(path, solid(9, 9, 200, 100, 50), 90);
  const Image back = tagnet::load_image(path);
  ASSERT_EQ(back.rgb.size(), size_t(9 * 9 * 3));
  for (size_t i = 0; i < back.rgb.size(); i += 3) {
    EXPECT_NEAR(back.rgb[i], 200, 3);
    EXPECT_NEAR(back.rgb[i + 1], 100, 3);
    EXPECT_NEAR(back.rgb[i + 2], 50, 3);
  }
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"b.jpg"});
  fs::remove_all(dir);
}

TEST(Files, ErrorsNameThePath) {
  const std::string dir = temp_dir();
  const std::string missing = dir + "/nope/missing.png";
  try {
    tagnet::load_image(missing);
    FAIL() << "no error";
  } catch (const ImageError& e) {
    EXPECT_TRUE(starts_with(e.what(), missing + ": ")) << e.what();
  }
  try {
    tagnet::load_image(dir);  // a directory opens but does not read
    FAIL() << "no error";
  } catch (const ImageError& e) {
    EXPECT_TRUE(starts_with(e.what(), dir + ": ")) << e.what();
  }
  const std::string text = dir + "/notes.png";
  std::ofstream(text) << "not a picture";
  try {
    tagnet::load_image(text);
    FAIL() << "no error";
  } catch (const ImageError& e) {
    EXPECT_TRUE(starts_with(e.what(), text + ": not an image")) << e.what();
  }
  for (auto save : {+[](const std::string& p) { tagnet::save_png(p, gradient(2, 2)); },
                    +[](const std::string& p) { tagnet::save_jpeg(p, gradient(2, 2)); }}) {
    try {
      save(missing);
      FAIL() << "no error";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(starts_with(e.what(), missing + ": ")) << e.what();
    }
  }
  // A directory in the way: the temporary is written, the rename fails, the temporary goes.
  fs::create_directories(dir + "/taken.png");
  EXPECT_THROW(tagnet::save_png(dir + "/taken.png", gradient(2, 2)), std::runtime_error);
  EXPECT_EQ(files_in(dir), (std::vector<std::string>{"notes.png", "taken.png"}));
  Image bad = gradient(2, 2);
  bad.rgb.pop_back();
  EXPECT_THROW(tagnet::save_png(dir + "/bad.png", bad), std::runtime_error);
  EXPECT_THROW(tagnet::encode_png(bad), std::invalid_argument);
  fs::remove_all(dir);
}

TEST(Image, FromRgbaDropsAlpha) {
  const std::vector<uint8_t> rgba = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const Image im = tagnet::image_from_rgba(rgba.data(), 3, 1);
  EXPECT_EQ(im.width, 3);
  EXPECT_EQ(im.height, 1);
  EXPECT_EQ(im.rgb, (std::vector<uint8_t>{1, 2, 3, 5, 6, 7, 9, 10, 11}));
}

// --- Resizing ---

Image grey_image(int w, int h, const std::vector<int>& v) {
  Image im;
  im.width = w;
  im.height = h;
  for (int x : v) im.rgb.insert(im.rgb.end(), {uint8_t(x), uint8_t(x), uint8_t(x)});
  return im;
}

std::vector<int> red_of(const Image& im) {
  std::vector<int> r;
  for (size_t i = 0; i < im.rgb.size(); i += 3) r.push_back(im.rgb[i]);
  return r;
}

TEST(Resize, ShrinkAveragesAreas) {
  const Image im = grey_image(4, 4, {0, 4, 8, 12,      //
                                     16, 20, 24, 28,   //
                                     100, 100, 0, 0,   //
                                     100, 104, 0, 252});
  const Image out = tagnet::resize_image(im, 2, 2);
  EXPECT_EQ(red_of(out), (std::vector<int>{10, 18, 101, 63}));
  // 3 -> 2: output 0 covers source [0, 1.5), so (2 a + b) / 3.
  EXPECT_EQ(red_of(tagnet::resize_image(grey_image(3, 1, {30, 60, 90}), 2, 1)),
            (std::vector<int>{40, 80}));
  EXPECT_EQ(red_of(tagnet::resize_image(grey_image(1, 3, {30, 60, 90}), 1, 2)),
            (std::vector<int>{40, 80}));
}

TEST(Resize, EnlargeIsBilinearWithHalfPixelCentres) {
  // Output centres fall on source -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1) on
  // both axes: rows 0 and 3 are the source rows stretched (0, 50, 150, 200), rows 1 and 2
  // blend them 3:1 and 1:3, halves rounding up (52.5 -> 53).
  const Image im = grey_image(2, 2, {0, 200, 40, 120});
  EXPECT_EQ(red_of(tagnet::resize_image(im, 4, 4)), (std::vector<int>{0, 50, 150, 200,    //
                                                                     10, 53, 138, 180,   //
                                                                     30, 58, 113, 140,   //
                                                                     40, 60, 100, 120}));
}

TEST(Resize, MixedAxesAndSameSize) {
  // Width shrinks 4 -> 2 (area), height grows 1 -> 2 (repeat of the single row).
  const Image out = tagnet::resize_image(grey_image(4, 1, {10, 20, 30, 50}), 2, 2);
  EXPECT_EQ(red_of(out), (std::vector<int>{15, 40, 15, 40}));
  const Image im = gradient(5, 3);
  EXPECT_EQ(tagnet::resize_image(im, 5, 3).rgb, im.rgb);
}

TEST(Resize, ConstantStaysConstant) {
  const Image im = solid(37, 23, 201, 3, 77);
  for (auto [w, h] : {std::pair{1, 1}, {5, 3}, {36, 22}, {37, 60}, {100, 7}, {96, 96}, {11, 23}}) {
    const Image out = tagnet::resize_image(im, w, h);
    ASSERT_EQ(out.rgb.size(), size_t(w * h * 3));
    EXPECT_EQ(out.rgb, solid(w, h, 201, 3, 77).rgb) << w << "x" << h;
  }
}

TEST(Resize, BadArguments) {
  EXPECT_THROW(tagnet::resize_image(gradient(2, 2), 0, 3), std::invalid_argument);
  EXPECT_THROW(tagnet::resize_image(Image(), 3, 3), std::invalid_argument);
}

// --- Model input ---

TEST(Input, RgbAndGrey) {
  Image c;
  c.width = 2;
  c.height = 1;
  c.rgb = {255, 0, 0, 10, 20, 30};
  std::vector<float> x(6);
  tagnet::image_to_input(c, 1, 2, 3, x.data());
  EXPECT_FLOAT_EQ(x[0], 1.f);
  EXPECT_FLOAT_EQ(x[1], 0.f);
  EXPECT_FLOAT_EQ(x[5], 30.f / 255);
  tagnet::image_to_input(c, 1, 2, 1, x.data());
  EXPECT_NEAR(x[0], 0.299f, 1e-6);
  EXPECT_NEAR(x[1], (0.299f * 10 + 0.587f * 20 + 0.114f * 30) / 255, 1e-6);
  EXPECT_THROW(tagnet::image_to_input(c, 1, 2, 4, x.data()), std::invalid_argument);
}

TEST(Input, ResizesWhenNeeded) {
  const Image im = grey_image(4, 4, {0, 4, 8, 12, 16, 20, 24, 28, 100, 100, 0, 0, 100, 104, 0, 252});
  std::vector<float> x(2 * 2 * 3);
  tagnet::image_to_input(im, 2, 2, 3, x.data());
  const float expect[4] = {10, 18, 101, 63};
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(x[i * 3 + c], expect[i] / 255);
}

// --- Augmentation ---

// (H, W, C) with value 10 * row + col + 100 * channel: bilinear sampling reproduces it exactly
// wherever the sample lies inside the picture.
std::vector<float> ramp(int H, int W, int C) {
  std::vector<float> v(size_t(H) * W * C);
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c)
      for (int k = 0; k < C; ++k) v[(size_t(r) * W + c) * C + k] = 10.f * r + c + 100.f * k;
  return v;
}

std::vector<float> affine(const std::vector<float>& src, int H, int W, int C,
                          const AffineParams& p, FillMode fill = FillMode::kNearest,
                          float cval = 0) {
  std::vector<float> dst(src.size(), -1.f);
  tagnet::apply_affine(src.data(), H, W, C, dst.data(), p, fill, cval);
  return dst;
}

TEST(Augment, IdentityIsExact) {
  const auto src = ramp(5, 7, 2);
  EXPECT_EQ(affine(src, 5, 7, 2, AffineParams{}), src);
  tagnet::Augment off;
  EXPECT_FALSE(off.active());
  tagnet::Rng rng(3), untouched(3);
  std::vector<float> dst(src.size());
  tagnet::augment_image(src.data(), 5, 7, 2, dst.data(), off, rng);
  EXPECT_EQ(dst, src);
  EXPECT_EQ(rng.next(), untouched.next());  // nothing drawn
}

TEST(Augment, HorizontalFlipIsExact) {
  const int H = 3, W = 4, C = 2;
  const auto src = ramp(H, W, C);
  AffineParams p;
  p.flip = true;
  const auto out = affine(src, H, W, C, p);
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c)
      for (int k = 0; k < C; ++k)
        EXPECT_EQ(out[(r * W + c) * C + k], src[(r * W + (W - 1 - c)) * C + k]);
}

TEST(Augment, QuarterTurnOfASquareIsAPermutation) {
  for (int n : {4, 5}) {
    const auto src = ramp(n, n, 1);
    AffineParams p;
    p.theta_deg = 90;
    const auto out = affine(src, n, n, 1, p);
    // Output (r, c) samples centre + R(90)(r - o, c - o) = (n - 1 - c, r).
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) EXPECT_EQ(out[r * n + c], src[(n - 1 - c) * n + r]) << n;
  }
}

TEST(Augment, RotationComesBeforeShift) {
  const int n = 5;
  const auto src = ramp(n, n, 1);
  AffineParams p;
  p.theta_deg = 90;
  p.tx = 1;
  const auto out = affine(src, n, n, 1, p);
  // A = R . T: samples (n - 1 - c, r + 1); T . R would give (n - c, r).
  for (int r = 0; r + 1 < n; ++r)
    for (int c = 0; c < n; ++c) EXPECT_EQ(out[r * n + c], src[(n - 1 - c) * n + r + 1]);
}

TEST(Augment, ShiftByTwoPerFillMode) {
  const int n = 5;
  const auto src = ramp(n, n, 1);
  AffineParams p;
  p.tx = 2;  // output row r samples row r + 2: content moves up by 2
  // Rows 3 and 4 sample rows 5 and 6, outside.
  const int nearest[2] = {4, 4}, reflect[2] = {4, 3}, wrap[2] = {0, 1};
  for (FillMode m : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap}) {
    const auto out = affine(src, n, n, 1, p, m, -7.f);
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        float expect;
        if (r + 2 < n) expect = src[(r + 2) * n + c];
        else if (m == FillMode::kConstant) expect = -7.f;
        else {
          const int* rows = m == FillMode::kNearest ? nearest : m == FillMode::kReflect ? reflect : wrap;
          expect = src[rows[r - 3] * n + c];
        }
        EXPECT_EQ(out[r * n + c], expect) << int(m) << " " << r << " " << c;
      }
  }
  // Columns: ty = -2 samples col c - 2; reflect gives (b a | a b c d e).
  AffineParams q;
  q.ty = -2;
  const auto out = affine(src, n, n, 1, q, FillMode::kReflect);
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(out[r * n + 0], src[r * n + 1]);
    EXPECT_EQ(out[r * n + 1], src[r * n + 0]);
    EXPECT_EQ(out[r * n + 4], src[r * n + 2]);
  }
}

TEST(Augment, HalfPixelBeyondTheEdge) {
  const int n = 5;
  const auto src = ramp(n, n, 1);
  AffineParams p;
  p.tx = 0.5f;  // last row samples 4.5
  auto at = [&](FillMode m) { return affine(src, n, n, 1, p, m, -1.f)[4 * n + 2]; };
  EXPECT_EQ(at(FillMode::kNearest), src[4 * n + 2]);
  EXPECT_EQ(at(FillMode::kReflect), src[4 * n + 2]);
  EXPECT_EQ(at(FillMode::kWrap), 0.5f * (src[4 * n + 2] + src[0 * n + 2]));
  EXPECT_EQ(at(FillMode::kConstant), -1.f);
  EXPECT_EQ(affine(src, n, n, 1, p, FillMode::kConstant)[3 * n + 2], 10 * 3.5f + 2);
}

TEST(Augment, ZoomAboutTheCentre) {
  const int n = 5, C = 2;
  const auto src = ramp(n, n, C);
  AffineParams in;
  in.zx = in.zy = 0.5f;  // magnifies 2x: output r samples 2 + (r - 2) / 2
  auto out = affine(src, n, n, C, in);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c)
      for (int k = 0; k < C; ++k)
        EXPECT_FLOAT_EQ(out[(r * n + c) * C + k],
                        10 * (2 + 0.5f * (r - 2)) + (2 + 0.5f * (c - 2)) + 100 * k);
  AffineParams outp;
  outp.zx = outp.zy = 2;  // shrinks 2x: output r samples 2 + 2 (r - 2) = -2, 0, 2, 4, 6
  out = affine(ramp(n, n, 1), n, n, 1, outp, FillMode::kConstant, 9.f);
  const std::vector<float> expect = {9, 9, 9,  9,  9,  //
                                     9, 0, 2,  4,  9,  //
                                     9, 20, 22, 24, 9,  //
                                     9, 40, 42, 44, 9,  //
                                     9, 9, 9,  9,  9};
  EXPECT_EQ(out, expect);
}

TEST(Augment, ShearMatchesKerasMatrix) {
  constexpr double kPi = 3.14159265358979323846;
  const int n = 5;
  const auto src = ramp(n, n, 1);
  AffineParams p;
  p.shear_deg = 30;
  const auto out = affine(src, n, n, 1, p);
  // Samples (o + (r - o) - sin(s) (c - o), o + cos(s) (c - o)), o = 2.
  EXPECT_FLOAT_EQ(out[2 * n + 2], src[2 * n + 2]);
  EXPECT_NEAR(out[2 * n + 3], 10 * 1.5 + (2 + std::cos(kPi / 6)), 1e-5);
  EXPECT_NEAR(out[3 * n + 1], 10 * 3.5 + (2 - std::cos(kPi / 6)), 1e-5);
}

TEST(Augment, DrawStaysInRangeAndIsDeterministic) {
  tagnet::Augment a;
  a.rotation_deg = 30;
  a.width_shift = 0.1f;
  a.height_shift = 0.2f;
  a.shear_deg = 10;
  a.zoom = 0.25f;
  a.hflip = true;
  EXPECT_TRUE(a.active());
  const int H = 40, W = 60;
  tagnet::Rng rng(99);
  int flips = 0;
  float max_theta = 0, max_tx = 0, max_ty = 0, max_zx = 0;
  for (int i = 0; i < 2000; ++i) {
    const AffineParams p = tagnet::draw_affine(a, H, W, rng);
    EXPECT_LE(std::abs(p.theta_deg), 30.f);
    EXPECT_LE(std::abs(p.tx), 0.2f * H);
    EXPECT_LE(std::abs(p.ty), 0.1f * W);
    EXPECT_LE(std::abs(p.shear_deg), 10.f);
    EXPECT_GE(p.zx, 0.75f);
    EXPECT_LE(p.zx, 1.25f);
    EXPECT_GE(p.zy, 0.75f);
    EXPECT_LE(p.zy, 1.25f);
    EXPECT_NE(p.zx, p.zy);  // independent per axis
    flips += p.flip;
    max_theta = std::max(max_theta, std::abs(p.theta_deg));
    max_tx = std::max(max_tx, std::abs(p.tx));
    max_ty = std::max(max_ty, std::abs(p.ty));
    max_zx = std::max(max_zx, p.zx);
  }
  EXPECT_GT(flips, 850);
  EXPECT_LT(flips, 1150);
  EXPECT_GT(max_theta, 29.f);  // the range is used, not just respected
  EXPECT_GT(max_tx, 0.19f * H);
  EXPECT_GT(max_ty, 0.09f * W);
  EXPECT_GT(max_zx, 1.24f);

  tagnet::Rng r1(5), r2(5), r3(6);
  const AffineParams p1 = tagnet::draw_affine(a, H, W, r1), p2 = tagnet::draw_affine(a, H, W, r2),
                     p3 = tagnet::draw_affine(a, H, W, r3);
  EXPECT_EQ(p1.theta_deg, p2.theta_deg);
  EXPECT_EQ(p1.tx, p2.tx);
  EXPECT_EQ(p1.zy, p2.zy);
  EXPECT_EQ(p1.flip, p2.flip);
  EXPECT_NE(p1.theta_deg, p3.theta_deg);

  // From 1 up a shift range is in pixels.
  tagnet::Augment px;
  px.width_shift = 3;
  for (int i = 0; i < 200; ++i) {
    const AffineParams p = tagnet::draw_affine(px, H, W, rng);
    EXPECT_LE(std::abs(p.ty), 3.f);
    EXPECT_EQ(p.tx, 0.f);
    EXPECT_FALSE(p.flip);
  }
}

TEST(Augment, AugmentImageAppliesTheDrawnTransform) {
  tagnet::Augment a;
  a.rotation_deg = 20;
  a.zoom = 0.1f;
  a.hflip = true;
  a.fill = FillMode::kReflect;
  const int H = 8, W = 6, C = 3;
  const auto src = ramp(H, W, C);
  tagnet::Rng r1(17), r2(17);
  std::vector<float> got(src.size());
  tagnet::augment_image(src.data(), H, W, C, got.data(), a, r1);
  const AffineParams p = tagnet::draw_affine(a, H, W, r2);
  EXPECT_EQ(got, affine(src, H, W, C, p, FillMode::kReflect));
  EXPECT_NE(got, src);
}
