// `tagnet import` and `tagnet export` end to end, with PyTorch as the outside oracle: PyTorch
// builds the tutorials' networks, exports them with torch.onnx.export and classifies PNG pictures
// (tests/onnx/torch_oracle.py); tagnet imports the files and classifies the same pictures.
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

}  // namespace
