// tagnet: train, evaluate, classify and inspect image classifiers from the command line.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "serve.h"
#include "transfer.h"
#include "tagnet/architectures.h"
#include "tagnet/bench.h"
#include "tagnet/model.h"

namespace tn = tagnet;
namespace nat = tagnet::native;

namespace {

void add_engine(CLI::App* app, nat::EngineArgs& e) {
  app->add_option("--threads", e.threads, "Worker threads (0: all cores)")->capture_default_str();
  app->add_option("--backend", e.backend, "Kernels: auto, xnnpack, hwy, ref")->capture_default_str();
}

void add_augment(CLI::App* app, nat::AugmentArgs& a) {
  app->add_option("--rotation", a.rotation, "Rotation range, degrees")->capture_default_str();
  app->add_option("--width-shift", a.width_shift, "Horizontal shift range, fraction of width")->capture_default_str();
  app->add_option("--height-shift", a.height_shift, "Vertical shift range, fraction of height")->capture_default_str();
  app->add_option("--shear", a.shear, "Shear range, degrees")->capture_default_str();
  app->add_option("--zoom", a.zoom, "Zoom range: scale in [1-z, 1+z]")->capture_default_str();
  app->add_option("--hflip", a.hflip, "Random horizontal flips (true/false)")->capture_default_str();
  app->add_option("--fill", a.fill, "Border fill: nearest, constant, reflect, wrap")->capture_default_str();
  app->add_flag("--no-augment", a.off, "Train on the pictures as they are");
}

int cmd_summary(const std::string& model_path, const std::string& arch, int outputs, const std::string& head) {
  if (!model_path.empty()) {
    std::cout << tn::Model::load(model_path).summary();
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
    std::printf("%s (%zu parameters)\n", net, n["params"].get<size_t>());
    std::printf("  training, batch 32:     %8.1f images/s (%.1f ms per batch)\n", n["train_images_per_s"].get<double>(),
                n["train_batch_ms"].get<double>());
    std::printf("  inference, batch 1:     %8.2f ms\n", n["infer_b1_ms"].get<double>());
    std::printf("  inference, batch 32:    %8.1f images/s\n", n["infer_b32_images_per_s"].get<double>());
    if (!n.contains("layers")) continue;
    std::printf("  %-22s %-22s %9s %9s %9s %9s\n", "layer", "type", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s");
    for (const auto& l : n["layers"]) {
      std::printf("  %-22s %-22s %9.2f %9.2f", l["name"].get<std::string>().c_str(), l["type"].get<std::string>().c_str(),
                  l["forward_ms"].get<double>(), l["backward_ms"].get<double>());
      if (l.contains("forward_gflops"))
        std::printf(" %9.1f %9.1f", l["forward_gflops"].get<double>(), l["backward_gflops"].get<double>());
      std::printf("\n");
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tagnet: train and run image classifiers"};
  app.require_subcommand(1);

  nat::TrainArgs ta;
  auto* train = app.add_subcommand("train", "Train a model on Fashion-MNIST or a folder of pictures");
  train->add_option("--dataset", ta.dataset, "fashion-mnist, or a folder with one subfolder per example group")
      ->capture_default_str();
  train->add_option("--data-dir", ta.data_dir, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  train->add_option("--labels", ta.labels, "Folder names: multi (red_dress -> red, dress) or single")
      ->capture_default_str();
  train->add_option("--arch", ta.arch, "fashionnet, smallervggnet, catsdogs (default: by dataset)");
  train->add_option("--size", ta.size, "Input height and width (default: the architecture's)");
  train->add_option("--epochs", ta.epochs, "Default 5 for Fashion-MNIST, 75 for folders");
  train->add_option("--batch-size", ta.batch)->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--lr", ta.lr, "Learning rate (Adam; SGD with --features)")->capture_default_str();
  train->add_option("--decay", ta.decay, "Keras time-based decay (default lr/epochs for folders)");
  train->add_option("--val-split", ta.val_split, "Validation fraction of a folder dataset")->capture_default_str();
  train->add_option("--val-dataset", ta.val_dataset, "A separate validation folder instead of a split");
  train->add_option("--dropout", ta.dropout, "Dropout rate of the architecture's dropout (catsdogs: off by default)");
  train->add_option("--seed", ta.seed)->capture_default_str();
  train->add_option("--limit", ta.limit, "Fashion-MNIST: use only the first N training pictures");
  train->add_option("--test-limit", ta.test_limit, "Fashion-MNIST: use only the first N test pictures");
  train->add_option("--model", ta.model_out, "Where to write the model")->capture_default_str();
  train->add_option("--plot", ta.plot, "Loss/accuracy plot (empty: none)")->capture_default_str();
  train->add_option("--title", ta.title, "Title of the plot and the history (default: architecture, data, "
                                         "augmentation)");
  train->add_option("--history", ta.history, "Per-epoch history and metrics (empty: none)")->capture_default_str();
  train->add_option("--checkpoint", ta.checkpoint, "Keep the best model by validation loss, or the last")
      ->capture_default_str();
  add_augment(train, ta.augment);
  add_engine(train, ta.engine);
  nat::TransferTrainArgs xa;
  nat::add_transfer_train_options(train, xa);

  nat::EvaluateArgs ea;
  auto* evaluate = app.add_subcommand("evaluate", "Score a model on Fashion-MNIST or a folder of pictures");
  evaluate->add_option("--model", ea.model, "Model file")->required();
  evaluate->add_option("--dataset", ea.dataset)->capture_default_str();
  evaluate->add_option("--data-dir", ea.data_dir)->capture_default_str();
  evaluate->add_option("--limit", ea.limit, "Fashion-MNIST: use only the first N pictures");
  evaluate->add_flag("--json", ea.json, "Print one JSON object");
  add_engine(evaluate, ea.engine);

  nat::ClassifyArgs ca;
  auto* classify = app.add_subcommand("classify", "Classify pictures with a trained model");
  classify->add_option("--model", ca.model, "Model file")->required();
  classify->add_option("--image", ca.images, "Picture files or folders")->required();
  classify->add_option("--top", ca.top, "Labels drawn on the annotated picture")->capture_default_str();
  classify->add_option("--threshold", ca.threshold, "Multi-label decision threshold")->capture_default_str();
  classify->add_option("--output", ca.output, "Annotated picture (PNG), or a folder for several");
  classify->add_flag("--json", ca.json, "Print JSON");
  add_engine(classify, ca.engine);

  nat::PreviewArgs pa;
  auto* preview = app.add_subcommand("preview", "A montage of dataset pictures and augmented versions of one");
  preview->add_option("--dataset", pa.dataset, "Folder dataset")->required();
  preview->add_option("--out", pa.out)->capture_default_str();
  preview->add_option("--labels", pa.labels)->capture_default_str();
  preview->add_option("--count", pa.count, "Dataset pictures shown")->capture_default_str();
  preview->add_option("--augmented", pa.augmented, "Augmented versions shown")->capture_default_str();
  preview->add_option("--size", pa.size)->capture_default_str();
  preview->add_option("--seed", pa.seed)->capture_default_str();
  add_augment(preview, pa.augment);

  nat::MakeDatasetArgs ma;
  auto* make = app.add_subcommand("make-dataset", "Write a tutorial-shaped dataset from Fashion-MNIST");
  make->add_option("kind", ma.kind,
                   "fashion-color, or two Fashion-MNIST classes for the overfitting experiment: pullover-coat, "
                   "tshirt-shirt, ... (tshirt trouser pullover dress coat sandal shirt sneaker bag boot)")
      ->required();
  make->add_option("out", ma.out, "Output folder")->required();
  make->add_option("--data-dir", ma.data_dir)->capture_default_str();
  make->add_option("--seed", ma.seed)->capture_default_str();
  make->add_option("--per-class", ma.per_class, "fashion-color: pictures per folder")->capture_default_str();
  make->add_flag("--overwrite", ma.overwrite, "Replace an existing output folder");

  std::string model_path, arch = "fashionnet", head = "softmax";
  int outputs = 10;
  auto* summary = app.add_subcommand("summary", "Print a model's layers and parameter counts");
  auto* sm = summary->add_option("--model", model_path, "Model file");
  summary->add_option("--arch", arch, "Built-in architecture")->excludes(sm)->capture_default_str();
  summary->add_option("--outputs", outputs)->capture_default_str();
  summary->add_option("--head", head, "softmax, sigmoid or logit")->capture_default_str();

  tn::BenchOptions bo;
  bool no_layers = false, json = false;
  nat::EngineArgs be;
  auto* bench = app.add_subcommand("bench", "Measure training and inference speed");
  bench->add_flag("--json", json, "Print one JSON object");
  bench->add_option("--seconds", bo.seconds_per_figure, "Time budget per figure")->capture_default_str();
  bench->add_flag("--no-layers", no_layers, "Skip the per-layer table");
  add_engine(bench, be);

  nat::ServeArgs sa;
  auto* serve = nat::add_serve_command(app, sa);

  // features, finetune and replace-head run from their own callbacks during parsing.
  int transfer_exit = 0;
  nat::add_transfer_commands(app, transfer_exit);

  CLI11_PARSE(app, argc, argv);
  try {
    if (*train) {
      if (!xa.features.empty()) return nat::cmd_train_features(ta, xa);
      if (ta.dataset == "fashion-mnist-2x2" || (ta.dataset == "fashion-mnist" && !xa.base.empty()))
        return nat::cmd_train_transfer(ta, xa);
      return nat::cmd_train(ta, xa);
    }
    if (*serve) return nat::cmd_serve(sa.root, sa.host, sa.port);
    if (*evaluate) return nat::cmd_evaluate(ea);
    if (*classify) return nat::cmd_classify(ca);
    if (*preview) return nat::cmd_preview(pa);
    if (*make) return nat::cmd_make_dataset(ma);
    if (*summary) return cmd_summary(model_path, arch, outputs, head);
    if (*bench) {
      bo.per_layer = !no_layers;
      tn::Engine engine(tn::Engine::Options{be.threads, be.backend});
      const nlohmann::json r = tn::run_bench(engine, bo);
      if (json) std::cout << r.dump() << "\n";
      else print_bench(r);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tagnet: error: %s\n", e.what());
    return 1;
  }
  return transfer_exit;
}
