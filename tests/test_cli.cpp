// The tagnet command line end to end: dataset, training, evaluation, classification, and the
// errors a person gets for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_run.h"
#include "tagnet/image.h"
#include "tagnet/model.h"

namespace fs = std::filesystem;

namespace {

using namespace tagnet::cli;

TEST(Cli, FolderPipelineEndToEnd) {
  const std::string d = cli_temp_dir("cli_pipeline");
  const std::string data = d + "/clothes/dataset", model = d + "/m.tagnet";
  CliResult r = run_cli("make-dataset fashion-color " + d + "/clothes --per-class 40 --seed 3");
  ASSERT_EQ(r.status, 0) << r.out;
  ASSERT_TRUE(fs::exists(data + "/red_dress"));
  ASSERT_TRUE(fs::exists(d + "/clothes/examples/black_dress_01.jpg"));

  r = run_cli("preview --dataset " + data + " --out " + d + "/preview.png --count 8 --augmented 4");
  ASSERT_EQ(r.status, 0) << r.out;
  const tagnet::Image montage = tagnet::load_image(d + "/preview.png");
  EXPECT_GT(montage.width, 256);

  // Half-size pictures, and enough steps (batch 8) for the moving statistics of BatchNorm
  // (momentum 0.99) to settle.
  r = run_cli("train --dataset " + data + " --size 48 --epochs 20 --batch-size 8 --model " + model + " --plot " + d +
          "/plot.png --history " + d + "/history.json --checkpoint best --seed 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Epoch 20/20"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("val_binary_accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exact"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(model));
  EXPECT_GT(tagnet::load_image(d + "/plot.png").width, 400);
  std::ifstream hf(d + "/history.json");
  const nlohmann::json hist = nlohmann::json::parse(hf);
  ASSERT_EQ(hist["history"].size(), 20u);
  EXPECT_LT(hist["history"][19]["loss"].get<double>(), hist["history"][0]["loss"].get<double>());
  EXPECT_TRUE(hist["metrics"].contains("micro_f1"));
  EXPECT_EQ(hist["title"], "smallervggnet on dataset, augmented");

  const nlohmann::json ev = run_cli_json("evaluate --model " + model + " --dataset " + data + " --json");
  for (const char* k : {"binary_accuracy", "exact_match", "micro_f1", "macro_f1", "mAP", "per_label"})
    EXPECT_TRUE(ev.contains(k)) << k << " missing in " << ev.dump();
  EXPECT_GT(ev["binary_accuracy"].get<double>(), 0.8) << ev.dump();
  EXPECT_EQ(ev["per_label"].size(), 6u);
  EXPECT_TRUE(ev["per_label"].contains("dress"));

  const nlohmann::json cl = run_cli_json("classify --model " + model + " --image " + d + "/clothes/examples --json");
  ASSERT_EQ(cl.size(), 21u);
  for (const auto& c : cl) {
    EXPECT_EQ(c["probabilities"].size(), 6u);
    EXPECT_TRUE(c.contains("unseen_combination"));
  }
  r = run_cli("classify --model " + model + " --image " + d + "/clothes/examples/red_dress_01.jpg --output " + d +
          "/annotated.png");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("dress: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("%"), std::string::npos);
  EXPECT_GE(tagnet::load_image(d + "/annotated.png").width, 400);
  fs::remove_all(d);
}

TEST(Cli, FashionMnistTrainsAndEvaluates) {
  const std::string d = cli_temp_dir("cli_fmnist");
  CliResult r = run_cli("train --dataset fashion-mnist --epochs 1 --limit 3200 --test-limit 500 --model " + d +
                 "/f.tagnet --plot '' --history " + d + "/h.json --title 'Fashion-MNIST, one epoch'");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream hf(d + "/h.json");
  EXPECT_EQ(nlohmann::json::parse(hf)["title"], "Fashion-MNIST, one epoch");
  EXPECT_NE(r.out.find("test accuracy: "), std::string::npos) << r.out;
  const nlohmann::json ev = run_cli_json("evaluate --model " + d + "/f.tagnet --dataset fashion-mnist --limit 500 --json");
  EXPECT_GT(ev["accuracy"].get<double>(), 0.5) << ev.dump();   // 10 classes: chance is 0.1
  r = run_cli("evaluate --model " + d + "/f.tagnet --dataset fashion-mnist --limit 500");
  EXPECT_NE(r.out.find("accuracy: 0."), std::string::npos) << r.out;

  // Going on from the saved model: its Adam state and history continue.
  r = run_cli("train --dataset fashion-mnist --base " + d + "/f.tagnet --epochs 1 --limit 800 --test-limit 200 --model " +
              d + "/f2.tagnet --plot '' --history ''");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Adam state (100 steps)"), std::string::npos) << r.out;   // 3200 pictures, batch 32
  const nlohmann::json history = tagnet::Model::load(d + "/f2.tagnet").metadata()["history"];
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0]["epoch"], 1);
  EXPECT_EQ(history[1]["epoch"], 2);
  fs::remove_all(d);
}

TEST(Cli, SummaryCountsParameters) {
  CliResult r = run_cli("summary --arch smallervggnet --outputs 6 --head sigmoid");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Total params: 8,679,302"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Trainable params: 8,676,422"), std::string::npos) << r.out;
  r = run_cli("summary --arch fashionnet");
  EXPECT_NE(r.out.find("Total params: 41,786"), std::string::npos) << r.out;
}

TEST(Cli, BadInputGivesOneLineErrors) {
  const std::string d = cli_temp_dir("cli_bad");
  { std::ofstream(d + "/broken.tagnet") << "TAGNET but not really"; }
  { std::ofstream(d + "/broken.jpg") << "\xff\xd8\xff garbage"; }
  CliResult r = run_cli("evaluate --model " + d + "/broken.tagnet --dataset fashion-mnist");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(d + "/broken.tagnet: "), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  r = run_cli("classify --model /nonexistent/m.tagnet --image x.jpg");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent/m.tagnet"), std::string::npos) << r.out;

  // A folder dataset: an empty class folder, a single class, no folder at all.
  fs::create_directories(d + "/data/red_dress");
  fs::create_directories(d + "/data/blue_shirt");
  r = run_cli("train --dataset " + d + "/data --epochs 1 --model " + d + "/m.tagnet");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no pictures"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(d + "/m.tagnet"));
  r = run_cli("train --dataset " + d + "/missing --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no such folder"), std::string::npos) << r.out;

  // A corrupt picture is skipped with a warning naming it; the good ones train.
  tagnet::Image img;
  img.width = img.height = 8;
  img.rgb.assign(8 * 8 * 3, 200);
  for (const char* f : {"red_dress", "blue_shirt"})
    for (int i = 0; i < 3; ++i) tagnet::save_png(d + "/data/" + f + "/" + std::to_string(i) + ".png", img);
  fs::copy_file(d + "/broken.jpg", d + "/data/red_dress/broken.jpg");
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model " + d +
          "/m.tagnet --plot '' --history ''");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("skipped " + d + "/data/red_dress/broken.jpg"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(1 skipped)"), std::string::npos) << r.out;
  // An output that could not be written at the end stops the run before it starts.
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model " + d +
              "/nofolder/m.tagnet --plot '' --history ''");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "tagnet: error: " + d + "/nofolder/m.tagnet: cannot write (no folder " + d + "/nofolder)\n");

  r = run_cli("classify --model " + d + "/m.tagnet --image " + d + "/broken.jpg");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(d + "/broken.jpg: "), std::string::npos) << r.out;
  fs::remove_all(d);
}

}  // namespace
