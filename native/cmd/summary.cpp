// `tagnet summary`: a model's layers and parameter counts, like Keras' model.summary().
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.h"
#include "tagnet/nn/architectures.h"
#include "tagnet/nn/model.h"

namespace tagnet::native {

Command add_summary(CLI::App& app) {
  struct Args {
    std::string model, arch = "fashionnet", head = "softmax";
    int outputs = 10;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("summary", "Print a model's layers and parameter counts");
  auto* model = c->add_option("--model", a->model, "Model file");
  c->add_option("--arch", a->arch, "Built-in architecture")->excludes(model)->capture_default_str();
  c->add_option("--outputs", a->outputs)->capture_default_str();
  c->add_option("--head", a->head, "softmax, sigmoid or logit")->capture_default_str();
  return {c, [a] {
            if (!a->model.empty()) {
              std::cout << Model::load(a->model).summary();
              return 0;
            }
            Model m = make_architecture(a->arch, {a->outputs, head_from_name(a->head), {}, -1});
            m.build(0);
            std::cout << m.summary();
            return 0;
          }};
}

}  // namespace tagnet::native
