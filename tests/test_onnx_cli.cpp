// `tagnet import` and `tagnet export` end to end, with PyTorch as the outside oracle: PyTorch
// builds the tutorials' networks, exports them with torch.onnx.export and classifies PNG pictures
// (tests/onnx/torch_oracle.py); tagnet imports the files and classifies the same pictures. And
// training: PyTorch trains a network a few steps (tests/onnx/torch_training_oracle.py); tagnet
// imports its starting weights, trains them the same steps, and classifies as PyTorch does.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "cli_run.h"

namespace fs = std::filesystem;
using namespace tagnet::cli;

namespace {

std::string join_labels(const nlohmann::json& labels) {
  std::string s;
  for (auto& l : labels) s += (s.empty() ? "" : ",") + l.get<std::string>();
  return s;
}

// The largest difference between tagnet's classify --json and the oracle's outputs.
double largest_difference(const std::string& model, const nlohmann::json& oracle) {
  double worst = 0;
  for (size_t i = 0; i < oracle["pictures"].size(); ++i) {
    const auto j = run_cli_json("classify --json --model " + model + " --image " + oracle["pictures"][i].get<std::string>());
    for (size_t k = 0; k < oracle["labels"].size(); ++k) {
      const double want = oracle["outputs"][i][k];
      const double got = j["probabilities"][oracle["labels"][k].get<std::string>()];
      worst = std::max(worst, std::fabs(want - got));
    }
  }
  return worst;
}

class OnnxCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = cli_temp_dir("onnx_cli");
    const std::string cmd = "/usr/bin/python3 " + std::string(TAGNET_SOURCE_DIR) + "/tests/onnx/torch_oracle.py " + dir_ +
                            " > " + dir_ + "/oracle.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "the PyTorch oracle failed: see " << dir_ << "/oracle.log";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static nlohmann::json oracle(const std::string& net) {
    std::ifstream in(dir_ + "/" + net + ".json");
    return nlohmann::json::parse(in);
  }
  static std::string dir_;
};
std::string OnnxCli::dir_;

TEST_F(OnnxCli, ImportedPyTorchNetworksClassifyAsPyTorchDoes) {
  for (const char* net : {"smallervggnet", "fashionnet", "gapnet"}) {
    const auto o = oracle(net);
    const std::string model = dir_ + "/" + net + ".tagnet";
    const CliResult r = run_cli("import " + dir_ + "/" + net + ".onnx --out " + model + " --labels " + join_labels(o["labels"]));
    ASSERT_EQ(r.status, 0) << r.out;
    const double d = largest_difference(model, o);
    std::printf("%s: PyTorch vs tagnet import, largest difference %.3g\n", net, d);
    EXPECT_LT(d, 1e-4) << net;
  }
}

TEST_F(OnnxCli, ExportThenImportGivesTheSameOutputs) {
  const auto o = oracle("fashionnet");
  const std::string a = dir_ + "/rt_a.tagnet", onnx = dir_ + "/rt.onnx", b = dir_ + "/rt_b.tagnet";
  ASSERT_EQ(run_cli("import " + dir_ + "/fashionnet.onnx --out " + a + " --labels " + join_labels(o["labels"])).status, 0);
  CliResult r = run_cli("export --model " + a + " --onnx " + onnx + " --opset 15");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("opset 15"), std::string::npos) << r.out;
  r = run_cli("import " + onnx + " --out " + b);   // labels and preprocessing from the file's metadata
  ASSERT_EQ(r.status, 0) << r.out;
  for (const auto& pic : o["pictures"]) {
    const auto ja = run_cli_json("classify --json --model " + a + " --image " + pic.get<std::string>());
    const auto jb = run_cli_json("classify --json --model " + b + " --image " + pic.get<std::string>());
    EXPECT_EQ(ja["probabilities"], jb["probabilities"]);
  }
}

