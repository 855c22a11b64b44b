// tagnet: train, evaluate and inspect image classifiers from the command line.
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "fashion_mnist.h"
#include "progress.h"
#include "tagnet/architectures.h"
#include "tagnet/bench.h"
#include "tagnet/engine.h"
#include "tagnet/model.h"
#include "tagnet/train.h"

namespace tn = tagnet;
namespace nat = tagnet::native;

namespace {

std::atomic<bool> g_stop{false};

void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);   // a second Ctrl-C quits at once
}

struct EngineFlags {
  int threads = 0;
  std::string backend = "auto";
  void add(CLI::App* app) {
    app->add_option("--threads", threads, "Worker threads (0: all cores)")->capture_default_str();
    app->add_option("--backend", backend, "Kernels: auto, xnnpack, hwy, ref")->capture_default_str();
  }
  tn::Engine make() const { return tn::Engine(tn::Engine::Options{threads, backend}); }
};

struct TrainArgs {
  std::string dataset = "fashion-mnist", data_dir = nat::kFashionMnistDir, arch, model_out = "model.tagnet";
  int epochs = 5, batch = 32;
  float lr = 1e-3f, decay = 0.f;
  uint64_t seed = 42;
  size_t limit = 0, test_limit = 0;
};

int cmd_train(const TrainArgs& a, const EngineFlags& ef) {
  if (a.dataset != "fashion-mnist")
    throw std::invalid_argument("unknown dataset '" + a.dataset + "' (known: fashion-mnist)");
  tn::Engine engine = ef.make();
  std::fprintf(stderr, "tagnet: %s\n", engine.describe().c_str());
  nat::FashionMnistQuadrants train(a.data_dir, "train", 0, a.limit);
  nat::FashionMnistQuadrants test(a.data_dir, "test", 1, a.test_limit);
  std::fprintf(stderr, "tagnet: %zu training and %zu test pictures (56x56, random quadrant)\n",
               train.size(), test.size());
  const std::string arch = a.arch.empty() ? "fashionnet" : a.arch;
  tn::ArchOptions ao{10, tn::Head::kSoftmax, {56, 56, 1}, -1};
  tn::Model model = tn::make_architecture(arch, ao);
  model.build(a.seed);
  model.metadata()["labels"] = nat::kFashionMnistClasses;
  model.metadata()["label_mode"] = "single";
  model.metadata()["preprocessing"] = {{"color", "grayscale"}, {"scale", 1.0 / 255}, {"resize", "area"}};
  model.metadata()["dataset"] = "fashion-mnist";
  tn::Adam adam(a.lr, a.decay);
  tn::FitOptions fo;
  fo.epochs = a.epochs;
  fo.batch_size = a.batch;
  fo.seed = a.seed;
  fo.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  nat::ProgressPrinter printer(stdout, "accuracy");
  std::vector<double> epoch_seconds;
  auto t0 = std::chrono::steady_clock::now();
  const tn::LossKind loss = tn::LossKind::kCategoricalCrossentropy;
  const tn::Context ctx{&engine, false, nullptr, 0};
  auto history = tn::fit(model, train, &test, adam, loss, fo, ctx, [&](const tn::Progress& p) {
    if (p.epoch_end) {
      const auto now = std::chrono::steady_clock::now();
      epoch_seconds.push_back(std::chrono::duration<double>(now - t0).count());
      t0 = now;
    }
    printer(p);
  });
  if (g_stop) std::fprintf(stderr, "tagnet: stopped after %zu complete epochs\n", history.size());
  nlohmann::json hist = nlohmann::json::array();
  for (size_t i = 0; i < history.size(); ++i)
    hist.push_back({{"epoch", history[i].epoch}, {"loss", history[i].loss}, {"accuracy", history[i].accuracy},
                    {"val_loss", history[i].val.loss}, {"val_accuracy", history[i].val.accuracy},
                    {"seconds", epoch_seconds[i]}});
  model.metadata()["history"] = hist;
  model.save(a.model_out, &adam);
  const tn::Metrics m = tn::evaluate(model, test, loss, 256, ctx);
  std::printf("test accuracy: %.4f  test loss: %.4f  (%zu pictures)\n", m.accuracy, m.loss, m.examples);
  std::printf("saved %s\n", a.model_out.c_str());
  return 0;
}

int cmd_evaluate(const std::string& model_path, const std::string& dataset, const std::string& data_dir,
                 size_t limit, bool json, const EngineFlags& ef) {
  if (dataset != "fashion-mnist")
    throw std::invalid_argument("unknown dataset '" + dataset + "' (known: fashion-mnist)");
  tn::Engine engine = ef.make();
  tn::Model model = tn::Model::load(model_path);
  if (model.input_shape() != tn::Shape{56, 56, 1})
    throw std::invalid_argument(model_path + ": expects input " + model.input_shape().str() +
                                ", fashion-mnist gives (56, 56, 1)");
  nat::FashionMnistQuadrants test(data_dir, "test", 1, limit);
  const tn::Context ctx{&engine, false, nullptr, 0};
  const tn::Metrics m = tn::evaluate(model, test, tn::LossKind::kCategoricalCrossentropy, 256, ctx);
  if (json) {
    std::cout << nlohmann::json{{"accuracy", m.accuracy}, {"loss", m.loss}, {"examples", m.examples},
                                {"model", model_path}, {"dataset", dataset}}
              << "\n";
  } else {
    std::printf("accuracy: %.4f\nloss: %.4f\nexamples: %zu\n", m.accuracy, m.loss, m.examples);
  }
  return 0;
}

