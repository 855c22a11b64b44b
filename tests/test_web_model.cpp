// The web page's default model (web/model/default.tagnet) as a user meets it through
// `tagnet teach` and `tagnet classify`: taught two Fashion-MNIST classes it never saw in
// pretraining from 15 pictures each, it tells 200 unseen pictures of each apart; pullover from
// coat too; and it says when a picture is unlike its training pictures. Pictures come from
// Fashion-MNIST's test split, which the wardrobe set never draws from.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_run.h"
#include "tagnet/kernels/engine.h"
#include "tagnet/io/image.h"

namespace fs = std::filesystem;

namespace {

using namespace tagnet::cli;

const std::string kModel = std::string(TAGNET_SOURCE_DIR) + "/web/model/default.tagnet";

// `count` pictures of each class of `from` (a make-dataset split folder), skipping `skip`, into `to`.
void take(const std::string& from, const std::string& to, size_t skip, size_t count) {
  for (const auto& cls : fs::directory_iterator(from)) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(cls.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    const fs::path dir = fs::path(to) / cls.path().filename();
    fs::create_directories(dir);
    for (size_t i = skip; i < std::min(files.size(), skip + count); ++i) fs::copy_file(files[i], dir / files[i].filename());
  }
}

// Test accuracy of the model taught the classes of `pair` from 15 pictures each.
double taught_accuracy(const std::string& d, const std::string& pair) {
  const std::string all = d + "/" + pair;
  EXPECT_EQ(run_cli("make-dataset " + pair + " " + all + " --split test --seed 7").status, 0);
  take(all + "/train", all + "-teach", 0, 15);
  take(all + "/validation", all + "-test", 0, 200);
  const nlohmann::json r = run_cli_json("teach --model " + kModel + " --dataset " + all + "-teach --test " + all +
                                        "-test --out " + d + "/" + pair + ".tagnet --threads 2 --json");
  const double acc = r["test"]["right"].get<double>() / r["test"]["total"].get<double>();
  std::printf("%s: taught from 15 pictures each in %.2f s, held out %d/%d, test %d/%d (%.1f%%)\n", pair.c_str(),
              r["featureSeconds"].get<double>() + r["trainSeconds"].get<double>(), r["right"].get<int>(),
              r["heldOut"].get<int>(), r["test"]["right"].get<int>(), r["test"]["total"].get<int>(), 100 * acc);
  return acc;
}

struct Novelty {
  double unfamiliar = 0;   // share called unfamiliar
  double mean = 0;         // mean novelty
};

// What classify says of the pictures in `dir`.
Novelty novelty_of(const std::string& dir) {
  const nlohmann::json r = run_cli_json("classify --model " + kModel + " --image " + dir + " --json --threads 2");
  Novelty out;
  double n = 0;
  for (const auto& p : r.is_array() ? r : nlohmann::json::array({r})) {
    EXPECT_TRUE(p.contains("novelty")) << "the default model holds no novelty statistics";
    n += 1, out.unfamiliar += p.value("unfamiliar", false), out.mean += p.value("novelty", 0.0);
  }
  if (n) out.unfamiliar /= n, out.mean /= n;
  return out;
}

TEST(WebModel, TaughtNewClassesFromFifteenPicturesEach) {
  const std::string d = cli_temp_dir("web_model_teach");
  EXPECT_GE(taught_accuracy(d, "sandal-bag"), 0.90);      // held out of the pretraining
  EXPECT_GE(taught_accuracy(d, "pullover-coat"), 0.75);   // a hard pair
  fs::remove_all(d);
}

// Familiar: wardrobe pictures of another seed. Unlike: noise; the pictures of Emscripten's
// test suite (renders, screenshots, textures: none of clothing); sandals and bags, which the
// model never saw but which look much like its garments, so only some are caught.
TEST(WebModel, SaysWhenAPictureIsUnlikeItsTrainingPictures) {
  const std::string d = cli_temp_dir("web_model_novelty");
  ASSERT_EQ(run_cli("make-dataset wardrobe " + d + "/wardrobe --seed 5 --per-class 2").status, 0);
  fs::create_directories(d + "/familiar");
  for (const auto& f : fs::recursive_directory_iterator(d + "/wardrobe/dataset"))
    if (f.is_regular_file())
      fs::copy_file(f.path(), d + "/familiar/" + f.path().parent_path().filename().string() + "_" + f.path().filename().string());
  ASSERT_EQ(run_cli("make-dataset sandal-bag " + d + "/sb --split test --seed 8").status, 0);
  take(d + "/sb/validation", d + "/new", 0, 100);
  fs::create_directories(d + "/noise");
  tagnet::Rng rng(3);
  for (int i = 0; i < 50; ++i) {
    tagnet::Image im;
    im.width = im.height = 64;
    const int level = int(rng.below(200));
    for (int p = 0; p < 64 * 64 * 3; ++p) im.rgb.push_back(uint8_t(level + rng.below(56)));
    tagnet::save_png(d + "/noise/" + std::to_string(i) + ".png", im);
  }
  fs::create_directories(d + "/other");
  for (const auto& f : fs::directory_iterator("/usr/share/emscripten/tests")) {
    const std::string ext = f.path().extension().string();
    if (ext == ".jpg" || ext == ".png") fs::copy_file(f.path(), d + "/other/" + f.path().filename().string());
  }
  const Novelty familiar = novelty_of(d + "/familiar"), sandal = novelty_of(d + "/new/sandal"),
                bag = novelty_of(d + "/new/bag"), noise = novelty_of(d + "/noise"), other = novelty_of(d + "/other");
  std::printf("called unfamiliar (mean novelty): wardrobe pictures of another seed %.1f%% (%.2f), sandals %.1f%% "
              "(%.2f), bags %.1f%% (%.2f), Emscripten's test pictures %.1f%% (%.2f), noise %.1f%% (%.2f)\n",
              100 * familiar.unfamiliar, familiar.mean, 100 * sandal.unfamiliar, sandal.mean, 100 * bag.unfamiliar,
              bag.mean, 100 * other.unfamiliar, other.mean, 100 * noise.unfamiliar, noise.mean);
  EXPECT_LE(familiar.unfamiliar, 0.05);
  EXPECT_GE(noise.unfamiliar, 0.9);
  EXPECT_GE(other.unfamiliar, 0.25);
  EXPECT_GT(sandal.mean, familiar.mean);
  EXPECT_GT(bag.mean, familiar.mean);
  fs::remove_all(d);
}

}  // namespace
