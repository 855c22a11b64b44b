// Drawing: the history chart, the montage and annotated pictures, decoded back from PNG.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "draw.h"

namespace tagnet::native {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "tagnet_draw_" + std::to_string(::getpid()) + "_" + name;
}

std::string temp_file_of(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The core keeps stb_image private (static), so PNGs are read back through its decoder.
Image decode(const std::string& path) {
  try {
    return load_image(path);
  } catch (const ImageError& e) {
    ADD_FAILURE() << e.what();
    return {};
  }
}

const uint8_t* pixel(const Image& im, int x, int y) {
  return im.rgb.data() + (size_t(y) * im.width + x) * 3;
}

size_t count_near(const Image& im, unsigned rgb, int tolerance) {
  const int r = (rgb >> 16) & 255, g = (rgb >> 8) & 255, b = rgb & 255;
  size_t n = 0;
  for (size_t i = 0; i < im.rgb.size(); i += 3)
    n += std::abs(im.rgb[i] - r) <= tolerance && std::abs(im.rgb[i + 1] - g) <= tolerance &&
         std::abs(im.rgb[i + 2] - b) <= tolerance;
  return n;
}

Image solid(int w, int h, unsigned rgb) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < im.rgb.size(); i += 3) {
    im.rgb[i] = uint8_t(rgb >> 16);
    im.rgb[i + 1] = uint8_t(rgb >> 8);
    im.rgb[i + 2] = uint8_t(rgb);
  }
  return im;
}

nlohmann::json history(int epochs, bool with_val) {
  nlohmann::json h = nlohmann::json::array();
  for (int e = 1; e <= epochs; ++e) {
    const double loss = 1.2 * std::exp(-e / 6.0) + 0.1, acc = 1 - 0.6 * std::exp(-e / 5.0);
    nlohmann::json row = {{"epoch", e}, {"loss", loss}, {"accuracy", acc}};
    if (with_val) {
      row["val_loss"] = loss + 0.1;
      row["val_accuracy"] = acc - 0.05;
    }
    h.push_back(row);
  }
  return h;
}

TEST(HistoryPlot, DrawsFourLinesAt800x500) {
  const std::string path = temp_path("plot.png");
  save_history_plot(path, history(20, true), "Training Loss and Accuracy");
  EXPECT_FALSE(exists(temp_file_of(path)));
  const Image im = decode(path);
  ASSERT_EQ(im.width, 800);
  ASSERT_EQ(im.height, 500);
  for (unsigned c : kHistoryColours) EXPECT_GT(count_near(im, c, 12), 100u) << std::hex << c;
  std::remove(path.c_str());
}

TEST(HistoryPlot, SkipsAbsentAndNullValidation) {
  const std::string path = temp_path("train_only.png");
  nlohmann::json h = history(40, false);
  h[3]["val_loss"] = nullptr;
  h[3]["val_accuracy"] = nullptr;
  save_history_plot(path, h, "no validation");
  const Image im = decode(path);
  ASSERT_EQ(im.width, 800);
  EXPECT_GT(count_near(im, kHistoryColours[0], 12), 100u);   // train_loss
  EXPECT_GT(count_near(im, kHistoryColours[2], 12), 100u);   // train_acc
  EXPECT_EQ(count_near(im, kHistoryColours[1], 12), 0u);     // val_loss
  EXPECT_EQ(count_near(im, kHistoryColours[3], 12), 0u);     // val_acc
  std::remove(path.c_str());
}

TEST(HistoryPlot, OneEpochAndEmptyHistoryStillDraw) {
  const std::string path = temp_path("one.png");
  save_history_plot(path, history(1, true), "one epoch");
  Image im = decode(path);
  ASSERT_EQ(im.width, 800);
  for (unsigned c : kHistoryColours) EXPECT_GT(count_near(im, c, 12), 10u) << std::hex << c;
  save_history_plot(path, nlohmann::json::array(), "nothing yet");
  im = decode(path);
  EXPECT_EQ(im.height, 500);
  std::remove(path.c_str());
}

TEST(HistoryPlot, ReplacesAnExistingFile) {
  const std::string path = temp_path("replace.png");
  std::ofstream(path) << "not a picture";
  save_history_plot(path, history(3, true), "again");
  EXPECT_EQ(decode(path).width, 800);
  std::remove(path.c_str());
}