int cmd_summary(const std::string& model_path, const std::string& arch, int outputs, const std::string& head) {
  if (!model_path.empty()) {
    tn::Model m = tn::Model::load(model_path);
    std::cout << m.summary();
    return 0;
  }
  tn::Model m = tn::make_architecture(arch, {outputs, tn::head_from_name(head), {}, -1});
  m.build(0);
  std::cout << m.summary();
  return 0;
}

void print_bench(const nlohmann::json& r) {
  std::printf("backend %s, %d threads\n", r["backend"].get<std::string>().c_str(), r["threads"].get<int>());
  std::printf("gemm 1024x1024x1024: %.1f GFLOP/s\n\n", r["gemm_gflops"].get<double>());
  for (const char* net : {"smallervggnet", "fashionnet"}) {
    if (!r.contains(net)) continue;
    const auto& n = r[net];
    std::printf("%s (%s parameters)\n", net, std::to_string(n["params"].get<size_t>()).c_str());
    std::printf("  training, batch 32:     %8.1f images/s (%.1f ms per batch)\n",
                n["train_images_per_s"].get<double>(), n["train_batch_ms"].get<double>());
    std::printf("  inference, batch 1:     %8.2f ms\n", n["infer_b1_ms"].get<double>());
    std::printf("  inference, batch 32:    %8.1f images/s\n", n["infer_b32_images_per_s"].get<double>());
    if (n.contains("layers")) {
      std::printf("  %-24s %-20s %10s %10s %10s %10s\n", "layer", "type", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s");
      for (const auto& l : n["layers"]) {
        std::printf("  %-24s %-20s %10.2f %10.2f", l["name"].get<std::string>().c_str(),
                    l["type"].get<std::string>().c_str(), l["forward_ms"].get<double>(),
                    l["backward_ms"].get<double>());
        if (l.contains("forward_gflops"))
          std::printf(" %10.1f %10.1f", l["forward_gflops"].get<double>(), l["backward_gflops"].get<double>());
        std::printf("\n");
      }
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tagnet: train and run image classifiers"};
  app.require_subcommand(1);

  EngineFlags ef;
  TrainArgs ta;
  auto* train = app.add_subcommand("train", "Train a model");
  train->add_option("--dataset", ta.dataset, "Dataset: fashion-mnist")->capture_default_str();
  train->add_option("--data-dir", ta.data_dir, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  train->add_option("--arch", ta.arch, "Architecture (default: by dataset)");
  train->add_option("--epochs", ta.epochs)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--batch-size", ta.batch)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--lr", ta.lr, "Adam learning rate")->capture_default_str();
  train->add_option("--decay", ta.decay, "Keras time-based learning-rate decay")->capture_default_str();
  train->add_option("--seed", ta.seed)->capture_default_str();
  train->add_option("--limit", ta.limit, "Use only the first N training pictures");
  train->add_option("--test-limit", ta.test_limit, "Use only the first N test pictures");
  train->add_option("--model", ta.model_out, "Where to write the model")->capture_default_str();
  ef.add(train);

  std::string model_path, dataset = "fashion-mnist", data_dir = nat::kFashionMnistDir;
  size_t limit = 0;
  bool json = false;
  auto* evaluate = app.add_subcommand("evaluate", "Score a model on a dataset");
  evaluate->add_option("--model", model_path, "Model file")->required();
  evaluate->add_option("--dataset", dataset)->capture_default_str();
  evaluate->add_option("--data-dir", data_dir)->capture_default_str();
  evaluate->add_option("--limit", limit, "Use only the first N pictures");
  evaluate->add_flag("--json", json, "Print one JSON object");
  ef.add(evaluate);

  std::string arch = "fashionnet", head = "softmax";
  int outputs = 10;
  auto* summary = app.add_subcommand("summary", "Print a model's layers and parameter counts");
  auto* sm = summary->add_option("--model", model_path, "Model file");
  summary->add_option("--arch", arch, "Built-in architecture")->excludes(sm)->capture_default_str();
  summary->add_option("--outputs", outputs)->capture_default_str();
  summary->add_option("--head", head, "softmax, sigmoid or logit")->capture_default_str();

  tn::BenchOptions bo;
  bool no_layers = false;
  auto* bench = app.add_subcommand("bench", "Measure training and inference speed");
  bench->add_flag("--json", json, "Print one JSON object");
  bench->add_option("--seconds", bo.seconds_per_figure, "Time budget per figure")->capture_default_str();
  bench->add_flag("--no-layers", no_layers, "Skip the per-layer table");
  ef.add(bench);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) return cmd_train(ta, ef);
    if (*evaluate) return cmd_evaluate(model_path, dataset, data_dir, limit, json, ef);
    if (*summary) return cmd_summary(model_path, arch, outputs, head);
    if (*bench) {
      bo.per_layer = !no_layers;
      tn::Engine engine = ef.make();
      const nlohmann::json r = tn::run_bench(engine, bo);
      if (json) std::cout << r.dump() << "\n";
      else print_bench(r);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tagnet: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
