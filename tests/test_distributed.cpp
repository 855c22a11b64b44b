// Data-parallel training under mpirun (docs/distributed.md): several processes against one, run
// to run, files, a process that dies or hangs, and going on with another process count. Built
// when the build has MPI (TAGNET_USE_MPI).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_run.h"
#include "tagnet/nn/model.h"

namespace fs = std::filesystem;

namespace tagnet {
namespace {

using cli::cli_temp_dir;

// Root may run Open MPI only when told twice; --oversubscribe lets more processes than cores run.
const std::string kMpirun = std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") + TAGNET_MPIEXEC +
                            " --oversubscribe";

// Fashion-MNIST pictures in batches of 16, without augmentation or dropout: the same global
// batches for any number of processes.
const std::string kNoRandomness =
    " train --dataset fashion-mnist --no-augment --dropout 0 --test-limit 64 --batch-size 16 --epochs 1"
    " --threads 1 --backend hwy --plot '' --history ''";
const std::string kTwentySteps = kNoRandomness + " --limit 320";

cli::CliResult run_together(int processes, const std::string& args, const std::string& env = "") {
  return cli::run_shell(env + " " + kMpirun + " -np " + std::to_string(processes) + " " + TAGNET_BIN + " " + args + " 2>&1");
}

std::vector<float> weights(const std::string& path) {
  const Model m = Model::load(path);
  return std::vector<float>(m.param_arena(), m.param_arena() + m.arena_size());
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(Distributed, ProcessesMatchOneProcessAndRepeatBitForBit) {
  const std::string d = cli_temp_dir("dist_parity");
  cli::CliResult r = cli::run_cli(kTwentySteps + " --model " + d + "/one.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_together(2, kTwentySteps + " --model " + d + "/two.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  // Rank 0 alone reports.
  EXPECT_EQ(count(r.out, "Epoch 1/1"), 1) << r.out;
  EXPECT_EQ(count(r.out, "test accuracy"), 1) << r.out;
  EXPECT_NE(r.out.find("tagnet: 2 processes:"), std::string::npos) << r.out;
  const std::vector<float> one = weights(d + "/one.tagnet"), two = weights(d + "/two.tagnet");
  EXPECT_LT(max_difference(one, two), 1e-5f);

  // The same seed and process count give the same weights, bit for bit, also with all
  // gradients in one allreduce after backward.
  r = run_together(2, kTwentySteps + " --model " + d + "/again.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(weights(d + "/again.tagnet"), two);
  r = run_together(2, kTwentySteps + " --model " + d + "/after.tagnet", "TAGNET_BUCKET_MB=0");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("after backward"), std::string::npos) << r.out;
  EXPECT_EQ(weights(d + "/after.tagnet"), two);
}

// `args` under mpirun with `processes` processes and alone: the models `model` (a name in `dir`)
// must agree within 1e-5.
void expect_parity(const std::string& dir, const std::string& args, const std::string& model, int processes = 2) {
  cli::CliResult r = cli::run_cli(args + " --model " + dir + "/one-" + model);
  ASSERT_EQ(r.status, 0) << args << "\n" << r.out;
  r = run_together(processes, args + " --model " + dir + "/" + model);
  ASSERT_EQ(r.status, 0) << args << "\n" << r.out;
  EXPECT_LT(max_difference(weights(dir + "/one-" + model), weights(dir + "/" + model)), 1e-5f) << args;
}

TEST(Distributed, EveryKindOfTrainingRunsTogether) {
  const std::string d = cli_temp_dir("dist_kinds");
  cli::CliResult r = cli::run_cli("make-dataset fashion-color " + d + "/fc --per-class 6 --seed 2");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string data = " --dataset " + d + "/fc/dataset --val-split 0.25";
  const std::string fixed = " --no-augment --threads 1 --backend hwy --seed 5";
  // A folder of pictures, a network without BatchNorm: the same weights as alone.
  expect_parity(d, "train" + data + fixed + " --plot '' --history '' --arch fashionnet --size 56 --dropout 0 --epochs 2 --batch-size 8",
                "folder.tagnet");
  // Bottleneck features, the top model on them, fine-tuning base + top.
  r = cli::run_cli("features --model " + d + "/folder.tagnet --dataset " + d + "/fc/dataset --out " + d +
                   "/f.features");
  ASSERT_EQ(r.status, 0) << r.out;
  expect_parity(d, "train --features " + d + "/f.features --top-dropout 0 --epochs 3 --batch-size 8 --threads 1" +
                       " --plot '' --history ''", "top.tagnet");
  expect_parity(d, "finetune --base " + d + "/folder.tagnet --top " + d + "/top.tagnet" + data + fixed +
                       " --epochs 1 --batch-size 8", "finetuned.tagnet");
  // Going on from a model (--base) with a new head on 2x2 composites; and SmallerVGGNet, with
  // each process's own BatchNorm statistics or the whole batch's: the run checks that every
  // process ends with the same model.
  r = run_together(2, "train --dataset fashion-mnist-2x2 --base " + d + "/folder.tagnet --cut 5 --trainable all "
                      "--epochs 1 --epoch-size 64 --test-size 32 --batch-size 16 --threads 1 --plot '' --history '' "
                      "--model " + d + "/grid.tagnet");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(d + "/grid.tagnet"));
  for (const char* bn : {"", " --sync-batchnorm"}) {
    r = run_together(2, "train" + data + " --arch smallervggnet --size 32 --epochs 2 --batch-size 8 --threads 1"
                        " --plot '' --history '' --model " + d + "/vgg.tagnet" + bn);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("validation metrics"), std::string::npos) << r.out;
  }
}

TEST(Distributed, UnreadablePicturesAreSkippedByEveryProcess) {
  const std::string d = cli_temp_dir("dist_unreadable");
  cli::CliResult r = cli::run_cli("make-dataset fashion-color " + d + "/fc --per-class 6 --seed 2");
  ASSERT_EQ(r.status, 0) << r.out;
  // The last file of the sorted list: the second process's share to check.
  std::vector<std::string> folders;
  for (const auto& e : fs::directory_iterator(d + "/fc/dataset")) folders.push_back(e.path().string());
  std::sort(folders.begin(), folders.end());
  std::ofstream(folders.back() + "/zzz.png") << "not a picture";
  r = run_together(2, "train --dataset " + d + "/fc/dataset --arch fashionnet --size 28 --epochs 1 --batch-size 8 "
                      "--threads 1 --plot '' --history '' --model " + d + "/m.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("zzz.png: unreadable (found by another process)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(1 skipped)"), std::string::npos) << r.out;
}

TEST(Distributed, UnevenBatchesSplitOverThreeProcesses) {
  // 322 pictures in batches of 16: the last batch has 2, so one of three processes has none.
  // On the reference kernels, whose sums do not depend on how many pictures a call gets: with
  // the fast kernels a batch of 2 and two batches of 1 round differently, and on these
  // pictures (flat zero backgrounds) a last-bit difference can move a max-pooling choice,
  // which Adam then carries to 1e-4 in a few weights (seen on AVX2 and AVX-512).
  std::string args = kNoRandomness + " --limit 322";
  args.replace(args.find("--backend hwy"), 13, "--backend ref");
  const std::string d = cli_temp_dir("dist_uneven");
  cli::CliResult r = cli::run_cli(args + " --model " + d + "/one.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_together(3, args + " --model " + d + "/three.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("21/21"), std::string::npos) << r.out;
  EXPECT_LT(max_difference(weights(d + "/one.tagnet"), weights(d + "/three.tagnet")), 1e-5f);
}

TEST(Distributed, RankZeroAloneWritesFiles) {
  // Each process in its own working folder (mpirun's MPMD form), with relative output paths.
  const std::string d = cli_temp_dir("dist_files");
  fs::create_directories(d + "/rank0");
  fs::create_directories(d + "/rank1");
  const std::string args = " train --dataset fashion-mnist --no-augment --limit 64 --test-limit 32 --batch-size 16 "
                           "--epochs 1 --threads 1 --model m.tagnet --plot plot.png --history history.json";
  const cli::CliResult r = cli::run_shell(kMpirun + " -np 1 -wdir " + d + "/rank0 " + TAGNET_BIN + args + " : -np 1 -wdir " +
                                     d + "/rank1 " + TAGNET_BIN + args + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* f : {"m.tagnet", "plot.png", "history.json"}) EXPECT_TRUE(fs::exists(d + "/rank0/" + f)) << f;
  EXPECT_TRUE(fs::is_empty(d + "/rank1"));
}

TEST(Distributed, GoesOnWithAnotherProcessCount) {
  const std::string d = cli_temp_dir("dist_resume");
  const std::string args = " train --dataset fashion-mnist --limit 160 --test-limit 32 --batch-size 16 --epochs 1 "
                           "--threads 1 --plot '' --history ''";
  cli::CliResult r = run_together(2, args + " --model " + d + "/m.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_together(3, args + " --base " + d + "/m.tagnet --model " + d + "/m.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Adam state (10 steps)"), std::string::npos) << r.out;
  r = cli::run_cli(args + " --base " + d + "/m.tagnet --model " + d + "/m.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Adam state (20 steps)"), std::string::npos) << r.out;
  EXPECT_EQ(Model::load(d + "/m.tagnet").card().history.size(), 3u);
}

// mpirun in the background, its output in `log`; processes of its rank `rank` found by their
// environment among mpirun's descendants.
struct Background {
  pid_t pid = -1;
  std::string log;

  Background(const std::string& cmd, const std::string& log_path) : log(log_path) {
    pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::execl("/bin/sh", "sh", "-c", (cmd + " >" + log_path + " 2>&1").c_str(), (char*)nullptr);
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid > 0) {
      for (pid_t p : descendants()) ::kill(p, SIGKILL);
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  static pid_t parent(pid_t p) {
    std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');   // the name in parentheses may hold spaces
    if (close == std::string::npos) return 0;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    return ppid;
  }
  std::vector<pid_t> descendants() const {
    std::vector<pid_t> found;
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      for (pid_t p = std::stoi(name); p > 1; p = parent(p))
        if (parent(p) == pid) {
          found.push_back(std::stoi(name));
          break;
        }
    }
    return found;
  }
  std::string output() const {
    std::ifstream f(log);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  // Waits up to `seconds` for the output to contain `what`.
  bool wait_for_output(const std::string& what, double seconds) const {
    for (auto t0 = std::chrono::steady_clock::now();
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds;
         std::this_thread::sleep_for(std::chrono::milliseconds(100)))
      if (output().find(what) != std::string::npos) return true;
    return false;
  }
  pid_t find_rank(int rank) const {
    const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
    for (pid_t p : descendants()) {
      std::ifstream env("/proc/" + std::to_string(p) + "/environ");
      std::string var;
      while (std::getline(env, var, '\0'))
        if (var == want) return p;
    }
    return -1;
  }
  // Waits up to `seconds` for mpirun to end; its exit status, or -1 when it is still running.
  int wait_exit(double seconds) {
    for (auto t0 = std::chrono::steady_clock::now();
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds;
         std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return -1;
  }
};

// A run long enough to be interrupted: 2,000 steps.
const std::string kLongRun = " train --dataset fashion-mnist --limit 32000 --test-limit 32 --batch-size 16 --epochs 1 "
                             "--threads 1 --plot '' --history ''";

TEST(Distributed, KilledProcessEndsTheRunWithAnError) {
  const std::string d = cli_temp_dir("dist_kill");
  Background run(kMpirun + " -np 2 " + TAGNET_BIN + kLongRun + " --model " + d + "/m.tagnet", d + "/log");
  ASSERT_TRUE(run.wait_for_output("tagnet: backend", 60)) << run.output();
  const pid_t victim = run.find_rank(1);
  ASSERT_GT(victim, 0) << run.output();
  ::kill(victim, SIGKILL);
  const int status = run.wait_exit(30);
  EXPECT_GT(status, 0) << run.output();
  EXPECT_NE(run.output().find("exited on signal 9"), std::string::npos) << run.output();
}

TEST(Distributed, HungProcessEndsTheRunWithAnError) {
  // A process that stops answering (a frozen host) is not noticed by mpirun; the others give up
  // after TAGNET_TIMEOUT.
  const std::string d = cli_temp_dir("dist_hang");
  Background run("TAGNET_TIMEOUT=3 " + kMpirun + " -np 2 " + TAGNET_BIN + kLongRun + " --model " + d + "/m.tagnet",
                 d + "/log");
  ASSERT_TRUE(run.wait_for_output("tagnet: backend", 60)) << run.output();
  const pid_t victim = run.find_rank(1);
  ASSERT_GT(victim, 0) << run.output();
  ::kill(victim, SIGSTOP);
  const int status = run.wait_exit(30);
  ::kill(victim, SIGKILL);
  EXPECT_GT(status, 0) << run.output();
  EXPECT_NE(run.output().find("tagnet: process 0 of 2: error: no answer from the other processes for 3 s"), std::string::npos)
      << run.output();
}

TEST(Distributed, OtherCommandsRefuseSeveralProcesses) {
  const cli::CliResult r = run_together(2, "summary --arch fashionnet");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("only train and finetune run on several processes"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tagnet
