#include "commands.h"

#include <unistd.h>

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
#include <optional>
#include <set>

#include "draw.h"
#include "fashion_mnist.h"
#include "folder_dataset.h"
#include "make_dataset.h"
#include "progress.h"
#include "transfer.h"
#include "tagnet/architectures.h"
#include "tagnet/dataset.h"
#include "tagnet/engine.h"
#include "tagnet/metrics.h"
#include "tagnet/model.h"
#include "tagnet/train.h"

namespace fs = std::filesystem;

namespace tagnet::native {

std::atomic<bool> g_stop{false};

void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);   // a second Ctrl-C quits at once
}

std::unique_ptr<Engine> make_engine(const EngineArgs& a, bool announce) {
  auto e = std::make_unique<Engine>(Engine::Options{a.threads, a.backend});
  if (announce) std::fprintf(stderr, "tagnet: %s\n", e->describe().c_str());
  return e;
}

void require_writable(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("an output file name is empty");
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": cannot write (it is a folder)");
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw std::runtime_error(path + ": cannot write (no folder " + dir.string() + ")");
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
    throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
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

namespace {

FillMode fill_from_name(const std::string& s) {
  if (s == "nearest") return FillMode::kNearest;
  if (s == "constant") return FillMode::kConstant;
  if (s == "reflect") return FillMode::kReflect;
  if (s == "wrap") return FillMode::kWrap;
  throw std::invalid_argument("--fill must be nearest, constant, reflect or wrap, not '" + s + "'");
}

std::string percent(float p) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", p * 100.f);
  return b;
}

// Metrics of a model on a set, by head: multi-label or multi-class reports.
nlohmann::json detailed_metrics(Model& model, BatchSource& data, Head head, const std::vector<std::string>& labels,
                                const Context& ctx, std::string* table) {
  Tensor probs, targets;
  const Metrics m = evaluate(model, data, loss_for(head), 64, ctx, &probs, &targets);
  nlohmann::json j;
  if (head == Head::kSigmoid) {
    const auto ml = multilabel_metrics(probs, targets, labels);
    j = ml.to_json();
    if (table) *table = ml.to_table();
  } else {
    // One-logit heads become two-class probabilities first.
    if (head == Head::kLogit) {
      Tensor p2({probs.dim(0), 2}), t2({probs.dim(0), 2});
      for (int n = 0; n < probs.dim(0); ++n) {
        const float p = 1.f / (1.f + std::exp(-probs.at(n)));
        p2.at(size_t(n) * 2) = 1 - p, p2.at(size_t(n) * 2 + 1) = p;
        t2.at(size_t(n) * 2) = 1 - targets.at(n), t2.at(size_t(n) * 2 + 1) = targets.at(n);
      }
      probs = p2, targets = t2;
    }
    const auto mc = multiclass_metrics(probs, targets, labels);
    j = mc.to_json();
    if (table) *table = mc.to_table();
  }
  j["loss"] = m.loss;
  j["examples"] = m.examples;
  return j;
}

// A folder dataset's name: its folder's, also when given with a trailing slash.
std::string dataset_name(const std::string& dir) {
  const fs::path p = fs::path(dir).lexically_normal();
  return (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
}

std::string accuracy_name(Head h) { return h == Head::kSoftmax ? "accuracy" : "binary_accuracy"; }

}  // namespace

std::string run_title(const TrainArgs& a, const std::string& fallback) {
  return a.title.empty() ? fallback : a.title;
}

nlohmann::json history_json(const std::vector<Progress>& h, const std::vector<double>& seconds) {
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = 0; i < h.size(); ++i) {
    nlohmann::json e = {{"epoch", h[i].epoch}, {"loss", h[i].loss}, {"accuracy", h[i].accuracy}};
    if (h[i].has_val) {
      e["val_loss"] = h[i].val.loss;
      e["val_accuracy"] = h[i].val.accuracy;
    }
    if (i < seconds.size()) e["seconds"] = seconds[i];
    a.push_back(e);
  }
  return a;
}

