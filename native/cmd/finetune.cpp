// `tagnet finetune`: join a convolutional base and a top model trained on its features, then
// fine-tune the last block with a small learning rate (the bottleneck tutorial's second step).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "folder_dataset.h"
#include "tagnet/train/features.h"
#include "tagnet/train/finetune.h"
#include "distributed.h"
#include "training.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

struct FinetuneArgs {
  std::string base, top, dataset, val_dataset, model_out = "finetuned.tagnet", history;
  std::string unfreeze = "last-block";   // none, last-block, all, or a layer index
  float lr = 1e-4f, momentum = 0.9f, val_split = 0.2f;
  int epochs = 10, batch = 16;
  uint64_t seed = 42;
  bool sync_batchnorm = false;
  std::string bn_statistics = "population";
  AugmentArgs augment;
  EngineArgs engine;
};

int finetune_command(const FinetuneArgs& a) {
  require_writable(a.model_out);
  if (!a.history.empty()) require_writable(a.history);
  if (a.epochs < 0) throw std::invalid_argument("--epochs must not be negative");
  Model backbone = Model::load(a.base);
  Model top = Model::load(a.top);
  const ModelCard& tcard = top.card();
  const std::vector<std::string> labels = tcard.labels;
  if (labels.empty()) throw std::runtime_error(a.top + ": the top model has no label names");
  const nlohmann::json want = tcard.provenance.base.is_object() ? tcard.provenance.base : nlohmann::json::object();
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
  const LabelMode lm = tcard.mode(head);
  ModelCard& card = model.card();
  card.input.clear();
  card.preprocessing = backbone.card().preprocessing.value_or(Preprocessing::for_channels(int(backbone.input_shape()[2])));

  // Checked before the pictures are loaded, so a typo fails fast.
  const size_t from = set_trainable(model, a.unfreeze, n, "--unfreeze");
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
  TrainOptions to;
  to.epochs = a.epochs;
  to.batch_size = a.batch;
  to.seed = a.seed;
  to.augment = !a.augment.off;
  to.sync_batchnorm = a.sync_batchnorm;
  to.batchnorm_examples = batchnorm_examples_from_name(a.bn_statistics);
  card.provenance.training = {{"epochs", a.epochs}, {"batch_size", a.batch}, {"optimizer", "SGD"}, {"lr", a.lr},
                              {"momentum", a.momentum}, {"seed", a.seed}, {"augment", to.augment},
                              {"unfreeze", a.unfreeze}, {"first_trainable_layer", from},
                              {"bn_statistics", a.bn_statistics}, {"base", fs::absolute(a.base).string()},
                              {"top", fs::absolute(a.top).string()}, {"date", utc_now()}};
  card.provenance.data = {{"dataset", fs::absolute(a.dataset).string()}, {"label_mode", label_mode_name(lm)}};
  Trainer trainer(model, *train, sgd, loss_for(head), to, ctx);
  trainer.set_validation(val.get());
  RunOptions ro;
  ro.model_out = a.model_out;
  const RunResult run = run_training(trainer, model, head, ro);
  if (!leads()) return 0;   // rank 0 reports and writes the files
  const Scores after = score(model, *val, head, labels, ctx);
  card.history = run.history_json;
  card.metrics = after.json;
  card.metrics_before_finetuning = before.json;
  model.save(a.model_out);
  write_history(a.history, "Fine-tuned " + a.unfreeze + " of " + fs::path(a.base).filename().string(), model,
                {{"metrics_before_finetuning", before.json}});
  std::printf("\nvalidation metrics after fine-tuning (%zu pictures):\n%s", val->size(), after.table.c_str());
  const char* what = head == Head::kSigmoid ? "exact match" : "accuracy";
  std::printf("%s: top model alone %.4f, fine-tuned %.4f (%+.2f points, %zu epochs in %.0f s)\n", what,
              before.headline, after.headline, 100 * (after.headline - before.headline), run.history.size(), run.seconds);
  std::printf("saved %s\n", a.model_out.c_str());
  return 0;
}

}  // namespace

Command add_finetune(CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  auto* c = app.add_subcommand("finetune", "Join a base and a top model trained on its features and fine-tune "
                                                  "the last block with a small learning rate");
  c->add_option("--base", a->base, "The network the features came from")->required();
  c->add_option("--top", a->top, "The top model from `tagnet train --features`")->required();
  c->add_option("--dataset", a->dataset, "Training pictures (class subfolders)")->required();
  c->add_option("--val-dataset", a->val_dataset, "Validation pictures (default: --val-split of --dataset)");
  c->add_option("--val-split", a->val_split)->capture_default_str();
  c->add_option("--unfreeze", a->unfreeze, "none, last-block, all, or the first trainable layer")
      ->capture_default_str();
  c->add_option("--lr", a->lr, "SGD learning rate")->capture_default_str()->check(positive());
  c->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  c->add_option("--epochs", a->epochs)->capture_default_str();
  c->add_option("--batch-size", a->batch)->capture_default_str()->check(at_least(1));
  c->add_option("--seed", a->seed)->capture_default_str();
  c->add_option("--model", a->model_out, "Where to write the fine-tuned model")->capture_default_str();
  c->add_option("--history", a->history, "Per-epoch history and metrics (JSON)");
  add_augment_options(c, a->augment);
  add_engine_options(c, a->engine);
  add_bn_statistics_option(c, a->bn_statistics);
  c->add_flag("--sync-batchnorm", a->sync_batchnorm,
              "Under mpirun: BatchNorm normalises with the whole batch's statistics, not each process's slice");
  return {c, [a] { return finetune_command(*a); }};
}

}  // namespace tagnet::native
