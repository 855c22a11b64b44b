// The tagnet command line end to end: dataset, training, evaluation, classification, and the
// errors a person gets for bad input.
#include <gtest/gtest.h>

#include <algorithm>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli_run.h"
#include "tagnet/train/features.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"

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

  // Half-size pictures; the best epoch by validation loss is kept by default.
  r = run_cli("train --dataset " + data + " --size 48 --epochs 20 --batch-size 8 --model " + model + " --plot " + d +
          "/plot.png --history " + d + "/history.json --seed 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Epoch 20/20"), std::string::npos) << r.out;
  const std::regex kept_line("validation metrics \\(epoch ([0-9]+) of 20, the lowest val_loss ");
  std::smatch kept;
  ASSERT_TRUE(std::regex_search(r.out, kept, kept_line)) << r.out;
  EXPECT_EQ(tagnet::Model::load(model).card().provenance.training["kept_epoch"], std::stoi(kept[1].str()));
  EXPECT_NE(r.out.find("val_binary_accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exact"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(model));
  EXPECT_GT(tagnet::load_image(d + "/plot.png").width, 400);
  std::ifstream hf(d + "/history.json");
  const nlohmann::json hist = nlohmann::json::parse(hf);
  ASSERT_EQ(hist["history"].size(), 20u);
  EXPECT_LT(hist["history"][19]["loss"].get<double>(), hist["history"][0]["loss"].get<double>());
  EXPECT_TRUE(hist["metrics"].contains("micro_f1"));
  // The model in inference mode follows its weights from epoch to epoch: BatchNorm's statistics
  // are recomputed at each epoch's end. With Keras' moving averages instead (--bn-statistics
  // moving) this run's validation accuracy swings: 0.70 at epoch 10, down 0.07 from epoch 17 to
  // 18, and still 0.81 at the end.
  for (size_t e = 9; e < 20; ++e) {
    const double acc = hist["history"][e]["val_accuracy"], before = hist["history"][e - 1]["val_accuracy"];
    EXPECT_GE(acc, 0.85) << "epoch " << e + 1;
    EXPECT_GE(acc, before - 0.05) << "epoch " << e + 1 << " fell from " << before;
  }
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
  const nlohmann::json history = tagnet::Model::load(d + "/f2.tagnet").card().history;
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0]["epoch"], 1);
  EXPECT_EQ(history[1]["epoch"], 2);
  fs::remove_all(d);
}