nlohmann::json continued_history(const nlohmann::json& earlier, const nlohmann::json& fresh) {
  nlohmann::json all = earlier;
  for (nlohmann::json e : fresh) {
    e["epoch"] = all.size() + 1;
    all.push_back(std::move(e));
  }
  return all;
}

Augment AugmentArgs::to_augment() const {
  Augment a;
  if (off) return a;
  a.rotation_deg = rotation;
  a.width_shift = width_shift;
  a.height_shift = height_shift;
  a.shear_deg = shear;
  a.zoom = zoom;
  a.hflip = hflip;
  a.fill = fill_from_name(fill);
  return a;
}

int cmd_train(const TrainArgs& a, const TransferTrainArgs& xa) {
  const bool fmnist = a.dataset == "fashion-mnist";
  const bool from_base = !xa.base.empty();
  if (!from_base && !xa.trainable.empty()) throw std::invalid_argument("--trainable needs --base (the model to start from)");
  if (!from_base && !xa.cut.empty()) throw std::invalid_argument("--cut needs --base (the model to cut)");
  if (from_base && (!a.arch.empty() || a.dropout >= 0))
    throw std::invalid_argument(std::string(a.arch.empty() ? "--dropout" : "--arch") +
                                " does not go with --base (the network is the base's)");
  const int epochs = a.epochs > 0 ? a.epochs : fmnist ? 5 : 75;
  if (a.checkpoint != "best" && a.checkpoint != "last")
    throw std::invalid_argument("--checkpoint must be best or last, not '" + a.checkpoint + "'");
  for (const std::string* out : {&a.model_out, &a.plot, &a.history})
    if (out == &a.model_out || !out->empty()) require_writable(*out);

  // The data: Fashion-MNIST in quadrants, or a folder of pictures split into train/validation.
  std::unique_ptr<BatchSource> train, val;
  std::vector<std::string> labels;
  Head head;
  std::string arch = a.arch;
  Shape input;
  std::set<std::vector<std::string>> combinations;
  nlohmann::json data_info;
  std::optional<BaseStart> start;   // with --base
  if (fmnist) {
    if (arch.empty()) arch = "fashionnet";
    train = std::make_unique<FashionMnistQuadrants>(a.data_dir, "train", 0, a.limit);
    val = std::make_unique<FashionMnistQuadrants>(a.data_dir, "test", 1, a.test_limit);
    labels = kFashionMnistClasses;
    head = Head::kSoftmax;
    input = {56, 56, 1};
    std::fprintf(stderr, "tagnet: %zu training and %zu test pictures (56x56, random quadrant)\n", train->size(),
                 val->size());
    data_info = {{"dataset", "fashion-mnist"}};
  } else {
    if (arch.empty()) arch = "smallervggnet";
    input = default_input_shape(arch);
    if (a.size > 0) input[0] = input[1] = a.size;
    FolderOptions fo;
    fo.mode = label_mode_from_name(a.labels);
    if (from_base) {
      // The base first: a bad model or layer name fails before the pictures are read.
      labels = folder_label_names(a.dataset, fo.mode);
      head = folder_head(fo.mode, labels.size());
      start = start_from_base(a, xa, labels, head);
      head = start->head;
      input = start->model.input_shape();
      if (a.size > 0 && (input[0] != a.size || input[1] != a.size))
        throw std::invalid_argument(xa.base + ": expects " + std::to_string(input[1]) + "x" + std::to_string(input[0]) +
                                    " pictures, not --size " + std::to_string(a.size));
      arch = start->model.metadata().value("training", nlohmann::json::object()).value("arch", "model");
      fo.fixed_labels = &labels;
      fo.fixed_head = head;
    }
    fo.input = input;
    fo.threads = a.engine.threads;
    fo.warn = [](const std::string& w) { std::fprintf(stderr, "tagnet: warning: skipped %s\n", w.c_str()); };
    FolderDataset ds = load_folder_dataset(a.dataset, fo);
    labels = ds.labels;
    head = ds.head;
    combinations = ds.combinations;
    std::string names;
    for (auto& l : labels) names += (names.empty() ? "" : ", ") + l;
    std::fprintf(stderr, "tagnet: %zu pictures in %zu folders (%zu skipped); labels: %s\n", ds.pictures.size(),
                 ds.per_folder.size(), ds.skipped.size(), names.c_str());
    ImageSet all = std::move(ds.pictures);
    all.set_augment(a.augment.to_augment());
    if (!a.val_dataset.empty()) {
      FolderOptions vo = fo;
      vo.fixed_labels = &labels;
      vo.fixed_head = head;
      FolderDataset vds = load_folder_dataset(a.val_dataset, vo);
      train = std::make_unique<ImageSet>(std::move(all));
      val = std::make_unique<ImageSet>(std::move(vds.pictures));
    } else {
      if (!(a.val_split >= 0.f && a.val_split < 1.f)) throw std::invalid_argument("--val-split must be in [0, 1)");
      std::vector<size_t> order(all.size());
      std::iota(order.begin(), order.end(), 0);
      Rng split_rng(a.seed);
      split_rng.shuffle(order);
      const size_t nval = static_cast<size_t>(std::lround(a.val_split * order.size()));
      if (order.size() - nval < 1) throw std::runtime_error(a.dataset + ": too few pictures to train on");
      std::vector<size_t> vi(order.begin(), order.begin() + nval), ti(order.begin() + nval, order.end());
      train = std::make_unique<ImageSet>(all.subset(ti));
      val = std::make_unique<ImageSet>(all.subset(vi));
    }
    std::fprintf(stderr, "tagnet: %zu training and %zu validation pictures at %dx%d\n", train->size(), val->size(),
                 input[1], input[0]);
    data_info = {{"dataset", fs::absolute(a.dataset).string()}, {"skipped", ds.skipped.size()},
                 {"label_mode", a.labels}};
  }

  const auto engine = make_engine(a.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  const int outputs = head == Head::kLogit ? 1 : static_cast<int>(labels.size());
  Model model = start ? std::move(start->model) : make_architecture(arch, {outputs, head, input, a.dropout});
  if (start) std::fprintf(stderr, "tagnet: %s\n", trainable_summary(model, start->first_trainable).c_str());
  else model.build(a.seed);
  auto& md = model.metadata();
  // Going on with the base's own head continues its history.
  const nlohmann::json earlier =
      start && start->kept_head ? md.value("history", nlohmann::json::array()) : nlohmann::json::array();
  md["labels"] = labels;
  md["label_mode"] = fmnist ? "single" : a.labels;
  md["threshold"] = 0.5;
  md["preprocessing"] = {{"color", input[2] == 1 ? "grayscale" : "rgb"}, {"scale", 1.0 / 255}, {"resize", "area"}};
  md["data"] = data_info;
  if (!combinations.empty()) md["combinations"] = combinations;
  else md.erase("combinations");

  const float decay = a.decay >= 0 ? a.decay : fmnist ? 0.f : a.lr / epochs;
  std::string described = (start ? fs::path(xa.base).filename().string() + " (" + start->trainable + " trainable)" : arch) +
                          " on " + (fmnist ? "fashion-mnist" : dataset_name(a.dataset));
  if (fmnist) described += a.augment.off ? ", fixed quadrants" : ", a fresh quadrant per epoch";
  else described += a.augment.off ? ", no augmentation" : ", augmented";
  if (a.dropout >= 0) {
    char rate[32];
    std::snprintf(rate, sizeof rate, ", dropout %g", a.dropout);
    described += rate;
  }
  const std::string title = run_title(a, described);
  const std::unique_ptr<Optimizer> opt =
      start ? base_optimizer(a, xa, std::move(start->opt), decay) : std::make_unique<Adam>(a.lr, decay);
  FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = a.batch;
  // A continued run draws other batches and dropout masks than the run it continues.
  fo.seed = a.seed + static_cast<uint64_t>(opt->iterations);
  fo.augment = !a.augment.off;   // Fashion-MNIST: a fresh quadrant per picture and epoch
  fo.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  const LossKind loss = loss_for(head);
  ProgressPrinter printer(stdout, accuracy_name(head));
  std::vector<Progress> done;
  std::vector<double> seconds;
  double best = INFINITY;
  bool saved_best = false;
  auto t0 = std::chrono::steady_clock::now();
  md["training"] = {{"epochs", epochs}, {"batch_size", a.batch}, {"lr", opt->lr}, {"decay", opt->decay},
                    {"seed", a.seed}, {"augment", fo.augment}, {"arch", arch}};
  if (start) {
    md["training"]["base"] = fs::absolute(xa.base).string();
    md["training"]["trainable"] = start->trainable;
    md["training"]["first_trainable_layer"] = start->first_trainable;
  }
  fit(model, *train, val.get(), *opt, loss, fo, ctx, [&](const Progress& p) {
    printer(p);
    if (!p.epoch_end) return;
    const auto now = std::chrono::steady_clock::now();
    seconds.push_back(std::chrono::duration<double>(now - t0).count());
    t0 = now;
    done.push_back(p);
    md["history"] = continued_history(earlier, history_json(done, seconds));
    const double score = p.has_val ? p.val.loss : p.loss;
    if (a.checkpoint == "best" && score < best) {
      best = score;
      model.save(a.model_out, opt.get());
      saved_best = true;
    } else if (a.checkpoint == "last") {
      model.save(a.model_out, opt.get());   // every epoch, so an interrupted run leaves a model
    }
  });
  if (g_stop) std::fprintf(stderr, "tagnet: stopped after %zu complete epochs\n", done.size());
  if (a.checkpoint == "best" && saved_best) model = Model::load(a.model_out);

  std::string table;
  const nlohmann::json metrics = detailed_metrics(model, *val, head, labels, ctx, &table);
  md["metrics"] = metrics;
  md["history"] = continued_history(earlier, history_json(done, seconds));
  if (!(a.checkpoint == "best" && saved_best)) model.save(a.model_out, opt.get());
  else model.save(a.model_out);
  const nlohmann::json hist = {{"title", title}, {"history", md["history"]}, {"metrics", metrics},
                               {"training", md["training"]}, {"labels", labels}};
  if (!a.history.empty()) write_text(a.history, hist.dump(2) + "\n");
  if (!a.plot.empty() && !done.empty()) save_history_plot(a.plot, md["history"], title);
  std::printf("\n%s metrics (%s, %zu pictures):\n%s", fmnist ? "test" : "validation",
              a.checkpoint == "best" ? "best model" : "final model", static_cast<size_t>(metrics["examples"]),
              table.c_str());
  if (fmnist) std::printf("test accuracy: %.4f\n", metrics["accuracy"].get<double>());
  std::printf("saved %s%s%s\n", a.model_out.c_str(), a.history.empty() ? "" : (", " + a.history).c_str(),
              a.plot.empty() || done.empty() ? "" : (", " + a.plot).c_str());
  return 0;
}

int cmd_evaluate(const EvaluateArgs& a) {
  const auto engine = make_engine(a.engine);
  const Context ctx{engine.get(), false, nullptr, 0};
  Model model = Model::load(a.model);
  const auto& md = model.metadata();
  const Head head = model_head(model);
  std::vector<std::string> labels = md.value("labels", std::vector<std::string>{});
  std::unique_ptr<BatchSource> data;
  if (a.dataset == "fashion-mnist") {
    if (model.input_shape() != Shape{56, 56, 1})
      throw std::invalid_argument(a.model + ": expects input " + model.input_shape().str() +
                                  ", fashion-mnist gives (56, 56, 1)");
    data = std::make_unique<FashionMnistQuadrants>(a.data_dir, "test", 1, a.limit);
    if (labels.empty()) labels = kFashionMnistClasses;
  } else {
    if (labels.empty()) throw std::runtime_error(a.model + ": the model file has no label names");
    FolderOptions fo;
    fo.mode = label_mode_from_name(md.value("label_mode", std::string("multi")));
    fo.input = model.input_shape();
    fo.fixed_labels = &labels;
    fo.fixed_head = head;
    fo.threads = a.engine.threads;
    fo.warn = [](const std::string& w) { std::fprintf(stderr, "tagnet: warning: skipped %s\n", w.c_str()); };
    auto ds = std::make_unique<FolderDataset>(load_folder_dataset(a.dataset, fo));
    data = std::make_unique<ImageSet>(std::move(ds->pictures));
  }
  std::string table;
  nlohmann::json j = detailed_metrics(model, *data, head, labels, ctx, &table);
  j["model"] = a.model;
  j["dataset"] = a.dataset;
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (head == Head::kSigmoid) {
    std::printf("%s", table.c_str());
  } else {
    std::printf("accuracy: %.4f\nloss: %.4f\nexamples: %zu\n", j["accuracy"].get<double>(), j["loss"].get<double>(),
                j["examples"].get<size_t>());
  }
  return 0;
}

int cmd_classify(const ClassifyArgs& a) {
  const auto engine = make_engine(a.engine);
  const Context ctx{engine.get(), false, nullptr, 0};
  Model model = Model::load(a.model);
  const auto& md = model.metadata();
  const std::vector<std::string> labels = md.value("labels", std::vector<std::string>{});
  if (labels.empty()) throw std::runtime_error(a.model + ": the model file has no label names");
  const Head head = model_head(model);
  std::set<std::vector<std::string>> seen;
  if (md.contains("combinations")) seen = md["combinations"].get<std::set<std::vector<std::string>>>();

  std::vector<std::string> files;
  for (auto& p : a.images) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      auto pics = list_pictures(p);
      if (pics.empty()) throw std::runtime_error(p + ": no pictures in this folder");
      files.insert(files.end(), pics.begin(), pics.end());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) throw std::invalid_argument("no pictures given (--image FILE or FOLDER)");
  const bool out_dir = !a.output.empty() && files.size() > 1;
  if (out_dir) fs::create_directories(a.output);

  nlohmann::json all = nlohmann::json::array();
  int failures = 0;
  for (const auto& file : files) {
    Image img;
    try {
      img = load_image(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tagnet: error: %s\n", e.what());
      ++failures;
      continue;
    }
    const std::vector<float> probs = classify_images(model, {img}, ctx)[0];
    std::vector<size_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return probs[x] > probs[y]; });
    std::vector<std::string> predicted;
    if (head == Head::kSigmoid) {
      for (size_t i : order)
        if (probs[i] > a.threshold) predicted.push_back(labels[i]);
    } else {
      predicted.push_back(labels[order[0]]);
    }
    std::vector<std::string> sorted_pred = predicted;
    std::sort(sorted_pred.begin(), sorted_pred.end());
    const bool unseen = head == Head::kSigmoid && !seen.empty() && !predicted.empty() && !seen.count(sorted_pred);
    nlohmann::json j = {{"image", file}, {"predicted", predicted}};
    for (size_t i : order) j["probabilities"][labels[i]] = probs[i];
    if (head == Head::kSigmoid) j["unseen_combination"] = unseen;
    if (!a.json) {
      std::printf("%s\n", file.c_str());
      for (size_t i : order) {
        const bool mark = head == Head::kSigmoid ? probs[i] > a.threshold : i == order[0];
        std::printf("  %s %s: %s\n", mark ? "*" : " ", labels[i].c_str(), percent(probs[i]).c_str());
      }
      if (unseen) {
        std::string combo;
        for (auto& l : sorted_pred) combo += (combo.empty() ? "" : ", ") + l;
        std::printf("  note: the combination {%s} never occurred together in training\n", combo.c_str());
      }
    }
    if (!a.output.empty()) {
      std::vector<std::string> lines;
      for (size_t k = 0; k < order.size() && static_cast<int>(k) < a.top; ++k)
        lines.push_back(labels[order[k]] + ": " + percent(probs[order[k]]));
      if (unseen) lines.push_back("(never seen together in training)");
      const std::string out =
          out_dir ? (fs::path(a.output) / (fs::path(file).stem().string() + ".png")).string() : a.output;
      save_png(out, annotate_image(img, lines));
      j["annotated"] = out;
    }
    all.push_back(j);
  }
  if (a.json) std::cout << (files.size() == 1 && !all.empty() ? all[0] : all).dump() << "\n";
  return failures ? 1 : 0;
}

