// `tagnet replace-head`: cut a model at a layer, add a new Dense head for new labels and freeze
// the layers below.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "tagnet/train/finetune.h"
#include "tagnet/nn/model.h"

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
  Model m = Model::load(a.model);
  std::vector<std::string> labels = split_list(a.labels);
  const Head head = head_from_name(a.head);
  int outputs = labels.empty() ? a.outputs : static_cast<int>(labels.size());
  if (head == Head::kLogit) {
    if (!labels.empty() && labels.size() != 2) throw std::invalid_argument("a logit head needs two labels");
    outputs = 1;
  }
  if (outputs < 1) throw std::invalid_argument("give the new labels (--labels a,b,c) or --outputs N");
  const size_t cut = a.cut.empty() ? head_start(m) : find_layer(m, a.cut, "--cut") + 1;
  const size_t dense = cut_and_add_head(m, cut, outputs, head, a.seed, !a.no_freeze);
  ModelCard& card = m.card();
  card.labels = labels;
  card.label_mode = label_mode_of(head);
  card.forget_training_results();
  card.provenance.replaced_head = {{"from", fs::absolute(a.model).string()}, {"cut", cut}, {"frozen_below", a.no_freeze ? 0 : dense}};
  m.save(a.out);
  std::printf("%s", m.summary().c_str());
  std::printf("kept layers 0-%zu of %s, added a %s head with %d outputs%s; saved %s\n", cut - 1, a.model.c_str(),
              a.head.c_str(), outputs, a.no_freeze ? "" : ", layers below it frozen", a.out.c_str());
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