TEST(HistoryPlot, MissingDirectoryThrowsNamingThePath) {
  const std::string dir = temp_path("no_such_dir");
  ASSERT_FALSE(exists(dir));
  const std::string path = dir + "/plot.png";
  try {
    save_history_plot(path, history(3, true), "t");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(exists(path));
  EXPECT_FALSE(exists(temp_file_of(path)));
}

TEST(HistoryPlot, FailedRenameRemovesTheTemporaryFile) {
  // A directory in the way: the PNG is written, then cannot be renamed over it.
  const std::string path = temp_path("a_directory");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  EXPECT_THROW(save_history_plot(path, history(3, true), "t"), std::runtime_error);
  EXPECT_FALSE(exists(temp_file_of(path)));
  ::rmdir(path.c_str());
}

TEST(HistoryPlot, RejectsMalformedHistory) {
  const std::string path = temp_path("bad.png");
  EXPECT_THROW(save_history_plot(path, nlohmann::json::object(), "t"), std::invalid_argument);
  EXPECT_THROW(save_history_plot(path, nlohmann::json::array({1, 2}), "t"), std::invalid_argument);
  EXPECT_FALSE(exists(path));
}

TEST(Montage, GridOfScaledTilesWithCaptions) {
  const unsigned colours[5] = {0xFF0000, 0x00FF00, 0x0000FF, 0xFFFF00, 0xFF00FF};
  std::vector<Image> tiles;
  std::vector<std::string> captions;
  for (int i = 0; i < 5; ++i) {
    tiles.push_back(solid(20, 20, colours[i]));
    captions.push_back("tile " + std::to_string(i));
  }
  const std::string path = temp_path("montage.png");
  const int tile = 50;
  save_montage(path, tiles, captions, 3, tile);
  EXPECT_FALSE(exists(temp_file_of(path)));
  const Image im = decode(path);
  ASSERT_EQ(im.width, 3 * (tile + kMontageGap) + kMontageGap);
  ASSERT_GT(im.height, 2 * (tile + kMontageGap) + kMontageGap);   // room for captions
  const int cell_h = (im.height - kMontageGap) / 2;
  for (int i = 0; i < 5; ++i) {
    const int x = kMontageGap + (i % 3) * (tile + kMontageGap) + tile / 2;
    const int y = kMontageGap + (i / 3) * cell_h + tile / 2;
    const uint8_t* p = pixel(im, x, y);
    EXPECT_EQ((unsigned(p[0]) << 16) | (p[1] << 8) | p[2], colours[i]) << "tile " << i;
  }
  // Dark caption text under the first tile.
  size_t dark = 0;
  for (int y = kMontageGap + tile; y < cell_h; ++y)
    for (int x = kMontageGap; x < kMontageGap + tile; ++x) {
      const uint8_t* p = pixel(im, x, y);
      dark += p[0] < 100 && p[1] < 100 && p[2] < 100;
    }
  EXPECT_GT(dark, 10u);
  std::remove(path.c_str());
}

TEST(Montage, KeepsAspectAndNeedsNoCaptions) {
  const std::string path = temp_path("aspect.png");
  const int tile = 60;
  save_montage(path, {solid(40, 20, 0x0000FF), solid(10, 10, 0xFF0000)}, {}, 4, tile);
  const Image im = decode(path);
  ASSERT_EQ(im.width, 2 * (tile + kMontageGap) + kMontageGap);
  ASSERT_EQ(im.height, tile + 2 * kMontageGap);
  // 40x20 becomes 60x30, centred: empty bands above and below it.
  const uint8_t* above = pixel(im, kMontageGap + 30, kMontageGap + 5);
  const uint8_t* inside = pixel(im, kMontageGap + 30, kMontageGap + 30);
  EXPECT_NE(above[2], 255);
  EXPECT_EQ(inside[0], 0);
  EXPECT_EQ(inside[2], 255);
  std::remove(path.c_str());
}

TEST(Montage, RejectsBadArguments) {
  const std::string path = temp_path("bad_montage.png");
  const Image t = solid(4, 4, 0);
  Image broken = t;
  broken.rgb.pop_back();
  EXPECT_THROW(save_montage(path, {}, {}, 2, 32), std::invalid_argument);
  EXPECT_THROW(save_montage(path, {t, t}, {"one"}, 2, 32), std::invalid_argument);
  EXPECT_THROW(save_montage(path, {t}, {}, 0, 32), std::invalid_argument);
  EXPECT_THROW(save_montage(path, {broken}, {}, 1, 32), std::invalid_argument);
  EXPECT_FALSE(exists(path));
}

TEST(Montage, SurvivesInvalidUtf8Captions) {
  const std::string path = temp_path("utf8.png");
  EXPECT_NO_THROW(save_montage(path, {solid(8, 8, 0x808080)}, {"caf\xC3\xA9 \xFF\xFE"}, 1, 64));
  EXPECT_EQ(decode(path).width, 64 + 2 * kMontageGap);
  std::remove(path.c_str());
}

bool is_text_green(const uint8_t* p) { return p[1] > 200 && p[0] < 90 && p[2] < 90; }

TEST(Annotate, EnlargesToMinWidthAndWritesTopLeft) {
  const Image src = solid(100, 50, 0x808080);
  const Image out = annotate_image(src, {"red: 99.95%", "dress: 98.40%"});
  ASSERT_EQ(out.width, 400);
  ASSERT_EQ(out.height, 200);
  size_t green = 0;
  int max_x = 0, max_y = 0;
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      if (is_text_green(pixel(out, x, y))) {
        ++green;
        max_x = std::max(max_x, x);
        max_y = std::max(max_y, y);
      }
  EXPECT_GT(green, 200u);
  EXPECT_LT(max_x, 300);
  EXPECT_LT(max_y, 100);
  const uint8_t* corner = pixel(out, 399, 199);
  EXPECT_EQ(corner[0], 0x80);
  EXPECT_EQ(corner[1], 0x80);
  EXPECT_EQ(corner[2], 0x80);
  EXPECT_EQ(src.width, 100);   // the input is left alone
}

TEST(Annotate, WidePicturesKeepTheirPixels) {
  Image src = solid(640, 300, 0x102030);
  src.rgb[3 * (299 * 640 + 639)] = 0xAB;
  const Image plain = annotate_image(src, {});
  EXPECT_EQ(plain.width, 640);
  EXPECT_EQ(plain.height, 300);
  EXPECT_EQ(plain.rgb, src.rgb);
  const Image marked = annotate_image(src, {"a very long line of text that does not fit in 640 pixels at all"});
  EXPECT_EQ(marked.width, 640);
  size_t green = 0;
  for (int x = 625; x < 640; ++x)
    for (int y = 0; y < 60; ++y) green += is_text_green(pixel(marked, x, y));
  EXPECT_EQ(green, 0u) << "text shrinks to fit";
  EXPECT_NO_THROW(annotate_image(src, {"\xC3("}));
}

}  // namespace
}  // namespace tagnet::native
