#include "cli.h"
#include "distributed.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

namespace fs = std::filesystem;

namespace tagnet::native {

int batchnorm_examples_from_name(const std::string& name) {
  if (name == "population") return TrainOptions{}.batchnorm_examples;
  if (name == "moving") return 0;
  throw std::invalid_argument("--bn-statistics must be population or moving, not '" + name + "'");
}

void add_bn_statistics_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--bn-statistics", value,
                  "BatchNorm's inference statistics: population (recomputed from training pictures at each "
                  "epoch's end) or moving (Keras' moving averages)")
      ->capture_default_str();
}

namespace {
CLI::Validator number_check(std::function<bool(double)> ok, const std::string& rule) {
  return CLI::Validator(
      [ok, rule](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0' || !ok(v)) return "must be " + rule + ", not " + (s.empty() ? std::string("empty") : s);
        return {};
      },
      rule);
}

std::string number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}
}  // namespace

CLI::Validator at_least(double lo) {
  return number_check([lo](double v) { return v >= lo; }, "at least " + number_text(lo));
}

CLI::Validator between(double lo, double hi) {
  return number_check([lo, hi](double v) { return v >= lo && v <= hi; },
                      "from " + number_text(lo) + " to " + number_text(hi));
}

CLI::Validator positive() {
  return number_check([](double v) { return v > 0 && std::isfinite(v); }, "a positive number");
}

void add_engine_options(CLI::App* cmd, EngineArgs& e) {
  cmd->add_option("--threads", e.threads, "Worker threads (0: all cores)")
      ->capture_default_str()
      ->check(between(0, Engine::kMaxThreads));
  cmd->add_option("--backend", e.backend, "Kernels: auto, xnnpack, hwy, ref")->capture_default_str();
}

std::unique_ptr<Engine> make_engine(const EngineArgs& a, bool announce) {
  auto e = std::make_unique<Engine>(Engine::Options{a.threads > 0 ? a.threads : default_threads(), a.backend});
  if (announce) std::fprintf(stderr, "tagnet: %s\n", e->describe().c_str());
  return e;
}

Augment AugmentArgs::to_augment() const {
  if (off) return {};
  Augment a = values;
  try {
    a.fill = fill_mode_from_name(fill);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--fill: ") + e.what());
  }
  return a;
}

void add_augment_options(CLI::App* cmd, AugmentArgs& a) {
  cmd->add_option("--rotation", a.values.rotation_deg, "Rotation range, degrees")->capture_default_str();
  cmd->add_option("--width-shift", a.values.width_shift, "Horizontal shift range, fraction of width")
      ->capture_default_str();
  cmd->add_option("--height-shift", a.values.height_shift, "Vertical shift range, fraction of height")
      ->capture_default_str();
  cmd->add_option("--shear", a.values.shear_deg, "Shear range, degrees")->capture_default_str();
  cmd->add_option("--zoom", a.values.zoom, "Zoom range: scale in [1-z, 1+z]")->capture_default_str();
  cmd->add_option("--hflip", a.values.hflip, "Random horizontal flips (true/false)")->capture_default_str();
  cmd->add_option("--fill", a.fill, "Border fill: nearest, constant, reflect, wrap")->capture_default_str();
  cmd->add_flag("--no-augment", a.off, "Train on the pictures as they are");
}

void require_writable(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("an output file name is empty");
  // `--plot= --history=`: an option given an empty value takes the next argument as its value.
  if (path[0] == '-')
    throw std::invalid_argument("'" + path + "' is not an output file name (an option before it left empty?)");
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": cannot write (it is a folder)");
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw std::runtime_error(path + ": cannot write (no folder " + dir.string() + ")");
  // Saving writes a temporary file beside `path`, then renames it: make one now. access() would
  // let root through to folders where nothing can be made (/proc, a read-only mount).
  const std::string probe = path + ".tmp-probe-" + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!(out << text) || !(out.flush())) {
      std::remove(tmp.c_str());
      throw std::runtime_error(path + ": cannot write");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot write");
  }
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

FolderOptions folder_options(LabelMode mode, const Shape& input, int threads) {
  FolderOptions fo;
  fo.mode = mode;
  fo.input = input;
  fo.threads = threads;
  fo.warn = [](const std::string& w) { std::fprintf(stderr, "tagnet: warning: skipped %s\n", w.c_str()); };
  return fo;
}

FolderDataset load_labelled_folder(const std::string& dir, LabelMode mode, const Shape& input,
                                   const std::vector<std::string>& labels, int threads) {
  FolderOptions fo = folder_options(mode, input, threads);
  fo.fixed_labels = &labels;
  fo.fixed_head = mode == LabelMode::kSingle ? Head::kSoftmax : Head::kSigmoid;
  return load_folder_dataset(dir, fo);
}

void split_indices(size_t n, float val_split, uint64_t seed, std::vector<size_t>& train_idx,
                   std::vector<size_t>& val_idx) {
  if (!(val_split >= 0.f && val_split < 1.f)) throw std::invalid_argument("--val-split must be in [0, 1)");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  rng.shuffle(order);
  const size_t nval = static_cast<size_t>(std::lround(val_split * n));
  if (n - nval < 1) throw std::runtime_error("too few examples to train on");
  val_idx.assign(order.begin(), order.begin() + nval);
  train_idx.assign(order.begin() + nval, order.end());
}

}  // namespace tagnet::native
