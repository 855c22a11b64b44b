// The Fashion-MNIST-derived picture folders: layout, decodability, determinism, colours, and the
// refusal to write over existing data; and the Fashion-MNIST quadrant source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fashion_mnist.h"
#include "make_dataset.h"
#include "tagnet/io/image.h"

namespace fs = std::filesystem;
using tagnet::native::make_fashion_color;
using tagnet::native::make_two_class;
using tagnet::native::make_wardrobe;
using tagnet::native::MakeDatasetReport;

namespace {

const std::string kFmnist = "/usr/share/datasets/fashion-mnist";
constexpr int kPerClass = 8;
constexpr int kSize = 48;
const std::vector<std::string> kFolders = {"dataset/black_jeans", "dataset/blue_dress",
                                           "dataset/blue_jeans",  "dataset/blue_shirt",
                                           "dataset/red_dress",   "dataset/red_shirt"};

bool have_fmnist() { return fs::exists(kFmnist + "/train-images-idx3-ubyte.gz"); }

// A fresh scratch directory per test, removed afterwards, and one dataset (seed 7) made once
// for the tests that only read it.
class MakeDataset : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!shared_.empty()) fs::remove_all(shared_, ec);
  }
  static const fs::path& shared_dataset() {
    if (shared_.empty()) {
      shared_ = fs::temp_directory_path() /
                ("tagnet_make_dataset_" + std::to_string(::getpid()) + "_shared");
      fs::remove_all(shared_);
      shared_report_ = make_fashion_color(shared_.string(), kFmnist, 7, kPerClass, kSize);
    }
    return shared_;
  }
  static inline fs::path shared_;
  static inline MakeDatasetReport shared_report_;

  void SetUp() override {
    // scripts/install-deps.sh installs dataset-fashion-mnist: its absence is a broken set-up.
    ASSERT_TRUE(have_fmnist()) << "Fashion-MNIST not installed at " << kFmnist;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("tagnet_make_dataset_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  fs::path root_;
};

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Relative path -> contents, for every file under root.
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_bytes(e.path());
  return files;
}

size_t count_files(const fs::path& dir) {
  return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// Mean R and B over the pixels that clearly differ from the background, taken as the brightest
// of the four corners (the garment can reach one corner, never all four; the background is
// light).
struct GarmentColour {
  double r = 0, b = 0;
  size_t pixels = 0;
};

GarmentColour garment_colour(const tagnet::Image& im) {
  auto px = [&](int x, int y, int c) { return int(im.rgb[(size_t(y) * im.width + x) * 3 + c]); };
  int best[3] = {0, 0, 0}, best_min = -1;
  for (int cy : {0, im.height - 4})
    for (int cx : {0, im.width - 4}) {
      int mean[3] = {0, 0, 0};
      for (int y = cy; y < cy + 4; ++y)
        for (int x = cx; x < cx + 4; ++x)
          for (int c = 0; c < 3; ++c) mean[c] += px(x, y, c);
      for (int& m : mean) m /= 16;
      const int lo = std::min({mean[0], mean[1], mean[2]});
      if (lo > best_min) best_min = lo, std::copy(mean, mean + 3, best);
    }
  GarmentColour g;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      int diff = 0;
      for (int c = 0; c < 3; ++c) diff = std::max(diff, std::abs(px(x, y, c) - best[c]));
      if (diff <= 60) continue;
      g.r += px(x, y, 0), g.b += px(x, y, 2), ++g.pixels;
    }
  if (g.pixels) g.r /= double(g.pixels), g.b /= double(g.pixels);
  return g;
}

// The folders of a two-class set and their picture counts, in the order make_two_class writes them.
std::vector<std::pair<std::string, size_t>> two_class_folders(const std::string& a, const std::string& b) {
  return {{"train/" + a, 1000}, {"train/" + b, 1000}, {"validation/" + a, 500}, {"validation/" + b, 500}};
}

}  // namespace