// The kernels' instruction set is chosen at start-up; --version names it, and a name this
// CPU does not run is one line and exit status 1, before any work, --version included.
TEST(Cli, VersionNamesTheInstructionSetAndABadChoiceIsOneLine) {
  CliResult r = run_cli("--version");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("kernels: "), std::string::npos) << r.out;
  r = run_shell("TAGNET_HWY_TARGET=SSE4 " + std::string(TAGNET_BIN) + " --version 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("kernels: SSE4"), std::string::npos) << r.out;
  for (const char* args : {"--version", "bench --seconds 0.01 --no-layers"}) {
    r = run_shell("TAGNET_HWY_TARGET=NOPE " + std::string(TAGNET_BIN) + " " + args + " 2>&1");
    EXPECT_EQ(r.status, 1) << args << ": " << r.out;
    EXPECT_EQ(r.out.find("tagnet: error: TAGNET_HWY_TARGET=NOPE is not a target"), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
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
  // "--plot=" is an empty value, as "--plot ''" is: no plot, and no file named after an option.
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model " + d +
              "/m.tagnet --plot= --history=");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_FALSE(fs::exists("--history=") || fs::exists("plot.png") || fs::exists("history.json"));
  // An option left without a value does not write a file named after the next option.
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model " + d +
              "/m.tagnet --plot --history ''");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_FALSE(fs::exists("--history"));
  r = run_cli("train --threads= --dataset " + d + "/data");
  EXPECT_EQ(r.out, "tagnet: error: --threads: must be from 0 to 1024, not empty (tagnet train --help)\n");
  // A folder where no file can be made, even by root.
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model /proc/m.tagnet --plot '' "
              "--history ''");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.rfind("tagnet: error: /proc/m.tagnet: cannot write (", 0), 0u) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;

  r = run_cli("classify --model " + d + "/m.tagnet --image " + d + "/broken.jpg");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(d + "/broken.jpg: "), std::string::npos) << r.out;

  // Counts no run can use are refused, not replaced by defaults.
  for (const char* bad : {"--epochs 0", "--epochs -1", "--size 100000", "--batch-size 0", "--threads -3",
                          "--threads 100000", "--lr -1", "--lr nan", "--lr inf"}) {
    r = run_cli("train --dataset " + d + "/data " + bad + " --model " + d + "/n.tagnet");
    EXPECT_EQ(r.status, 1) << bad;
    EXPECT_EQ(count_lines(r.out), 1) << bad << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("tagnet: error: --", 0), 0u) << r.out;
    EXPECT_LT(r.out.size(), 120u) << r.out;
    EXPECT_FALSE(fs::exists(d + "/n.tagnet"));
  }
  for (const char* bad : {"--top -1", "--threshold nan", "--threshold 1.5"}) {
    r = run_cli("classify --model " + d + "/m.tagnet --image " + d + "/broken.jpg " + bad);
    EXPECT_EQ(r.status, 1) << bad;
    EXPECT_EQ(count_lines(r.out), 1) << bad << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("tagnet: error: --", 0), 0u) << r.out;
  }
  // Links that loop or lead nowhere are not pictures: skipped, and training goes on.
  fs::create_directory_symlink("..", d + "/data/red_dress/loop");
  fs::create_symlink("self", d + "/data/blue_shirt/self");
  fs::create_symlink("missing.png", d + "/data/blue_shirt/dangling.png");
  r = run_cli("train --dataset " + d + "/data --arch fashionnet --size 16 --epochs 1 --model " + d +
              "/m.tagnet --plot '' --history ''");
  EXPECT_EQ(r.status, 0) << r.out;
  r = run_cli("classify --model " + d + "/m.tagnet --image " + d + "/data/blue_shirt");
  EXPECT_EQ(r.status, 0) << r.out;
  fs::remove_all(d);
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A run whose loss becomes NaN stops with one line saying where, and the model file keeps the
// last good checkpoint, bit for bit.
TEST(Cli, DivergingTrainingStopsAndKeepsTheLastGoodModel) {
  const std::string d = cli_temp_dir("cli_nan");
  const std::string model = d + "/f.tagnet";
  CliResult r = run_cli("train --dataset fashion-mnist --epochs 1 --limit 320 --test-limit 64 --model " + model +
                        " --plot '' --history ''");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string good = file_bytes(model);
  r = run_cli("train --dataset fashion-mnist --base " + model + " --lr 1e38 --epochs 3 --limit 320 --test-limit 64 "
              "--model " + model + " --plot '' --history ''");
  EXPECT_EQ(r.status, 1) << r.out;
  const size_t error = r.out.find("tagnet: error: ");
  ASSERT_NE(error, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("tagnet: error: ", error + 1), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n', error), r.out.size() - 1) << r.out;   // one line, the last
  EXPECT_EQ(r.out.compare(error, 32, "tagnet: error: training stopped "), 0) << r.out;
  EXPECT_NE(r.out.find("is not finite"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was saved"), std::string::npos) << r.out;
  EXPECT_EQ(file_bytes(model), good);
  fs::remove_all(d);
}

// Starts `args` (args[0] the program) with its output discarded.
pid_t start_cli(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// kill -9 after `ms`; false when the process had ended by itself.
bool kill_after(pid_t pid, std::chrono::microseconds delay) {
  std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

// kill -9 at random moments, during training and during checkpoint saves: the model file is
// always a complete model (the one before or the one after), and training goes on from it.
TEST(Cli, KilledTrainingAlwaysLeavesALoadableModel) {
  const std::string d = cli_temp_dir("cli_kill");
  const std::string model = d + "/k.tagnet";
  // Plain pictures of two folders, `count` each, grey levels `step` apart.
  const auto write_pictures = [&](const std::string& dir, int side, int count, int step) {
    tagnet::Image img;
    img.width = img.height = side;
    for (const char* f : {"red_dress", "blue_shirt"})
      for (int i = 0; i < count; ++i) {
        img.rgb.assign(size_t(side) * side * 3, static_cast<uint8_t>(step * i + (f[0] == 'r' ? 100 : 0)));
        fs::create_directories(dir + "/" + f);
        tagnet::save_png(dir + "/" + f + "/" + std::to_string(i) + ".png", img);
      }
  };
  write_pictures(d + "/data", 8, 4, 40);
  std::mt19937 rng(12345);
  int loadable = 0, before_first_save = 0, during_save = 0;
  for (int run = 0; run < 20; ++run) {
    // One small batch per epoch, a checkpoint after each (--checkpoint last): most of the time goes
    // into saving them.
    const std::vector<std::string> args = {TAGNET_BIN, "train", "--dataset", d + "/data", "--arch", "fashionnet",
                                           "--size", "16", "--epochs", "100000", "--threads", "1", "--checkpoint", "last",
                                           "--model", model, "--plot", "", "--history", ""};
    const pid_t pid = start_cli(args);
    ASSERT_GE(pid, 0);
    ASSERT_TRUE(kill_after(pid, std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 600)(rng)))) << "run " << run << " ended by itself";
    if (!fs::exists(model)) {
      ++before_first_save;
      continue;
    }
    EXPECT_NO_THROW(tagnet::Model::load(model)) << "run " << run;
    ++loadable;
    // A temporary file left behind: this kill came in the middle of a save.
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().filename().string().rfind("k.tagnet.tmp", 0) == 0) {
        ++during_save;
        fs::remove(e.path());
      }
  }
  std::printf("kill -9 x20: %d left a model (all loadable), %d during a save, %d before the first checkpoint\n",
              loadable, during_save, before_first_save);
  EXPECT_GE(loadable, 15) << before_first_save << " runs were killed before the first checkpoint";
  EXPECT_GE(during_save, 2) << "kills during a save";
  // Going on from a checkpoint of a killed run.
  CliResult r;
  ASSERT_TRUE(fs::exists(model));
  r = run_cli("train --dataset " + d + "/data --base " + model + " --epochs 1 --model " + d +
              "/more.tagnet --plot '' --history ''");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("continuing"), std::string::npos) << r.out;

  // The same for feature files: there is a complete one, or none yet. One whole run first,
  // timed, so that the kills land within the run's length on any machine.
  write_pictures(d + "/many", 96, 100, 1);
  const std::string features = d + "/f.features";
  const std::vector<std::string> args = {TAGNET_BIN, "features", "--model", model, "--dataset", d + "/many",
                                         "--labels", "multi", "--threads", "1", "--out", features};
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t whole = start_cli(args);
  ASSERT_GE(whole, 0);
  int status = 0;
  ::waitpid(whole, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const auto length = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  int killed = 0;
  for (int run = 0; run < 20; ++run) {
    const pid_t pid = start_cli(args);
    ASSERT_GE(pid, 0);
    killed += kill_after(pid, length * std::uniform_int_distribution<int>(5, 95)(rng) / 100);
    ASSERT_TRUE(fs::exists(features)) << "run " << run;
    EXPECT_NO_THROW(tagnet::FeatureSet::load(features)) << "run " << run;
  }
  std::printf("kill -9 x20 of features (a whole run takes %.0f ms): %d killed before the end, the feature file "
              "loadable after every one\n", length.count() / 1000.0, killed);
  EXPECT_GE(killed, 5);
  fs::remove_all(d);
}

}  // namespace
