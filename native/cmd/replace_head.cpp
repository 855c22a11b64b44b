// `tagnet replace-head`: cut a model at a layer, add a new Dense head for new labels and freeze
// the layers below.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "tagnet/app/classifier.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

struct ReplaceHeadArgs {
  std::string model, out, cut, labels, head = "sigmoid";
  int outputs = 0;              // when no label names are given
  bool no_freeze = false;
  uint64_t seed = 42;
};

int replace_head_command(const ReplaceHeadArgs& a) {
  require_writable(a.out);
  Classifier c = Classifier::open(a.model);
  NewLabels n;
  n.names = split_list(a.labels);
  n.head = head_from_name(a.head);
  n.outputs = a.outputs;
  if (n.names.empty() && a.outputs < 1 && n.head != Head::kLogit)
    throw std::invalid_argument("give the new labels (--labels a,b,c) or --outputs N");
  n.cut = a.cut.empty() ? kAtHead : find_layer(c.model(), a.cut, "--cut") + 1;
  n.freeze_base = !a.no_freeze;
  n.seed = a.seed;
  n.from = fs::absolute(a.model).string();
  c.give_new_labels(n);
  c.save(a.out);
  const Model& m = c.model();
  const size_t cut = c.card().provenance.replaced_head["cut"].get<size_t>();
  std::printf("%s", m.summary().c_str());
  std::printf("kept layers 0-%zu of %s, added a %s head with %zu outputs%s; saved %s\n", cut - 1, a.model.c_str(),
              a.head.c_str(), m.output_shape().numel(), a.no_freeze ? "" : ", layers below it frozen", a.out.c_str());
  return 0;
}

}  // namespace

Command add_replace_head(CLI::App& app) {
  auto a = std::make_shared<ReplaceHeadArgs>();
  auto* c = app.add_subcommand("replace-head", "Cut a model at a layer, add a new Dense head for new labels "
                                                     "and freeze the layers below");
  c->add_option("--model", a->model, "Model file")->required();
  c->add_option("--out", a->out, "Where to write the new model")->required();
  c->add_option("--cut", a->cut, "The last layer kept, by index or name (default: before the last Dense)");
  c->add_option("--labels", a->labels, "New label names, comma-separated");
  c->add_option("--outputs", a->outputs, "Number of outputs when no names are given");
  c->add_option("--head", a->head, "sigmoid (label sets), softmax (one class) or logit")->capture_default_str();
  c->add_flag("--no-freeze", a->no_freeze, "Keep the layers below the new head trainable");
  c->add_option("--seed", a->seed, "Initialisation of the new head")->capture_default_str();
  return {c, [a] { return replace_head_command(*a); }};
}

}  // namespace tagnet::native