int cmd_preview(const PreviewArgs& a) {
  FolderOptions fo;
  fo.mode = label_mode_from_name(a.labels);
  fo.input = {a.size, a.size, 3};
  fo.warn = [](const std::string& w) { std::fprintf(stderr, "tagnet: warning: skipped %s\n", w.c_str()); };
  FolderDataset ds = load_folder_dataset(a.dataset, fo);
  ImageSet& set = ds.pictures;
  Rng rng(a.seed);
  std::vector<size_t> order(set.size());
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(order);
  std::vector<Image> tiles;
  std::vector<std::string> captions;
  auto to_image = [&](const float* x) {
    Image im;
    im.width = a.size, im.height = a.size;
    im.rgb.resize(size_t(a.size) * a.size * 3);
    for (size_t i = 0; i < im.rgb.size(); ++i)
      im.rgb[i] = static_cast<uint8_t>(std::lround(std::min(1.f, std::max(0.f, x[i])) * 255));
    return im;
  };
  auto caption = [&](size_t i) {
    std::string c;
    const float* t = set.target(i);
    for (int k = 0; k < set.outputs(); ++k)
      if (t[k] > 0.5f) c += (c.empty() ? "" : ", ") + ds.labels[ds.head == Head::kLogit ? 1 : k];
    return c.empty() && ds.head == Head::kLogit ? ds.labels[0] : c;
  };
  Tensor x, y;
  for (int k = 0; k < a.count && k < static_cast<int>(order.size()); ++k) {
    set.fill({order[k]}, x, y, rng, false);
    tiles.push_back(to_image(x.data()));
    captions.push_back(caption(order[k]));
  }
  set.set_augment(a.augment.to_augment());
  for (int k = 0; k < a.augmented; ++k) {
    set.fill({order[0]}, x, y, rng, true);
    tiles.push_back(to_image(x.data()));
    captions.push_back("augmented " + std::to_string(k + 1));
  }
  save_montage(a.out, tiles, captions, 8, 128);
  std::printf("wrote %s: %d pictures with their labels and %d augmented versions of %s\n", a.out.c_str(),
              std::min<int>(a.count, static_cast<int>(order.size())), a.augmented, ds.files[order[0]].c_str());
  return 0;
}

int cmd_make_dataset(const MakeDatasetArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  MakeDatasetReport r;
  if (a.kind == "fashion-color")
    r = make_fashion_color(a.out, a.data_dir, a.seed, a.per_class, 96, a.overwrite);
  else
    r = make_two_class(a.out, a.data_dir, a.kind, a.seed, 150, a.overwrite);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& [folder, n] : r.per_folder) std::printf("  %-28s %zu\n", folder.c_str(), n);
  std::printf("wrote %zu pictures to %s in %.1f s\n", r.images, a.out.c_str(), s);
  return 0;
}

}  // namespace tagnet::native
