// Pictures: decoding (JPEG, PNG, BMP, GIF), saving, resizing, conversion to model input, and
// augmentation with the meaning of Keras' ImageDataGenerator parameters.
//
//   tagnet::Image im = tagnet::load_image("red_dress/0001.jpg");   // 8-bit RGB, any size
//   std::vector<float> x(96 * 96 * 3), y(x.size());
//   tagnet::image_to_input(im, 96, 96, 3, x.data());               // (96, 96, 3) in [0, 1]
//   tagnet::Augment aug;  aug.rotation_deg = 25;  aug.zoom = 0.2f;  aug.hflip = true;
//   tagnet::Rng rng(7);
//   tagnet::augment_image(x.data(), 96, 96, 3, y.data(), aug, rng);  // a random variant
//   tagnet::save_png("small.png", tagnet::resize_image(im, 48, 48));
//
// Everything here is plain C++ on one thread, so native and WASM builds agree: augmentation
// draws its numbers from tagnet::Rng only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tagnet/kernels/engine.h"

namespace tagnet {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)
};

// A file or byte string that is not a usable picture; the message starts with its origin.
class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Larger pictures are refused from their header, before any pixel memory is allocated.
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 64 Mpixel

// Grey, grey + alpha and RGBA become RGB (alpha dropped, as Keras' load_img does); GIF gives
// its first frame. `origin` names the bytes in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& origin);
Image load_image(const std::string& path);
Image image_from_rgba(const uint8_t* rgba, int width, int height);  // rgba (height, width, 4)

// Atomic: written beside `path` under a temporary name, then renamed over it.
void save_png(const std::string& path, const Image& image);
void save_jpeg(const std::string& path, const Image& image, int quality = 90);
std::vector<uint8_t> encode_png(const Image& image);
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);

// Per axis: area averaging when shrinking (OpenCV INTER_AREA), bilinear with half-pixel
// centres when enlarging (OpenCV INTER_LINEAR); an unchanged axis is copied.
Image resize_image(const Image& image, int width, int height);

// Resizes to W x H when needed and writes out (H, W, C) in [0, 1]; C = 3 is RGB, C = 1 grey
// (0.299 R + 0.587 G + 0.114 B).
void image_to_input(const Image& image, int H, int W, int C, float* out);

// --- Augmentation ---

// What lies outside the picture: kNearest repeats the edge (a a | a b c d | d d), kConstant
// is cval, kReflect mirrors about the edge (b a | a b c d | d c), kWrap tiles (c d | a b c d | a b).
enum class FillMode { kNearest, kConstant, kReflect, kWrap };
std::string fill_mode_name(FillMode mode);   // Keras' fill_mode: "nearest", "constant", ...
// Throws std::invalid_argument naming the modes for an unknown name.
FillMode fill_mode_from_name(const std::string& name);

// Ranges as in ImageDataGenerator: rotation_range (degrees), width_shift_range and
// height_shift_range (a fraction of the size when < 1, else pixels), shear_range (degrees),
// zoom_range z (zoom factors drawn from [1 - z, 1 + z], independently per axis),
// horizontal_flip, fill_mode and cval.
struct Augment {
  float rotation_deg = 0, width_shift = 0, height_shift = 0, shear_deg = 0, zoom = 0;
  bool hflip = false;
  FillMode fill = FillMode::kNearest;
  float cval = 0;
  bool active() const;
};

// One drawn transform, in keras_preprocessing's apply_affine_transform terms. The output pixel
// (row, col) samples the input at centre + A (row - centre, col - centre) where
// A = rotation(theta) . shift(tx, ty) . shear . zoom(zx, zy) in (row, col) coordinates, so
// tx > 0 moves the content up by tx rows and ty > 0 left by ty columns; zx, zy > 1 shrink it.
// flip mirrors the result left-right afterwards.
struct AffineParams {
  float theta_deg = 0, tx = 0, ty = 0, shear_deg = 0, zx = 1, zy = 1;
  bool flip = false;
};

// Draws in Keras' order (theta, tx, ty, shear, zx, zy, flip), a draw only for each active range.
AffineParams draw_affine(const Augment& a, int H, int W, Rng& rng);
// src and dst (H, W, C), distinct; bilinear sampling. Identity parameters copy src exactly.
void apply_affine(const float* src, int H, int W, int C, float* dst, const AffineParams& p,
                  FillMode fill, float cval);
// draw_affine then apply_affine; a plain copy when !a.active().
void augment_image(const float* src, int H, int W, int C, float* dst, const Augment& a, Rng& rng);

}  // namespace tagnet
