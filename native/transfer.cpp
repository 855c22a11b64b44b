#include "transfer.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <set>
#include <unistd.h>

#include "draw.h"
#include "fashion_mnist.h"
#include "folder_dataset.h"
#include "progress.h"
#include "tagnet/architectures.h"
#include "tagnet/dataset.h"
#include "tagnet/features.h"
#include "tagnet/metrics.h"
#include "tagnet/model.h"
#include "tagnet/train.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
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

// Scores a model on a set: the multi-label or the multi-class report, as `train` prints it.
struct Scores {
  nlohmann::json json;
  std::string table;
  double headline = 0;   // accuracy (one class) or exact match (label sets)
};

Scores score(Model& model, BatchSource& data, Head head, const std::vector<std::string>& labels,
             const Context& ctx) {
  Tensor probs, targets;
  const Metrics m = evaluate(model, data, loss_for(head), 64, ctx, &probs, &targets);
  Scores s;
  if (head == Head::kSigmoid) {
    const auto ml = multilabel_metrics(probs, targets, labels);
    s.json = ml.to_json();
    s.table = ml.to_table();
    s.headline = ml.exact_match;
  } else {
    const auto mc = multiclass_metrics(probs, targets, labels);
    s.json = mc.to_json();
    s.table = mc.to_table();
    s.headline = mc.accuracy;
  }
  s.json["loss"] = m.loss;
  s.json["examples"] = m.examples;
  return s;
}

// fit() with Keras-style progress, Ctrl-C handling, per-epoch timing and (optionally) a model
// saved after every epoch so an interrupted run leaves one, its history following `earlier`.
struct FitRun {
  std::vector<Progress> history;
  std::vector<double> seconds;
  nlohmann::json history_json() const { return native::history_json(history, seconds); }
};

FitRun run_fit(Model& model, BatchSource& train, BatchSource* val, Optimizer& opt, Head head,
               const FitOptions& base_options, const Context& ctx, const std::string& save_to,
               Optimizer* save_opt = nullptr, const nlohmann::json& earlier = nlohmann::json::array()) {
  FitOptions fo = base_options;
  fo.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  ProgressPrinter printer(stdout, head == Head::kSoftmax ? "accuracy" : "binary_accuracy");
  FitRun run;
  auto t0 = std::chrono::steady_clock::now();
  fit(model, train, val, opt, loss_for(head), fo, ctx, [&](const Progress& p) {
    printer(p);
    if (!p.epoch_end) return;
    run.seconds.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    run.history.push_back(p);
    if (!save_to.empty()) {
      model.metadata()["history"] = continued_history(earlier, run.history_json());
      model.save(save_to, save_opt);
    }
  });
  if (g_stop) std::fprintf(stderr, "tagnet: stopped after %zu complete epochs\n", run.history.size());
  return run;
}

// A folder dataset at the model's input size with the given labels. Single-label sets get
// one-hot softmax targets even for two classes, as the top model of the tutorial has.
FolderDataset load_labelled_folder(const std::string& dir, LabelMode mode, const Shape& input,
                                   const std::vector<std::string>& labels, int threads) {
  FolderOptions fo;
  fo.mode = mode;
  fo.input = input;
  fo.fixed_labels = &labels;
  fo.fixed_head = mode == LabelMode::kSingle ? Head::kSoftmax : Head::kSigmoid;
  fo.threads = threads;
  fo.warn = [](const std::string& w) { std::fprintf(stderr, "tagnet: warning: skipped %s\n", w.c_str()); };
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

size_t last_dense(const Model& m) {
  for (size_t i = m.num_layers(); i-- > 0;)
    if (m.layer(i).type() == "Dense") return i;
  throw std::invalid_argument("the model has no Dense layer");
}

// Marks layers trainable by name: "head" or "none" (from `head_from` on), "last-block" (the
// base's last convolutional block and everything after it), "all", "as-saved" (the flags as
// they are), or a layer index or name (that layer and everything after it). Returns the first
// trainable layer; `option` names the choice in errors.
size_t apply_trainable(Model& m, const std::string& what, size_t head_from, const char* option) {
  size_t from;
  if (what == "as-saved") {
    for (from = 0; from + 1 < m.num_layers() && !m.layer(from).trainable; ++from) {
    }
    return from;
  }
  if (what == "head" || what == "none") from = head_from;
  else if (what == "all") from = 0;
  else if (what == "last-block") from = last_block_start(m, base_end(m));
  else from = parse_layer(m, what, option, "none, head, last-block, all, as-saved or a layer index or name");
  m.freeze_below(from);
  return from;
}


}  // namespace

