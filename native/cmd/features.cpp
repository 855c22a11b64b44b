// `tagnet features`: run a trained network's convolutional base over pictures once and cache
// its outputs with the labels ("bottleneck features", tagnet/train/features.h).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "fashion_mnist.h"
#include "folder_dataset.h"
#include "tagnet/train/features.h"
#include "tagnet/train/finetune.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

struct FeaturesArgs {
  std::string model, dataset, out, labels = "single";
  std::string layer;            // where the base ends (index or name); default: before Flatten
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string split = "train";  // fashion-mnist and fashion-mnist-2x2
  size_t limit = 0;             // fashion-mnist: first N pictures; 2x2: composites (default 10000)
  uint64_t seed = 1;            // fashion-mnist-2x2: the fixed set's seed
  int batch = 64;
  EngineArgs engine;
};

int features_command(const FeaturesArgs& a) {
  require_writable(a.out);
  const bool fmnist = a.dataset == "fashion-mnist" || a.dataset == "fashion-mnist-2x2";
  if (fmnist && a.split != "train" && a.split != "test")
    throw std::invalid_argument("--split must be train or test, not '" + a.split + "'");
  Model trained = Model::load(a.model);
  const size_t n = a.layer.empty() ? base_end(trained) : find_layer(trained, a.layer, "--layer") + 1;
  Model base = slice_model(trained, 0, n);
  const Shape input = trained.input_shape();

  std::unique_ptr<BatchSource> data;
  std::vector<std::string> labels;
  Head head;
  nlohmann::json info;
  std::string mode;
  if (fmnist) {
    if (input != Shape{56, 56, 1})
      throw std::invalid_argument(a.model + ": expects input " + input.str() + ", " + a.dataset +
                                  " gives (56, 56, 1)");
    labels = kFashionMnistClasses;
    if (a.dataset == "fashion-mnist") {
      data = std::make_unique<FashionMnistQuadrants>(a.data_dir, a.split, a.split == "train" ? 0 : 1, a.limit);
      head = Head::kSoftmax;
      mode = "single";
    } else {
      data = std::make_unique<GridComposites>(
          make_fashion_2x2(a.data_dir, a.split, a.limit ? a.limit : 10000, a.seed, false));
      head = Head::kSigmoid;
      mode = "multi";
    }
    info = {{"dataset", a.dataset}, {"split", a.split}, {"seed", a.seed}};
  } else {
    const LabelMode lm = label_mode_from_name(a.labels);
    labels = folder_label_names(a.dataset, lm);
    auto ds = load_labelled_folder(a.dataset, lm, input, labels, a.engine.threads);
    if (!ds.skipped.empty()) std::fprintf(stderr, "tagnet: %zu unreadable pictures skipped\n", ds.skipped.size());
    head = lm == LabelMode::kSingle ? Head::kSoftmax : Head::kSigmoid;
    mode = a.labels;
    info = {{"dataset", fs::absolute(a.dataset).string()}, {"skipped", ds.skipped.size()}};
    data = std::make_unique<ImageSet>(std::move(ds.pictures));
  }
  const auto engine = make_engine(a.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  std::fprintf(stderr, "tagnet: running the first %zu layers of %s (up to %s, output %s) over %zu pictures\n", n,
               a.model.c_str(), base.layer(n - 1).name.c_str(), base.output_shape().str().c_str(), data->size());
  const auto t0 = std::chrono::steady_clock::now();
  // A live count on a terminal only: logs get the summary line.
  const bool tty = ::isatty(::fileno(stderr)) != 0;
  FeatureSet f = extract_features(base, *data, a.batch, ctx, [&](size_t done, size_t total) {
    if (tty) std::fprintf(stderr, "\r\033[K%zu/%zu pictures", done, total);
  });
  if (tty) std::fprintf(stderr, "\n");
  f.labels = labels;
  f.head = head;
  f.base = base_identity(trained, n);
  f.base["source"] = fs::absolute(a.model).string();
  f.metadata = info;
  f.metadata["label_mode"] = mode;
  if (trained.card().preprocessing) f.metadata["preprocessing"] = trained.card().preprocessing->to_json();
  f.save(a.out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %zu examples, features %s, %zu labels (%s), base %s in %.1f s\n", a.out.c_str(), f.size(),
              f.feature_shape.str().c_str(), labels.size(), join(labels).c_str(),
              f.base["fingerprint"].get<std::string>().c_str(), s);
  return 0;
}

}  // namespace

Command add_features(CLI::App& app) {
  auto a = std::make_shared<FeaturesArgs>();
  auto* c = app.add_subcommand("features", "Run a trained network's convolutional base over pictures once "
                                         "and cache its outputs with the labels");
  c->add_option("--model", a->model, "The trained network (backbone)")->required();
  c->add_option("--dataset", a->dataset, "A folder of class subfolders, fashion-mnist or fashion-mnist-2x2")
      ->required();
  c->add_option("--out", a->out, "Feature file to write")->required();
  c->add_option("--labels", a->labels, "Folder names: single (one class each) or multi (red_dress -> red, dress)")
      ->check(CLI::IsMember({"single", "multi"}))
      ->capture_default_str();
  c->add_option("--layer", a->layer, "The base's last layer, by index or name (default: before Flatten)");
  c->add_option("--data-dir", a->data_dir, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  c->add_option("--split", a->split, "fashion-mnist: train or test")->capture_default_str();
  c->add_option("--limit", a->limit, "fashion-mnist: first N pictures; fashion-mnist-2x2: N pictures (10000)");
  c->add_option("--seed", a->seed, "fashion-mnist-2x2: the fixed set's seed")->capture_default_str();
  c->add_option("--batch-size", a->batch)->capture_default_str()->check(at_least(1));
  add_engine_options(c, a->engine);
  return {c, [a] { return features_command(*a); }};
}

}  // namespace tagnet::native