TEST_F(OnnxCli, BadFilesGiveOneLineErrorsAndWriteNothing) {
  const std::string out = dir_ + "/bad.tagnet";
  auto expect_error = [&](const std::string& file, const std::string& words) {
    const CliResult r = run_cli("import " + file + " --out " + out + " --labels a,b");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(count_lines(r.out), 1) << r.out;
    EXPECT_EQ(r.out.rfind("tagnet: error: " + file + ": ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(words), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out)) << file;
  };
  expect_error(dir_ + "/unsupported.onnx", "LeakyRelu node '");
  expect_error(dir_ + "/unsupported.onnx", "is not supported; tagnet imports Conv, Relu");

  // Cut in half, and random bytes.
  std::ifstream in(dir_ + "/fashionnet.onnx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir_ + "/half.onnx", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_error(dir_ + "/half.onnx", "truncated");
  std::mt19937 rng(5);
  std::string noise(5000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  std::ofstream(dir_ + "/noise.onnx", std::ios::binary) << noise;
  expect_error(dir_ + "/noise.onnx", "");
  expect_error(dir_ + "/missing.onnx", "cannot open");

  // Label names that do not fit the outputs; an opset tagnet does not write.
  CliResult r = run_cli("import " + dir_ + "/gapnet.onnx --out " + out + " --labels a,b");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("2 label names for a model with 4 outputs"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
  ASSERT_EQ(run_cli("import " + dir_ + "/gapnet.onnx --out " + out).status, 0);
  r = run_cli("export --model " + out + " --onnx " + dir_ + "/x.onnx --opset 9");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_FALSE(fs::exists(dir_ + "/x.onnx"));
  fs::remove(out);
}

// Training from the same weights on the same batch: the weights, BatchNorm's moving averages
// (momentum 0.99 from (0, 1), unbiased batch variance) and the population statistics that
// --bn-statistics population sets must be PyTorch's, seen through the inference outputs. Three
// steps: Adam moves weights whose gradient is near zero by a whole step either way, so
// rounding differences in those gradients grow with every step after (1e-4 at 10 steps).
TEST(OnnxCliTraining, TrainedWeightsAndBatchNormStatisticsMatchPyTorch) {
  const std::string d = cli_temp_dir("onnx_training");
  const int steps = 3;
  const std::string cmd = "/usr/bin/python3 " + std::string(TAGNET_SOURCE_DIR) + "/tests/onnx/torch_training_oracle.py " +
                          d + " " + std::to_string(steps) + " > " + d + "/oracle.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "the PyTorch oracle failed: see " << d << "/oracle.log";
  std::ifstream in(d + "/trained.json");
  const nlohmann::json o = nlohmann::json::parse(in);
  CliResult r = run_cli("import " + d + "/start.onnx --out " + d + "/start.tagnet --labels " + join_labels(o["labels"]));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string pictures;
  for (const auto& p : o["pictures"]) pictures += " " + p.get<std::string>();
  double apart = 0;   // how far the two kinds of statistics put the outputs
  for (const char* stats : {"moving", "population"}) {
    const std::string model = d + "/" + stats + ".tagnet";
    // One batch of all the pictures per epoch: the shuffle changes only the order of a sum.
    r = run_cli("train --dataset " + d + "/pictures --val-dataset " + d + "/pictures --base " + d +
                "/start.tagnet --trainable all --no-augment --batch-size " + std::to_string(o["pictures"].size()) +
                " --epochs " + std::to_string(steps) + " --lr 1e-3 --decay 0 --checkpoint last --bn-statistics " +
                stats + " --model " + model + " --plot '' --history ''");
    ASSERT_EQ(r.status, 0) << r.out;
    const nlohmann::json got = run_cli_json("classify --json --model " + model + " --image" + pictures);
    ASSERT_EQ(got.size(), o["pictures"].size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i]["image"], o["pictures"][i]);
      for (size_t k = 0; k < o["labels"].size(); ++k) {
        const double p = got[i]["probabilities"][o["labels"][k].get<std::string>()];
        worst = std::max(worst, std::fabs(p - o[stats][i][k].get<double>()));
        apart = std::max(apart, std::fabs(o["moving"][i][k].get<double>() - o["population"][i][k].get<double>()));
      }
    }
    std::printf("%d steps, %s statistics: tagnet vs PyTorch, largest difference %.3g\n", steps, stats, worst);
    EXPECT_LT(worst, std::string(stats) == "moving" ? 1e-5 : 1e-4) << stats;
  }
  EXPECT_GT(apart, 0.1) << "the two kinds of statistics should give other outputs";
  fs::remove_all(d);
}

}  // namespace