size_t parse_layer(const Model& m, const std::string& spec, const std::string& option,
                   const std::string& expected) {
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const size_t i = std::stoul(spec);
    if (i < m.num_layers()) return i;
  } else {
    for (size_t i = 0; i < m.num_layers(); ++i)
      if (m.layer(i).name == spec) return i;
  }
  std::string names;
  for (size_t i = 0; i < m.num_layers(); ++i) names += (i ? ", " : "") + std::to_string(i) + " " + m.layer(i).name;
  throw std::invalid_argument(option + " " + spec + ": expected " + expected + " (layers: " + names + ")");
}

GridComposites make_fashion_2x2(const std::string& dir, const std::string& split, size_t count, uint64_t seed,
                                bool fresh, size_t limit) {
  const std::string prefix = split == "train" ? "train" : split == "test" ? "t10k" : "";
  if (prefix.empty()) throw std::invalid_argument("Fashion-MNIST split must be train or test, not '" + split + "'");
  IdxImages images = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  std::vector<uint8_t> labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (images.rows != 28 || images.cols != 28) throw std::runtime_error(dir + ": Fashion-MNIST pictures must be 28x28");
  if (labels.size() != size_t(images.count))
    throw std::runtime_error(dir + ": " + std::to_string(images.count) + " pictures but " +
                             std::to_string(labels.size()) + " labels");
  if (limit && limit < labels.size()) {
    labels.resize(limit);
    images.pixels.resize(limit * 28 * 28);
  }
  GridComposites::Options o;
  o.count = count;
  o.seed = seed;
  o.fresh = fresh;
  return GridComposites(std::move(images.pixels), std::move(labels), 28, 28, 10, o);
}

void add_transfer_train_options(CLI::App* train, TransferTrainArgs& a) {
  a.app = train;
  train->add_option("--features", a.features, "Train a top model on a feature file from `tagnet features`");
  train->add_option("--val-features", a.val_features, "Validation features (default: --val-split of --features)");
  train->add_option("--momentum", a.momentum, "--features: SGD momentum")->capture_default_str();
  train->add_option("--hidden", a.hidden, "--features: units of the top model's hidden Dense layer")
      ->capture_default_str();
  train->add_option("--top-dropout", a.top_dropout, "--features: dropout before the top model's output")
      ->capture_default_str();
  train->add_option("--base", a.base,
                    "Start from this model: training goes on, or a model made for other labels gets a new head");
  train->add_option("--trainable", a.trainable,
                    "With --base: head, last-block, all, as-saved, or the first trainable layer (default: head for a new head, else as-saved)");
  train->add_option("--cut", a.cut, "With --base: the last layer kept under a new head (default: before the last Dense)");
  train->add_option("--epoch-size", a.epoch_size, "fashion-mnist-2x2: fresh pictures per epoch")
      ->capture_default_str();
  train->add_option("--test-size", a.test_size, "fashion-mnist-2x2: pictures in the fixed test set")
      ->capture_default_str();
}

std::string trainable_summary(const Model& m, size_t from) {
  char b[256];
  std::snprintf(b, sizeof b, "training layers %zu-%zu (%s ... %s): %zu of %zu parameters", from, m.num_layers() - 1,
                m.layer(from).name.c_str(), m.layer(m.num_layers() - 1).name.c_str(), m.trainable_param_count(),
                m.param_count());
  return b;
}