TEST_F(MakeDataset, FoldersCountsAndPictureSizes) {
  const fs::path& out = shared_dataset();
  const MakeDatasetReport& report = shared_report_;

  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(out)) dirs.push_back(e.path().filename().string());
  std::sort(dirs.begin(), dirs.end());
  const std::vector<std::string> want = {"dataset", "examples"};
  EXPECT_EQ(dirs, want);

  ASSERT_EQ(report.per_folder.size(), 7u);
  for (size_t k = 0; k < kFolders.size(); ++k) {
    EXPECT_EQ(report.per_folder[k].first, kFolders[k]);
    EXPECT_EQ(report.per_folder[k].second, size_t(kPerClass));
    EXPECT_EQ(count_files(out / kFolders[k]), size_t(kPerClass));
    EXPECT_TRUE(fs::exists(out / kFolders[k] / "00000.jpg"));
    EXPECT_TRUE(fs::exists(out / kFolders[k] / "00007.jpg"));
  }
  EXPECT_EQ(report.per_folder[6], std::make_pair(std::string("examples"), size_t(21)));
  EXPECT_EQ(count_files(out / "examples"), 21u);
  EXPECT_EQ(report.images, size_t(6 * kPerClass + 21));

  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    const tagnet::Image im = tagnet::load_image(e.path().string());
    EXPECT_EQ(im.width, kSize) << e.path();
    EXPECT_EQ(im.height, kSize) << e.path();
  }
  // No temporary directory is left beside the output.
  size_t beside = 0;
  for (const auto& e : fs::directory_iterator(out.parent_path()))
    beside += e.path().filename().string().rfind(out.filename().string() + ".", 0) == 0;
  EXPECT_EQ(beside, 0u);
}

TEST_F(MakeDataset, ExamplesHoldTheUnseenBlackDress) {
  const fs::path& out = shared_dataset();
  for (const char* name : {"black_dress_01.jpg", "black_dress_02.jpg", "black_dress_03.jpg",
                           "red_shirt_03.jpg", "blue_jeans_01.jpg"}) {
    ASSERT_TRUE(fs::exists(out / "examples" / name)) << name;
    EXPECT_EQ(tagnet::load_image((out / "examples" / name).string()).width, kSize);
  }
  // Black garments are dark: no channel of their mean is bright.
  for (int j = 1; j <= 3; ++j) {
    const fs::path path = out / "examples" / ("black_dress_0" + std::to_string(j) + ".jpg");
    const auto g = garment_colour(tagnet::load_image(path.string()));
    ASSERT_GT(g.pixels, 0u);
    EXPECT_LT(g.r, 90);
    EXPECT_LT(g.b, 90);
  }
}

TEST_F(MakeDataset, SameSeedSameBytesOtherSeedOtherBytes) {
  make_fashion_color((root_ / "b").string(), kFmnist, 7, kPerClass, kSize);
  make_fashion_color((root_ / "c").string(), kFmnist, 8, kPerClass, kSize);
  const auto a = tree(shared_dataset()), b = tree(root_ / "b"), c = tree(root_ / "c");
  ASSERT_EQ(a.size(), size_t(6 * kPerClass + 21));
  EXPECT_TRUE(a == b);
  ASSERT_EQ(a.size(), c.size());
  size_t same = 0;
  for (const auto& [path, bytes] : a) same += c.at(path) == bytes;
  EXPECT_EQ(same, 0u);
}

TEST_F(MakeDataset, GarmentColourMatchesTheFolder) {
  const fs::path& out = shared_dataset();
  for (const std::string& folder : kFolders) {
    const bool red = folder.rfind("dataset/red_", 0) == 0, blue = folder.rfind("dataset/blue_", 0) == 0;
    if (!red && !blue) continue;
    for (const auto& e : fs::directory_iterator(out / folder)) {
      const auto g = garment_colour(tagnet::load_image(e.path().string()));
      // A garment covers a good part of the canvas (its longer side spans 55-90% of it).
      ASSERT_GT(g.pixels, size_t(kSize * kSize / 20)) << e.path();
      if (red) {
        EXPECT_GT(g.r, g.b + 40) << e.path();
      } else {
        EXPECT_GT(g.b, g.r + 15) << e.path();
      }
    }
  }
}

