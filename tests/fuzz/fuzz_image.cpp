// Picture decoding, tagnet::decode_image (what `tagnet classify`, the dataset readers and the
// WebAssembly module call) over every format tagnet accepts: JPEG, PNG, BMP and GIF. Every
// input either decodes to a consistent RGB picture within the size limits, or is refused with
// a one-line ImageError naming the input.
#include "tagnet/io/image.h"

#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tagnet;
  const std::string origin = "fuzz.picture";
  try {
    const Image im = decode_image(data, size, origin);
    fuzz::expect(im.width > 0 && im.height > 0 && im.width <= kMaxImageSide && im.height <= kMaxImageSide &&
                     int64_t(im.width) * im.height <= kMaxImagePixels,
                 "a decoded picture is within the size limits");
    fuzz::expect(im.rgb.size() == size_t(im.width) * size_t(im.height) * 3, "a decoded picture is RGB");
    // As a model sees it: resized to a small input.
    std::vector<float> x(8 * 8 * 3);
    image_to_input(im, 8, 8, 3, x.data());
  } catch (const ImageError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
  }
  return 0;
}