BaseStart start_from_base(const TrainArgs& ta, const TransferTrainArgs& xa, const std::vector<std::string>& labels,
                          Head head) {
  std::unique_ptr<Optimizer> saved;
  Model base = Model::load(xa.base, &saved);
  BaseStart s{std::move(base), std::move(saved), head, false, "", 0};
  Model& model = s.model;
  const bool same_labels = model.metadata().value("labels", std::vector<std::string>{}) == labels;
  // Two classes: a softmax head made for them (replace-head, the bottleneck top model) stays.
  if (head == Head::kLogit && model_head(model) == Head::kSoftmax && same_labels) s.head = Head::kSoftmax;
  const int outputs = s.head == Head::kLogit ? 1 : static_cast<int>(labels.size());
  s.kept_head = model_head(model) == s.head && model.output_shape() == Shape{outputs} && same_labels &&
                xa.cut.empty();
  // A new head trains alone unless told otherwise; a kept one goes on as it was saved.
  s.trainable = !xa.trainable.empty() ? xa.trainable : s.kept_head ? "as-saved" : "head";
  size_t head_from;
  if (s.kept_head) {
    head_from = last_dense(model);
  } else {
    const size_t cut = xa.cut.empty() ? last_dense(model) : parse_layer(model, xa.cut, "--cut") + 1;
    head_from = cut_and_add_head(model, cut, outputs, s.head, ta.seed, false);
  }
  std::vector<bool> was_trainable;
  for (size_t i = 0; i < model.num_layers(); ++i) was_trainable.push_back(model.layer(i).trainable);
  s.first_trainable = apply_trainable(model, s.trainable, head_from, "--trainable");
  // Going on with the same head and the same trainable layers continues the saved Adam state,
  // so time-boxed (or interrupted) runs chain into one longer run.
  bool same_layers = true;
  for (size_t i = 0; i < model.num_layers(); ++i) same_layers &= was_trainable[i] == model.layer(i).trainable;
  if (!(s.kept_head && same_layers && s.opt && s.opt->type() == "Adam")) s.opt.reset();
  return s;
}

std::unique_ptr<Optimizer> base_optimizer(const TrainArgs& ta, const TransferTrainArgs& xa,
                                          std::unique_ptr<Optimizer> saved, float decay) {
  if (!saved) return std::make_unique<Adam>(ta.lr, decay);
  const auto given = [&](const char* opt) { return xa.app && xa.app->count(opt) > 0; };
  if (given("--lr")) saved->lr = ta.lr;
  if (given("--decay")) saved->decay = decay;
  std::fprintf(stderr, "tagnet: continuing %s's Adam state (%lld steps)\n", xa.base.c_str(),
               static_cast<long long>(saved->iterations));
  return saved;
}