TEST_F(MakeDataset, RefusesANonEmptyDirectoryUnlessOverwriting) {
  const fs::path out = root_ / "clothes";
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "precious";
  EXPECT_THROW(make_fashion_color(out.string(), kFmnist, 1, kPerClass, kSize), std::runtime_error);
  EXPECT_THROW(make_two_class(out.string(), kFmnist, "pullover-coat", 1, 24), std::runtime_error);
  EXPECT_EQ(read_bytes(out / "keep.txt"), "precious");
  EXPECT_EQ(count_files(root_), 1u);

  make_fashion_color(out.string(), kFmnist, 1, kPerClass, kSize, /*overwrite=*/true);
  EXPECT_FALSE(fs::exists(out / "keep.txt"));
  EXPECT_EQ(count_files(out / "dataset/red_dress"), size_t(kPerClass));
  EXPECT_EQ(count_files(root_), 1u);

  // An empty directory is taken without overwrite.
  const fs::path empty = root_ / "empty";
  fs::create_directories(empty);
  make_fashion_color(empty.string(), kFmnist, 1, kPerClass, kSize);
  EXPECT_EQ(count_files(empty / "dataset/blue_shirt"), size_t(kPerClass));
}

TEST_F(MakeDataset, FailureLeavesNothingBehind) {
  const fs::path out = root_ / "clothes";
  EXPECT_THROW(make_fashion_color(out.string(), (root_ / "missing").string(), 1, kPerClass, kSize),
               std::runtime_error);
  // More pictures of a garment than Fashion-MNIST holds.
  EXPECT_THROW(make_fashion_color(out.string(), kFmnist, 1, 4000, kSize), std::invalid_argument);
  EXPECT_EQ(count_files(root_), 0u);
}

TEST_F(MakeDataset, TwoClassSplits) {
  const fs::path out = root_ / "two";
  const MakeDatasetReport report = make_two_class(out.string(), kFmnist, "pullover-coat", 9, 24);
  const auto want = two_class_folders("pullover", "coat");
  EXPECT_EQ(report.per_folder, want);
  EXPECT_EQ(report.images, 3000u);
  for (const auto& [folder, n] : want) EXPECT_EQ(count_files(out / folder), n) << folder;
  const tagnet::Image im = tagnet::load_image((out / "validation/coat/00499.jpg").string());
  EXPECT_EQ(im.width, 24);
  EXPECT_EQ(im.height, 24);
}

// Any two different Fashion-MNIST classes make a pair, in the order named; anything else is
// refused before a file is written.
TEST_F(MakeDataset, TwoClassPairsByName) {
  for (const char* bad : {"coat-coat", "coat", "coat-", "-coat", "coat-jacket", "pullover-coat-shirt", ""})
    EXPECT_THROW(make_two_class((root_ / "bad").string(), kFmnist, bad, 1, 24), std::invalid_argument) << bad;
  EXPECT_EQ(count_files(root_), 0u);

  const fs::path out = root_ / "shoes";
  const MakeDatasetReport report = make_two_class(out.string(), kFmnist, "sandal-sneaker", 9, 24);
  const auto want = two_class_folders("sandal", "sneaker");
  EXPECT_EQ(report.per_folder, want);
  EXPECT_EQ(count_files(out / "train/sneaker"), 1000u);
}

// The web model's pretraining set: 41 colour_garment folders (no black_dress), 7 garment
// folders of eight times the size in muted colours, the same examples as fashion-color, and never a
// sandal or a bag (classes left for measuring what transfers).
TEST_F(MakeDataset, WardrobeFoldersAndExamples) {
  const fs::path out = root_ / "wardrobe";
  const MakeDatasetReport report = make_wardrobe(out.string(), kFmnist, 7, 2, 24);
  ASSERT_EQ(report.per_folder.size(), 41u + 7u + 1u);
  std::set<std::string> folders;
  for (const auto& [folder, n] : report.per_folder) {
    folders.insert(folder);
    const bool garment_only = folder.find('_') == std::string::npos;
    if (folder != "examples") EXPECT_EQ(n, garment_only ? 16u : 2u) << folder;
  }
  EXPECT_FALSE(folders.count("dataset/black_dress"));
  for (const char* f : {"dataset/white_sneaker", "dataset/yellow_boot", "dataset/green_coat", "dataset/pullover",
                        "dataset/black_jeans", "examples"})
    EXPECT_TRUE(folders.count(f)) << f;
  for (const auto& f : folders) {
    EXPECT_EQ(f.find("sandal"), std::string::npos);
    EXPECT_EQ(f.find("bag"), std::string::npos);
  }
  const fs::path colour = root_ / "colour";
  make_fashion_color(colour.string(), kFmnist, 7, 2, 24);
  EXPECT_EQ(tree(out / "examples"), tree(colour / "examples"));
}

