// `tagnet train`: a network on a folder of pictures, Fashion-MNIST or its 2x2 composites, new or
// going on from a saved model (--base); with --features, a top model (train_top.cpp).
#include "train.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <type_traits>

#include "commands.h"
#include "distributed.h"
#include "draw.h"
#include "fashion_mnist.h"
#include "folder_dataset.h"
#include "tagnet/app/classifier.h"
#include "tagnet/nn/architectures.h"
#include "tagnet/train/finetune.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/novelty.h"
#include "training.h"

namespace fs = std::filesystem;

namespace tagnet::native {

bool given(const TrainArgs& a, const char* option) { return a.app && a.app->count(option) > 0; }

void check_counts(const TrainArgs& a) {
  if (given(a, "--epochs") && a.epochs < 1) throw std::invalid_argument("--epochs must be at least 1");
  if (given(a, "--size") && (a.size < 8 || a.size > 1024))
    throw std::invalid_argument("--size must be from 8 to 1024 pixels, not " + std::to_string(a.size));
}

namespace {

enum class Source { kFolder, kFashionMnist, kGrid };

// Where a --base run starts: the base itself when its head already answers `labels` with
// `head` (training goes on), else the base cut at --cut (default: before its last Dense layer)
// with a new Dense head; --trainable picks the layers that train (default: the new head alone,
// or the layers that trained before). `opt` holds the base's saved Adam state when training
// simply goes on.
struct BaseStart {
  Model model;
  std::unique_ptr<Optimizer> opt;
  Head head;   // `head`, or softmax where the base has a softmax head for the same two labels
  bool kept_head = false;
  std::string trainable;
  size_t first_trainable = 0;
};

BaseStart start_from_base(const TrainArgs& a, const std::vector<std::string>& labels, Head head) {
  std::unique_ptr<Optimizer> saved;
  Model base = Model::load(a.base, &saved);
  BaseStart s{std::move(base), std::move(saved), head, false, "", 0};
  Model& model = s.model;
  const bool same_labels = model.card().labels == labels;
  // Two classes: a softmax head made for them (replace-head, the bottleneck top model) stays.
  if (head == Head::kLogit && model_head(model) == Head::kSoftmax && same_labels) s.head = Head::kSoftmax;
  const int outputs = s.head == Head::kLogit ? 1 : static_cast<int>(labels.size());
  s.kept_head = model_head(model) == s.head && model.output_shape() == Shape{outputs} && same_labels && a.cut.empty();
  // A new head trains alone unless told otherwise; a kept one goes on as it was saved.
  s.trainable = !a.trainable.empty() ? a.trainable : s.kept_head ? "as-saved" : "head";
  size_t head_from;
  if (s.kept_head) {
    head_from = head_start(model);
  } else {
    Classifier c(std::move(model), a.base);
    NewLabels n;
    n.names = labels;
    n.head = s.head;
    n.cut = a.cut.empty() ? kAtHead : find_layer(c.model(), a.cut, "--cut") + 1;
    n.freeze_base = false;   // --trainable decides
    n.seed = a.seed;
    n.from = fs::absolute(a.base).string();
    head_from = c.give_new_labels(n);
    model = std::move(c.model());
  }
  std::vector<bool> was_trainable;
  for (size_t i = 0; i < model.num_layers(); ++i) was_trainable.push_back(model.layer(i).trainable);
  s.first_trainable = set_trainable(model, s.trainable, head_from, "--trainable");
  // Going on with the same head and the same trainable layers continues the saved Adam state,
  // so time-boxed (or interrupted) runs chain into one longer run.
  bool same_layers = true;
  for (size_t i = 0; i < model.num_layers(); ++i) same_layers &= was_trainable[i] == model.layer(i).trainable;
  if (!(s.kept_head && same_layers && s.opt && s.opt->type() == "Adam")) s.opt.reset();
  return s;
}

// The saved optimizer state to go on with (--lr and --decay replace its own when given), or a
// new Adam when there is none.
std::unique_ptr<Optimizer> make_optimizer(const TrainArgs& a, std::unique_ptr<Optimizer> saved, float decay) {
  if (!saved) return std::make_unique<Adam>(a.lr, decay);
  if (given(a, "--lr")) saved->lr = a.lr;
  if (given(a, "--decay")) saved->decay = decay;
  std::fprintf(stderr, "tagnet: continuing %s's Adam state (%lld steps)\n", a.base.c_str(),
               static_cast<long long>(saved->iterations));
  return saved;
}

// A folder dataset's name: its folder's, also when given with a trailing slash.
std::string dataset_name(const std::string& dir) {
  const fs::path p = fs::path(dir).lexically_normal();
  return (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
}

struct Data {
  std::unique_ptr<BatchSource> train, val;
  std::set<std::vector<std::string>> combinations;   // label sets seen (folders, multi-label)
  nlohmann::json info;
};

Data load_folder(const TrainArgs& a, std::vector<std::string>& labels, Head& head, const Shape& input,
                 bool fixed_labels) {
  FolderOptions fo = folder_options(label_mode_from_name(a.labels), input, a.engine.threads);
  if (fixed_labels) {
    fo.fixed_labels = &labels;
    fo.fixed_head = head;
  }
  // Together with other processes, pictures are read as batches ask for them.
  Collective* together = processes() && processes()->size() > 1 ? processes() : nullptr;
  fo.together = together;
  FolderDataset ds = load_folder_dataset(a.dataset, fo);
  labels = ds.labels;
  head = ds.head;
  std::fprintf(stderr, "tagnet: %zu pictures in %zu folders (%zu skipped); labels: %s\n", ds.files.size(),
               ds.per_folder.size(), ds.skipped.size(), join(labels).c_str());
  Data d;
  d.combinations = ds.combinations;
  ds.pictures.set_augment(a.augment.to_augment());
  ds.listed.set_augment(a.augment.to_augment());
  // The training and validation sets of either kind of set.
  auto split = [&](auto& all) {
    using Set = std::decay_t<decltype(all)>;
    if (!a.val_dataset.empty()) {
      FolderOptions vo = fo;
      vo.fixed_labels = &labels;
      vo.fixed_head = head;
      FolderDataset val = load_folder_dataset(a.val_dataset, vo);
      d.train = std::make_unique<Set>(std::move(all));
      if constexpr (std::is_same_v<Set, ImageSet>) d.val = std::make_unique<ImageSet>(std::move(val.pictures));
      else d.val = std::make_unique<PictureFiles>(std::move(val.listed));
    } else {
      std::vector<size_t> ti, vi;
      split_indices(all.size(), a.val_split, a.seed, ti, vi);
      d.train = std::make_unique<Set>(all.subset(ti));
      d.val = std::make_unique<Set>(all.subset(vi));
    }
  };
  if (together) split(ds.listed);
  else split(ds.pictures);
  std::fprintf(stderr, "tagnet: %zu training and %zu validation pictures at %dx%d\n", d.train->size(),
               d.val->size(), input[1], input[0]);
  d.info = {{"dataset", a.dataset}, {"skipped", ds.skipped.size()},
            {"label_mode", a.labels}};
  return d;
}

Data load_fashion_mnist(const TrainArgs& a, Source src) {
  Data d;
  if (src == Source::kGrid) {
    d.train = std::make_unique<GridComposites>(make_fashion_2x2(a.data_dir, "train", a.epoch_size, a.seed, true, a.limit));
    d.val = std::make_unique<GridComposites>(
        make_fashion_2x2(a.data_dir, "test", a.test_limit ? a.test_limit : a.test_size, 1, false));
    std::fprintf(stderr,
                 "tagnet: %zu fresh 2x2 training pictures per epoch, %zu fixed test pictures (56x56, 0-4 garments)\n",
                 d.train->size(), d.val->size());
  } else {
    d.train = std::make_unique<FashionMnistQuadrants>(a.data_dir, "train", 0, a.limit);
    d.val = std::make_unique<FashionMnistQuadrants>(a.data_dir, "test", 1, a.test_limit);
    std::fprintf(stderr, "tagnet: %zu training and %zu test pictures (56x56, random quadrant)\n", d.train->size(),
                 d.val->size());
  }
  d.info = {{"dataset", a.dataset}, {"train_size", d.train->size()}, {"test_size", d.val->size()}};
  return d;
}

// The run's default title: what trained on what, and how the data was varied.
std::string describe(const TrainArgs& a, Source src, const std::string& what) {
  std::string d = what + " on " + (src == Source::kFolder ? dataset_name(a.dataset) : a.dataset);
  if (src == Source::kFolder) d += a.augment.off ? ", no augmentation" : ", augmented";
  if (src == Source::kFashionMnist) d += a.augment.off ? ", fixed quadrants" : ", a fresh quadrant per epoch";
  if (a.dropout >= 0) {
    char rate[32];
    std::snprintf(rate, sizeof rate, ", dropout %g", a.dropout);
    d += rate;
  }
  return d;
}

void print_report(const TrainArgs& a, const char* set, Head head, const Scores& s, const RunResult& run,
                  size_t examples, const std::string& trainable) {
  std::string which = "final model";
  if (run.best_saved) {
    const Progress& kept = run.history.at(size_t(run.saved_epoch) - 1);
    char b[160];
    std::snprintf(b, sizeof b, "epoch %d of %zu, the lowest %s %.4f", run.saved_epoch, run.history.size(),
                  kept.has_val ? "val_loss" : "loss", kept.has_val ? kept.val.loss : kept.loss);
    which = b;
  }
  std::printf("\n%s metrics (%s, %zu pictures):\n%s", set, which.c_str(), examples, s.table.c_str());
  char after[160];
  std::snprintf(after, sizeof after, "(%s trainable, %zu epochs, %.0f s)", trainable.c_str(), run.history.size(),
                run.seconds);
  if (head == Head::kSigmoid)
    std::printf("exact match %.4f, micro F1 %.4f, macro F1 %.4f, mAP %.4f %s\n", s.json["exact_match"].get<double>(),
                s.json["micro_f1"].get<double>(), s.json["macro_f1"].get<double>(), s.json["mAP"].get<double>(), after);
  else
    std::printf("%s accuracy: %.4f %s\n", set, s.headline, after);
  std::printf("saved %s%s%s\n", a.model_out.c_str(), a.history.empty() ? "" : (", " + a.history).c_str(),
              a.plot.empty() || run.history.empty() ? "" : (", " + a.plot).c_str());
}

}  // namespace

int train_network(const TrainArgs& a) {
  const Source src = a.dataset == "fashion-mnist"       ? Source::kFashionMnist
                     : a.dataset == "fashion-mnist-2x2" ? Source::kGrid
                                                        : Source::kFolder;
  const bool from_base = !a.base.empty();
  if (!from_base && !a.trainable.empty() && a.trainable != "all")
    throw std::invalid_argument("--trainable " + a.trainable + " needs --base (a new network trains all its layers)");
  if (!from_base && !a.cut.empty()) throw std::invalid_argument("--cut needs --base (the model to cut)");
  if (from_base && (!a.arch.empty() || a.dropout >= 0))
    throw std::invalid_argument(std::string(a.arch.empty() ? "--dropout" : "--arch") +
                                " does not go with --base (the network is the base's)");
  if (src == Source::kGrid && a.epoch_size == 0) throw std::invalid_argument("--epoch-size must be at least 1");
  if (src == Source::kGrid && a.test_size == 0 && a.test_limit == 0)
    throw std::invalid_argument("--test-size must be at least 1");
  check_counts(a);
  // A folder's validation split chooses the epoch kept, as Keras' ModelCheckpoint(save_best_only)
  // does; Fashion-MNIST validates on its test set, which must not choose.
  const Checkpoint checkpoint = !a.checkpoint.empty() ? checkpoint_from_name(a.checkpoint)
                                : src == Source::kFolder ? Checkpoint::kBest
                                                         : Checkpoint::kLast;
  for (const std::string* out : {&a.model_out, &a.plot, &a.history})
    if (out == &a.model_out || !out->empty()) require_writable(*out);
  const int epochs = a.epochs > 0 ? a.epochs : src == Source::kFolder ? 75 : 5;

  // Labels, head and input first, then the base: a bad model or layer name fails before the
  // pictures are read.
  std::vector<std::string> labels = kFashionMnistClasses;
  Head head = src == Source::kGrid ? Head::kSigmoid : Head::kSoftmax;
  std::string arch = !a.arch.empty() ? a.arch : src == Source::kFolder ? "smallervggnet" : "fashionnet";
  Shape input{56, 56, 1};
  if (src == Source::kFolder) {
    input = default_input_shape(arch);
    if (a.size > 0) input[0] = input[1] = a.size;
  }
  std::optional<BaseStart> start;
  if (from_base) {
    if (src == Source::kFolder) {
      const LabelMode mode = label_mode_from_name(a.labels);
      labels = folder_label_names(a.dataset, mode);
      head = folder_head(mode, labels.size());
    }
    start = start_from_base(a, labels, head);
    head = start->head;
    const Shape base_input = start->model.input_shape();
    if (src != Source::kFolder && base_input != input)
      throw std::invalid_argument(a.base + ": expects input " + base_input.str() + ", " + a.dataset +
                                  " gives (56, 56, 1)");
    if (a.size > 0 && (base_input[0] != a.size || base_input[1] != a.size))
      throw std::invalid_argument(a.base + ": expects " + std::to_string(base_input[1]) + "x" +
                                  std::to_string(base_input[0]) + " pictures, not --size " + std::to_string(a.size));
    input = base_input;
    const nlohmann::json& trained = start->model.card().provenance.training;
    arch = trained.is_object() ? trained.value("arch", "model") : "model";
  }
  Data data = src == Source::kFolder ? load_folder(a, labels, head, input, from_base) : load_fashion_mnist(a, src);

  const auto engine = make_engine(a.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  const int outputs = head == Head::kLogit ? 1 : static_cast<int>(labels.size());
  Model model = start ? std::move(start->model) : make_architecture(arch, {outputs, head, input, a.dropout});
  if (start) std::fprintf(stderr, "tagnet: %s\n", trainable_summary(model, start->first_trainable).c_str());
  else model.build(a.seed);
  const std::string trainable = start ? start->trainable : "all";

  ModelCard& card = model.card();
  // Going on with the base's own head continues its history.
  const nlohmann::json earlier =
      start && start->kept_head && card.history.is_array() ? card.history : nlohmann::json::array();
  card.labels = labels;
  card.label_mode = src == Source::kFolder ? label_mode_from_name(a.labels) : label_mode_of(head);
  card.threshold = 0.5;
  card.head = head;
  card.preprocessing = Preprocessing::for_channels(int(input[2]));
  card.provenance.data = data.info;
  if (!data.combinations.empty()) card.combinations = data.combinations;
  else card.combinations.reset();

  const float decay = a.decay >= 0 ? a.decay : src == Source::kFolder ? a.lr / epochs : 0.f;
  const std::unique_ptr<Optimizer> opt = make_optimizer(a, start ? std::move(start->opt) : nullptr, decay);
  TrainOptions to;
  to.epochs = epochs;
  to.batch_size = a.batch;
  // A continued run draws other batches and dropout masks than the run it continues.
  to.seed = a.seed + static_cast<uint64_t>(opt->iterations);
  to.augment = !a.augment.off;   // Fashion-MNIST: a fresh quadrant per picture and epoch
  to.sync_batchnorm = a.sync_batchnorm;
  to.batchnorm_examples = batchnorm_examples_from_name(a.bn_statistics);
  card.provenance.training = {{"epochs", epochs}, {"batch_size", a.batch}, {"optimizer", opt->type()},
                              {"lr", opt->lr}, {"decay", opt->decay}, {"seed", a.seed}, {"augment", to.augment},
                              {"arch", arch}, {"trainable", trainable},
                              {"first_trainable_layer", start ? start->first_trainable : 0},
                              {"bn_statistics", a.bn_statistics}, {"date", utc_now()}};
  if (start) card.provenance.training["base"] = fs::absolute(a.base).string();

  const std::string title = a.title.empty() ? describe(a, src, start ? fs::path(a.base).filename().string() + " (" +
                                                                    trainable + " trainable)" : arch)
                                           : a.title;
  Trainer trainer(model, *data.train, *opt, loss_for(head), to, ctx);
  trainer.set_validation(data.val.get());
  RunOptions ro;
  ro.model_out = a.model_out;
  ro.checkpoint = checkpoint;
  ro.save_optimizer = a.no_optimizer_state ? nullptr : opt.get();
  ro.earlier = earlier;
  const RunResult run = run_training(trainer, model, head, ro);
  if (!leads()) return 0;   // rank 0 reports and writes the files
  // The best epoch's weights, with the optimizer's state of that epoch.
  std::unique_ptr<Optimizer> kept_opt;
  if (run.best_saved) {
    model = Model::load(a.model_out, &kept_opt);
    card.provenance.training["kept_epoch"] = run.saved_epoch;
  }

  const Scores s = score(model, *data.val, head, labels, ctx);
  card.metrics = s.json;
  if (src == Source::kFolder) learn_novelty(model, *data.train, ctx);
  card.history = run.history_json;
  model.save(a.model_out, a.no_optimizer_state ? nullptr : run.best_saved ? kept_opt.get() : opt.get());
  write_history(a.history, title, model);
  if (!a.plot.empty() && !run.history.empty()) save_history_plot(a.plot, card.history, title);
  print_report(a, src == Source::kFolder ? "validation" : "test", head, s, run, data.val->size(), trainable);
  return 0;
}

Command add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* c = app.add_subcommand("train", "Train a model on Fashion-MNIST or a folder of pictures");
  a->app = c;
  c->add_option("--dataset", a->dataset, "fashion-mnist, fashion-mnist-2x2, or a folder with one subfolder per "
                                         "example group")->capture_default_str();
  c->add_option("--data-dir", a->data_dir, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  c->add_option("--labels", a->labels, "Folder names: multi (red_dress -> red, dress) or single")
      ->check(CLI::IsMember({"multi", "single"}))
      ->capture_default_str();
  c->add_option("--arch", a->arch,
                "fashionnet, smallervggnet, smallervggnet-gap, smallervggnet-gap-linear, catsdogs (default: by dataset)");
  c->add_option("--size", a->size, "Input height and width (default: the architecture's)");
  c->add_option("--epochs", a->epochs, "Default 5 for Fashion-MNIST, 75 for folders, 50 for --features");
  c->add_option("--batch-size", a->batch)->capture_default_str()->check(at_least(1));
  c->add_option("--lr", a->lr, "Learning rate (Adam; SGD with --features)")->capture_default_str()->check(positive());
  c->add_option("--decay", a->decay, "Keras time-based decay (default lr/epochs for folders)");
  c->add_option("--val-split", a->val_split, "Validation fraction of a folder dataset")->capture_default_str();
  c->add_option("--val-dataset", a->val_dataset, "A separate validation folder instead of a split");
  c->add_option("--dropout", a->dropout, "Dropout rate of the architecture's dropout (catsdogs: off by default)");
  c->add_option("--seed", a->seed)->capture_default_str();
  c->add_option("--limit", a->limit, "Fashion-MNIST: use only the first N training pictures");
  c->add_option("--test-limit", a->test_limit, "Fashion-MNIST: use only the first N test pictures");
  c->add_option("--model", a->model_out, "Where to write the model")->capture_default_str();
  c->add_option("--plot", a->plot, "Loss/accuracy plot (empty: none)")->capture_default_str();
  c->add_option("--title", a->title, "Title of the plot and the history (default: architecture, data, augmentation)");
  c->add_option("--history", a->history, "Per-epoch history and metrics (empty: none)")->capture_default_str();
  c->add_option("--checkpoint", a->checkpoint,
                "Keep the best model by validation loss, or the last (default: best for folders, last otherwise)");
  add_bn_statistics_option(c, a->bn_statistics);
  c->add_flag("--no-optimizer-state", a->no_optimizer_state,
              "Save the model without the optimizer's state: a third of the size under Adam; a run that goes on "
              "from it starts a fresh optimizer");
  add_augment_options(c, a->augment);
  add_engine_options(c, a->engine);
  c->add_flag("--sync-batchnorm", a->sync_batchnorm,
              "Under mpirun: BatchNorm normalises with the whole batch's statistics, not each process's slice");
  c->add_option("--base", a->base,
                "Start from this model: training goes on, or a model made for other labels gets a new head");
  c->add_option("--trainable", a->trainable,
                "With --base: head, last-block, all, as-saved, or the first trainable layer (default: head for a new "
                "head, else as-saved)");
  c->add_option("--cut", a->cut, "With --base: the last layer kept under a new head (default: before the last Dense)");
  c->add_option("--epoch-size", a->epoch_size, "fashion-mnist-2x2: fresh pictures per epoch")->capture_default_str();
  c->add_option("--test-size", a->test_size, "fashion-mnist-2x2: pictures in the fixed test set")->capture_default_str();
  c->add_option("--features", a->features, "Train a top model on a feature file from `tagnet features`");
  c->add_option("--val-features", a->val_features, "Validation features (default: --val-split of --features)");
  c->add_option("--momentum", a->momentum, "--features: SGD momentum")->capture_default_str();
  c->add_option("--hidden", a->hidden, "--features: units of the top model's hidden Dense layer")->capture_default_str();
  c->add_option("--top-dropout", a->top_dropout, "--features: dropout before the top model's output")
      ->capture_default_str();
  return {c, [a] { return a->features.empty() ? train_network(*a) : train_top_model(*a); }};
}

}  // namespace tagnet::native