int cmd_train_features(const TrainArgs& ta, const TransferTrainArgs& xa) {
  for (const std::string* out : {&ta.model_out, &ta.plot, &ta.history})
    if (out == &ta.model_out || !out->empty()) require_writable(*out);
  FeatureSet all = FeatureSet::load(xa.features);
  if (all.labels.empty()) throw std::runtime_error(xa.features + ": the feature file has no label names");
  FeatureSet train, val;
  if (!xa.val_features.empty()) {
    train = std::move(all);
    val = FeatureSet::load(xa.val_features);
    if (val.feature_shape != train.feature_shape || val.labels != train.labels)
      throw std::invalid_argument(xa.val_features + ": features " + val.feature_shape.str() + " for labels {" +
                                  join(val.labels) + "} do not match " + xa.features + " (" +
                                  train.feature_shape.str() + ", {" + join(train.labels) + "})");
    const std::string fa = train.base.value("fingerprint", ""), fb = val.base.value("fingerprint", "");
    if (fa != fb)
      throw std::invalid_argument(xa.val_features + " comes from another base than " + xa.features +
                                  " (fingerprints " + fb + " and " + fa + ")");
  } else {
    std::vector<size_t> ti, vi;
    split_indices(all.size(), ta.val_split, ta.seed, ti, vi);
    train = all.subset(ti);
    val = all.subset(vi);
  }
  const Head head = train.head;
  const auto engine = make_engine(ta.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  std::fprintf(stderr, "tagnet: %zu training and %zu validation examples of features %s; labels: %s\n",
               train.size(), val.size(), train.feature_shape.str().c_str(), join(train.labels).c_str());

  Model top = make_top_model(train.feature_shape, train.outputs(), head, xa.hidden, xa.top_dropout, ta.seed);
  // --lr's default (1e-3) suits SGD here too: bottleneck features are large and share a strong
  // common component, and with momentum 0.9 a step of 1e-2 swings along it instead of learning
  // (pullover-vs-coat features of the FashionNet backbone stay at chance).
  const float lr = ta.lr;
  const float decay = ta.decay >= 0 ? ta.decay : 0.f;
  const int epochs = ta.epochs > 0 ? ta.epochs : 50;
  SGD sgd(lr, xa.momentum, false, decay);
  auto& md = top.metadata();
  md["labels"] = train.labels;
  md["label_mode"] = train.metadata.value("label_mode", head == Head::kSigmoid ? "multi" : "single");
  md["threshold"] = 0.5;
  md["input"] = "features";
  md["base"] = train.base;
  if (train.metadata.contains("preprocessing")) md["preprocessing"] = train.metadata["preprocessing"];
  md["data"] = {{"features", fs::absolute(xa.features).string()},
                {"val_features", xa.val_features.empty() ? "" : fs::absolute(xa.val_features).string()}};
  md["training"] = {{"epochs", epochs}, {"batch_size", ta.batch}, {"optimizer", "SGD"}, {"lr", lr},
                    {"momentum", xa.momentum}, {"decay", decay}, {"seed", ta.seed},
                    {"hidden", xa.hidden}, {"dropout", xa.top_dropout}};
  std::printf("%s", top.summary().c_str());

  FeatureSource tsrc(train), vsrc(val);
  FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = ta.batch;
  fo.seed = ta.seed;
  const auto t0 = std::chrono::steady_clock::now();
  const FitRun run = run_fit(top, tsrc, val.size() ? &vsrc : nullptr, sgd, head, fo, ctx, "");
  const double train_s = seconds_since(t0);
  md["history"] = run.history_json();

  Scores s;
  if (val.size()) {
    s = score(top, vsrc, head, train.labels, ctx);
    md["metrics"] = s.json;
    std::printf("\nvalidation metrics (%zu examples):\n%s", val.size(), s.table.c_str());
  }
  top.save(ta.model_out);
  const std::string title = run_title(ta, "Top model on cached features");
  if (!ta.history.empty())
    write_text(ta.history, nlohmann::json({{"title", title}, {"history", md["history"]},
                                           {"metrics", md.value("metrics", nlohmann::json())},
                                           {"training", md["training"]}, {"labels", train.labels}})
                               .dump(2) + "\n");
  if (!ta.plot.empty() && !run.history.empty()) save_history_plot(ta.plot, md["history"], title);
  if (val.size())
    std::printf("top model: validation %s %.4f after %zu epochs in %.1f s\n",
                head == Head::kSigmoid ? "exact match" : "accuracy", s.headline, run.history.size(), train_s);
  std::printf("saved %s\n", ta.model_out.c_str());
  return 0;
}

int cmd_train_transfer(const TrainArgs& ta, const TransferTrainArgs& xa) {
  const bool grid = ta.dataset == "fashion-mnist-2x2";
  if (grid && xa.epoch_size == 0) throw std::invalid_argument("--epoch-size must be at least 1");
  if (grid && xa.test_size == 0 && ta.test_limit == 0) throw std::invalid_argument("--test-size must be at least 1");
  for (const std::string* out : {&ta.model_out, &ta.plot, &ta.history})
    if (out == &ta.model_out || !out->empty()) require_writable(*out);
  const std::vector<std::string>& labels = kFashionMnistClasses;
  const Head head = grid ? Head::kSigmoid : Head::kSoftmax;

  // The model first: a bad base or layer name fails before the pictures are read.
  Model model({56, 56, 1});
  std::unique_ptr<Optimizer> saved_opt;
  bool kept_head = false;
  std::string trainable = xa.trainable;
  size_t from = 0;
  if (xa.base.empty()) {
    if (!trainable.empty() && trainable != "all")
      throw std::invalid_argument("--trainable " + trainable + " needs --base (a new network trains all its layers)");
    if (!xa.cut.empty()) throw std::invalid_argument("--cut needs --base (the model to cut)");
    trainable = "all";
    const std::string arch = ta.arch.empty() ? "fashionnet" : ta.arch;
    model = make_architecture(arch, {10, head, {56, 56, 1}, ta.dropout});
    model.build(ta.seed);
  } else {
    BaseStart start = start_from_base(ta, xa, labels, head);
    if (start.model.input_shape() != Shape{56, 56, 1})
      throw std::invalid_argument(xa.base + ": expects input " + start.model.input_shape().str() + ", " +
                                  ta.dataset + " gives (56, 56, 1)");
    model = std::move(start.model);
    saved_opt = std::move(start.opt);
    kept_head = start.kept_head;
    trainable = start.trainable;
    from = start.first_trainable;
  }

  std::unique_ptr<BatchSource> train, test;
  if (grid) {
    train = std::make_unique<GridComposites>(make_fashion_2x2(ta.data_dir, "train", xa.epoch_size, ta.seed, true,
                                                              ta.limit));
    test = std::make_unique<GridComposites>(
        make_fashion_2x2(ta.data_dir, "test", ta.test_limit ? ta.test_limit : xa.test_size, 1, false));
  } else {
    train = std::make_unique<FashionMnistQuadrants>(ta.data_dir, "train", 0, ta.limit);
    test = std::make_unique<FashionMnistQuadrants>(ta.data_dir, "test", 1, ta.test_limit);
  }
  const auto engine = make_engine(ta.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  if (grid)
    std::fprintf(stderr,
                 "tagnet: %zu fresh 2x2 training pictures per epoch, %zu fixed test pictures (56x56, 0-4 garments)\n",
                 train->size(), test->size());
  else
    std::fprintf(stderr, "tagnet: %zu training and %zu test pictures (56x56, random quadrant)\n", train->size(),
                 test->size());
  std::printf("%s", model.summary().c_str());
  std::fprintf(stderr, "tagnet: %s\n", trainable_summary(model, from).c_str());

  const std::unique_ptr<Optimizer> opt = base_optimizer(ta, xa, std::move(saved_opt), ta.decay >= 0 ? ta.decay : 0.f);

  auto& md = model.metadata();
  // Going on with the base's own head continues its history.
  const nlohmann::json earlier = kept_head ? md.value("history", nlohmann::json::array()) : nlohmann::json::array();
  md["labels"] = labels;
  md["label_mode"] = grid ? "multi" : "single";
  md["threshold"] = 0.5;
  md["head"] = head_name(head);
  md["preprocessing"] = {{"color", "grayscale"}, {"scale", 1.0 / 255}, {"resize", "area"}};
  md.erase("combinations");
  md["data"] = {{"dataset", ta.dataset}, {"train_size", train->size()}, {"test_size", test->size()}};
  const int epochs = ta.epochs > 0 ? ta.epochs : 5;
  md["training"] = {{"epochs", epochs}, {"batch_size", ta.batch}, {"optimizer", "Adam"}, {"lr", opt->lr},
                    {"decay", opt->decay}, {"seed", ta.seed}, {"trainable", trainable},
                    {"first_trainable_layer", from}, {"base", xa.base.empty() ? "" : fs::absolute(xa.base).string()}};
  FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = ta.batch;
  fo.augment = !ta.augment.off;
  // A continued run draws other batches and dropout masks than the run it continues.
  fo.seed = ta.seed + static_cast<uint64_t>(opt->iterations);
  const auto t0 = std::chrono::steady_clock::now();
  const FitRun run = run_fit(model, *train, test.get(), *opt, head, fo, ctx, ta.model_out, opt.get(), earlier);
  const double train_s = seconds_since(t0);
  const nlohmann::json history = continued_history(earlier, run.history_json());
  md["history"] = history;
  const Scores s = score(model, *test, head, labels, ctx);
  md["metrics"] = s.json;
  model.save(ta.model_out, opt.get());
  const std::string title = run_title(ta, ta.dataset + " (" + trainable + " trainable)");
  if (!ta.history.empty())
    write_text(ta.history, nlohmann::json({{"title", title}, {"history", history}, {"metrics", s.json},
                                           {"training", md["training"]}, {"labels", labels}})
                               .dump(2) + "\n");
  if (!ta.plot.empty() && !history.empty()) save_history_plot(ta.plot, history, title);
  if (grid) {
    std::printf("\ntest metrics (%zu fixed 2x2 pictures):\n%s", test->size(), s.table.c_str());
    std::printf("exact match %.4f, micro F1 %.4f, macro F1 %.4f, mAP %.4f (%s trainable, %zu epochs, %.0f s)\n",
                s.json["exact_match"].get<double>(), s.json["micro_f1"].get<double>(),
                s.json["macro_f1"].get<double>(), s.json["mAP"].get<double>(), trainable.c_str(),
                run.history.size(), train_s);
  } else {
    std::printf("\ntest metrics (%zu pictures):\n%s", test->size(), s.table.c_str());
    std::printf("test accuracy: %.4f (%s trainable, %zu epochs, %.0f s)\n", s.headline, trainable.c_str(),
                run.history.size(), train_s);
  }
  std::printf("saved %s\n", ta.model_out.c_str());
  return 0;
}

int cmd_features(const FeaturesArgs& a) {
  require_writable(a.out);
  const bool fmnist = a.dataset == "fashion-mnist" || a.dataset == "fashion-mnist-2x2";
  if (fmnist && a.split != "train" && a.split != "test")
    throw std::invalid_argument("--split must be train or test, not '" + a.split + "'");
  Model trained = Model::load(a.model);
  const size_t n = a.layer.empty() ? base_end(trained) : parse_layer(trained, a.layer, "--layer") + 1;
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
  if (trained.metadata().contains("preprocessing")) f.metadata["preprocessing"] = trained.metadata()["preprocessing"];
  f.save(a.out);
  const double s = seconds_since(t0);
  std::printf("wrote %s: %zu examples, features %s, %zu labels (%s), base %s in %.1f s\n", a.out.c_str(), f.size(),
              f.feature_shape.str().c_str(), labels.size(), join(labels).c_str(),
              f.base["fingerprint"].get<std::string>().c_str(), s);
  return 0;
}

int cmd_finetune(const FinetuneArgs& a) {
  require_writable(a.model_out);
  if (!a.history.empty()) require_writable(a.history);
  if (a.epochs < 0) throw std::invalid_argument("--epochs must not be negative");
  Model backbone = Model::load(a.base);
  Model top = Model::load(a.top);
  const auto& tmd = top.metadata();
  const std::vector<std::string> labels = tmd.value("labels", std::vector<std::string>{});
  if (labels.empty()) throw std::runtime_error(a.top + ": the top model has no label names");
  const nlohmann::json want = tmd.value("base", nlohmann::json::object());
  const size_t n = want.contains("layers") ? want["layers"].get<size_t>() : base_end(backbone);
  if (n == 0 || n > backbone.num_layers())
    throw std::invalid_argument(a.top + " was trained on the first " + std::to_string(n) + " layers of a base; " +
                                a.base + " has " + std::to_string(backbone.num_layers()));
  const nlohmann::json have = base_identity(backbone, n);
  if (want.contains("fingerprint") && want["fingerprint"] != have["fingerprint"])
    throw std::invalid_argument(a.top + " was trained on features of another base (fingerprint " +
                                want["fingerprint"].get<std::string>() + "; the first " + std::to_string(n) +
                                " layers of " + a.base + " give " + have["fingerprint"].get<std::string>() + ")");
  Model base = slice_model(backbone, 0, n);
  if (top.input_shape() != base.output_shape())
    throw std::invalid_argument(a.top + ": takes input " + top.input_shape().str() + ", but the first " +
                                std::to_string(n) + " layers of " + a.base + " give " + base.output_shape().str() +
                                " (a top model comes from `tagnet train --features`)");
  Model model = join_models(base, top);
  const Head head = model_head(model);
  const LabelMode lm = label_mode_from_name(tmd.value("label_mode", head == Head::kSigmoid ? "multi" : "single"));
  auto& md = model.metadata();
  md.erase("input");
  md["preprocessing"] = backbone.metadata().value(
      "preprocessing", nlohmann::json{{"color", backbone.input_shape()[2] == 1 ? "grayscale" : "rgb"},
                                      {"scale", 1.0 / 255}, {"resize", "area"}});

  // Checked before the pictures are loaded, so a typo fails fast.
  const size_t from = apply_trainable(model, a.unfreeze, n, "--unfreeze");
  const Shape input = model.input_shape();
  FolderDataset ds = load_labelled_folder(a.dataset, lm, input, labels, a.engine.threads);
  ImageSet all = std::move(ds.pictures);
  all.set_augment(a.augment.to_augment());
  std::unique_ptr<ImageSet> train, val;
  if (!a.val_dataset.empty()) {
    train = std::make_unique<ImageSet>(std::move(all));
    val = std::make_unique<ImageSet>(std::move(load_labelled_folder(a.val_dataset, lm, input, labels,
                                                                    a.engine.threads).pictures));
  } else {
    std::vector<size_t> ti, vi;
    split_indices(all.size(), a.val_split, a.seed, ti, vi);
    train = std::make_unique<ImageSet>(all.subset(ti));
    val = std::make_unique<ImageSet>(all.subset(vi));
  }
  if (val->size() == 0) throw std::invalid_argument("fine-tuning needs validation pictures to report the gain");
  const auto engine = make_engine(a.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  std::fprintf(stderr, "tagnet: %zu training and %zu validation pictures at %dx%d; labels: %s\n", train->size(),
               val->size(), input[1], input[0], join(labels).c_str());

  const Scores before = score(model, *val, head, labels, ctx);
  std::printf("%s", model.summary().c_str());
  std::fprintf(stderr, "tagnet: %s\n", trainable_summary(model, from).c_str());
  std::printf("base + top model before fine-tuning: validation %s %.4f\n",
              head == Head::kSigmoid ? "exact match" : "accuracy", before.headline);

  SGD sgd(a.lr, a.momentum);
  FitOptions fo;
  fo.epochs = a.epochs;
  fo.batch_size = a.batch;
  fo.seed = a.seed;
  fo.augment = !a.augment.off;
  md["training"] = {{"epochs", a.epochs}, {"batch_size", a.batch}, {"optimizer", "SGD"}, {"lr", a.lr},
                    {"momentum", a.momentum}, {"seed", a.seed}, {"augment", fo.augment},
                    {"unfreeze", a.unfreeze}, {"first_trainable_layer", from},
                    {"base", fs::absolute(a.base).string()}, {"top", fs::absolute(a.top).string()}};
  md["data"] = {{"dataset", fs::absolute(a.dataset).string()}, {"label_mode", label_mode_name(lm)}};
  const auto t0 = std::chrono::steady_clock::now();
  const FitRun run = run_fit(model, *train, val.get(), sgd, head, fo, ctx, a.model_out);
  const double train_s = seconds_since(t0);
  const Scores after = score(model, *val, head, labels, ctx);
  md["history"] = run.history_json();
  md["metrics"] = after.json;
  md["metrics_before_finetuning"] = before.json;
  model.save(a.model_out);
  if (!a.history.empty())
    write_text(a.history, nlohmann::json({{"history", md["history"]}, {"metrics", after.json},
                                          {"metrics_before_finetuning", before.json}, {"training", md["training"]}})
                              .dump(2) + "\n");
  std::printf("\nvalidation metrics after fine-tuning (%zu pictures):\n%s", val->size(), after.table.c_str());
  const char* what = head == Head::kSigmoid ? "exact match" : "accuracy";
  std::printf("%s: top model alone %.4f, fine-tuned %.4f (%+.2f points, %zu epochs in %.0f s)\n", what,
              before.headline, after.headline, 100 * (after.headline - before.headline), run.history.size(), train_s);
  std::printf("saved %s\n", a.model_out.c_str());
  return 0;
}

int cmd_replace_head(const ReplaceHeadArgs& a) {
  require_writable(a.out);
  Model m = Model::load(a.model);
  std::vector<std::string> labels = split_list(a.labels);
  const Head head = head_from_name(a.head);
  int outputs = labels.empty() ? a.outputs : static_cast<int>(labels.size());
  if (head == Head::kLogit) {
    if (!labels.empty() && labels.size() != 2) throw std::invalid_argument("a logit head needs two labels");
    outputs = 1;
  }
  if (outputs < 1) throw std::invalid_argument("give the new labels (--labels a,b,c) or --outputs N");
  const size_t cut = a.cut.empty() ? last_dense(m) : parse_layer(m, a.cut, "--cut") + 1;
  const size_t dense = cut_and_add_head(m, cut, outputs, head, a.seed, !a.no_freeze);
  auto& md = m.metadata();
  if (!labels.empty()) md["labels"] = labels;
  else md.erase("labels");
  md["label_mode"] = head == Head::kSigmoid ? "multi" : "single";
  md.erase("combinations");
  md.erase("metrics");
  md.erase("history");
  md["replaced_head"] = {{"from", fs::absolute(a.model).string()}, {"cut", cut}, {"frozen_below", a.no_freeze ? 0 : dense}};
  m.save(a.out);
  std::printf("%s", m.summary().c_str());
  std::printf("kept layers 0-%zu of %s, added a %s head with %d outputs%s; saved %s\n", cut - 1, a.model.c_str(),
              a.head.c_str(), outputs, a.no_freeze ? "" : ", layers below it frozen", a.out.c_str());
  return 0;
}

void add_transfer_commands(CLI::App& app, int& exit_code) {
  auto guarded = [&exit_code](auto fn) {
    return [&exit_code, fn]() {
      try {
        exit_code = fn();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tagnet: error: %s\n", e.what());
        exit_code = 1;
      }
    };
  };
  auto add_engine = [](CLI::App* c, EngineArgs& e) {
    c->add_option("--threads", e.threads, "Worker threads (0: all cores)")->capture_default_str();
    c->add_option("--backend", e.backend, "Kernels: auto, xnnpack, hwy, ref")->capture_default_str();
  };

  auto fa = std::make_shared<FeaturesArgs>();
  auto* features = app.add_subcommand("features", "Run a trained network's convolutional base over pictures once "
                                                  "and cache its outputs with the labels");
  features->add_option("--model", fa->model, "The trained network (backbone)")->required();
  features->add_option("--dataset", fa->dataset, "A folder of class subfolders, fashion-mnist or fashion-mnist-2x2")
      ->required();
  features->add_option("--out", fa->out, "Feature file to write")->required();
  features->add_option("--labels", fa->labels, "Folder names: single (one class each) or multi (red_dress -> red, dress)")
      ->capture_default_str();
  features->add_option("--layer", fa->layer, "The base's last layer, by index or name (default: before Flatten)");
  features->add_option("--data-dir", fa->data_dir, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  features->add_option("--split", fa->split, "fashion-mnist: train or test")->capture_default_str();
  features->add_option("--limit", fa->limit, "fashion-mnist: first N pictures; fashion-mnist-2x2: N pictures (10000)");
  features->add_option("--seed", fa->seed, "fashion-mnist-2x2: the fixed set's seed")->capture_default_str();
  features->add_option("--batch-size", fa->batch)->capture_default_str()->check(CLI::PositiveNumber);
  add_engine(features, fa->engine);
  features->callback(guarded([fa] { return cmd_features(*fa); }));

  auto fi = std::make_shared<FinetuneArgs>();
  auto* finetune = app.add_subcommand("finetune", "Join a base and a top model trained on its features and fine-tune "
                                                  "the last block with a small learning rate");
  finetune->add_option("--base", fi->base, "The network the features came from")->required();
  finetune->add_option("--top", fi->top, "The top model from `tagnet train --features`")->required();
  finetune->add_option("--dataset", fi->dataset, "Training pictures (class subfolders)")->required();
  finetune->add_option("--val-dataset", fi->val_dataset, "Validation pictures (default: --val-split of --dataset)");
  finetune->add_option("--val-split", fi->val_split)->capture_default_str();
  finetune->add_option("--unfreeze", fi->unfreeze, "none, last-block, all, or the first trainable layer")
      ->capture_default_str();
  finetune->add_option("--lr", fi->lr, "SGD learning rate")->capture_default_str();
  finetune->add_option("--momentum", fi->momentum, "SGD momentum")->capture_default_str();
  finetune->add_option("--epochs", fi->epochs)->capture_default_str();
  finetune->add_option("--batch-size", fi->batch)->capture_default_str()->check(CLI::PositiveNumber);
  finetune->add_option("--seed", fi->seed)->capture_default_str();
  finetune->add_option("--model", fi->model_out, "Where to write the fine-tuned model")->capture_default_str();
  finetune->add_option("--history", fi->history, "Per-epoch history and metrics (JSON)");
  finetune->add_option("--rotation", fi->augment.rotation, "Rotation range, degrees")->capture_default_str();
  finetune->add_option("--width-shift", fi->augment.width_shift)->capture_default_str();
  finetune->add_option("--height-shift", fi->augment.height_shift)->capture_default_str();
  finetune->add_option("--shear", fi->augment.shear, "Shear range, degrees")->capture_default_str();
  finetune->add_option("--zoom", fi->augment.zoom)->capture_default_str();
  finetune->add_option("--hflip", fi->augment.hflip)->capture_default_str();
  finetune->add_option("--fill", fi->augment.fill)->capture_default_str();
  finetune->add_flag("--no-augment", fi->augment.off, "Train on the pictures as they are");
  add_engine(finetune, fi->engine);
  finetune->callback(guarded([fi] { return cmd_finetune(*fi); }));

  auto ra = std::make_shared<ReplaceHeadArgs>();
  auto* replace = app.add_subcommand("replace-head", "Cut a model at a layer, add a new Dense head for new labels "
                                                     "and freeze the layers below");
  replace->add_option("--model", ra->model, "Model file")->required();
  replace->add_option("--out", ra->out, "Where to write the new model")->required();
  replace->add_option("--cut", ra->cut, "The last layer kept, by index or name (default: before the last Dense)");
  replace->add_option("--labels", ra->labels, "New label names, comma-separated");
  replace->add_option("--outputs", ra->outputs, "Number of outputs when no names are given");
  replace->add_option("--head", ra->head, "sigmoid (label sets), softmax (one class) or logit")->capture_default_str();
  replace->add_flag("--no-freeze", ra->no_freeze, "Keep the layers below the new head trainable");
  replace->add_option("--seed", ra->seed, "Initialisation of the new head")->capture_default_str();
  replace->callback(guarded([ra] { return cmd_replace_head(*ra); }));
}

}  // namespace tagnet::native