// --split test draws two classes from the test pictures, 500 + 500 per class, other pictures
// than the train split gives.
TEST_F(MakeDataset, TwoClassFromTheTestPictures) {
  const fs::path test = root_ / "test", train = root_ / "train";
  const MakeDatasetReport report = make_two_class(test.string(), kFmnist, "sandal-bag", 9, 24, false, true);
  EXPECT_EQ(report.images, 2000u);
  EXPECT_EQ(count_files(test / "train/bag"), 500u);
  EXPECT_EQ(count_files(test / "validation/sandal"), 500u);
  make_two_class(train.string(), kFmnist, "sandal-bag", 9, 24);
  EXPECT_NE(read_bytes(test / "train/bag/00000.jpg"), read_bytes(train / "train/bag/00000.jpg"));
}

// Fashion-MNIST as the tutorial network sees it: a garment in one quadrant of a black 56x56
// canvas, in a fixed quadrant for evaluation and a fresh one for every augmented draw.
TEST(FashionMnistQuadrants, FixedForEvaluationFreshWhenAugmented) {
  ASSERT_TRUE(have_fmnist()) << "Fashion-MNIST not installed at " << kFmnist;
  tagnet::native::FashionMnistQuadrants set(kFmnist, "test", 1, 6);
  const tagnet::native::IdxImages raw = tagnet::native::read_idx_images(kFmnist + "/t10k-images-idx3-ubyte.gz");
  const std::vector<uint8_t> labels = tagnet::native::read_idx_labels(kFmnist + "/t10k-labels-idx1-ubyte.gz");
  // The quadrant a picture was pasted in, after checking the rest of the canvas is black and the
  // pasted pixels are the original ones.
  auto quadrant_of = [&](const tagnet::Tensor& x, int b, size_t i) {
    const float* p = x.data() + size_t(b) * 56 * 56;
    int found = -1;
    for (int q = 0; q < 4; ++q) {
      const int r0 = q / 2 * 28, c0 = q % 2 * 28;
      bool same = true;
      for (int r = 0; r < 28 && same; ++r)
        for (int c = 0; c < 28 && same; ++c)
          same = p[(r0 + r) * 56 + c0 + c] == raw.pixels[i * 784 + r * 28 + c] * (1.f / 255.f);
      if (same) found = q;
    }
    double total = 0;
    for (int k = 0; k < 56 * 56; ++k) total += p[k];
    double inside = 0;
    for (int k = 0; k < 784; ++k) inside += raw.pixels[i * 784 + k] / 255.0;
    EXPECT_NEAR(total, inside, 1e-2) << "pixels outside the garment's quadrant";
    return found;
  };
  tagnet::Tensor x, y, x2, y2;
  tagnet::Rng rng(3);
  const std::vector<size_t> idx = {0, 1, 2, 3, 4, 5};
  set.fill(idx, x, y, rng, false);
  set.fill(idx, x2, y2, rng, false);
  EXPECT_TRUE(std::equal(x.data(), x.data() + x.size(), x2.data()));
  for (int b = 0; b < 6; ++b) {
    EXPECT_GE(quadrant_of(x, b, idx[b]), 0);
    for (int k = 0; k < 10; ++k) EXPECT_EQ(y.at(size_t(b) * 10 + k), k == labels[idx[b]] ? 1.f : 0.f);
  }
  std::set<int> seen;
  for (int draw = 0; draw < 40; ++draw) {
    set.fill({2}, x, y, rng, true);
    const int q = quadrant_of(x, 0, 2);
    ASSERT_GE(q, 0);
    seen.insert(q);
  }
  EXPECT_EQ(seen.size(), 4u);
}
