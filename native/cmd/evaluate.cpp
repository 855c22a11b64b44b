// `tagnet evaluate`: a model's report on Fashion-MNIST's test set or a folder of pictures.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "fashion_mnist.h"
#include "folder_dataset.h"
#include "tagnet/app/classifier.h"

namespace tagnet::native {

namespace {

struct EvaluateArgs {
  std::string model, dataset = "fashion-mnist", data_dir = kFashionMnistDir;
  size_t limit = 0;
  bool json = false;
  EngineArgs engine;
};

int evaluate_command(const EvaluateArgs& a) {
  const auto engine = make_engine(a.engine);
  const Context ctx{engine.get(), false, nullptr, 0};
  Classifier c = Classifier::open(a.model);
  const Model& model = c.model();
  const Head head = c.head();
  std::vector<std::string>& labels = c.card().labels;
  std::unique_ptr<BatchSource> data;
  if (a.dataset == "fashion-mnist") {
    if (model.input_shape() != Shape{56, 56, 1})
      throw std::invalid_argument(a.model + ": expects input " + model.input_shape().str() +
                                  ", fashion-mnist gives (56, 56, 1)");
    data = std::make_unique<FashionMnistQuadrants>(a.data_dir, "test", 1, a.limit);
    if (labels.empty()) labels = kFashionMnistClasses;
  } else {
    if (labels.empty()) throw std::runtime_error(a.model + ": the model file has no label names");
    FolderOptions fo = folder_options(c.mode(),
                                      model.input_shape(), a.engine.threads);
    fo.fixed_labels = &labels;
    fo.fixed_head = head;
    auto ds = std::make_unique<FolderDataset>(load_folder_dataset(a.dataset, fo));
    data = std::make_unique<ImageSet>(std::move(ds->pictures));
  }
  const Scores s = c.evaluate(*data, ctx);
  nlohmann::json j = s.json;
  j["model"] = a.model;
  j["dataset"] = a.dataset;
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (head == Head::kSigmoid) {
    std::printf("%s", s.table.c_str());
  } else {
    std::printf("accuracy: %.4f\nloss: %.4f\nexamples: %zu\n", j["accuracy"].get<double>(), j["loss"].get<double>(),
                j["examples"].get<size_t>());
  }
  return 0;
}

}  // namespace

Command add_evaluate(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  auto* c = app.add_subcommand("evaluate", "Score a model on Fashion-MNIST or a folder of pictures");
  c->add_option("--model", a->model, "Model file")->required();
  c->add_option("--dataset", a->dataset)->capture_default_str();
  c->add_option("--data-dir", a->data_dir)->capture_default_str();
  c->add_option("--limit", a->limit, "Fashion-MNIST: use only the first N pictures");
  c->add_flag("--json", a->json, "Print one JSON object");
  add_engine_options(c, a->engine);
  return {c, [a] { return evaluate_command(*a); }};
}

}  // namespace tagnet::native
