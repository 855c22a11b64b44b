// `tagnet train --features F`: the bottleneck tutorial's top model, Flatten -> Dense(hidden,
// relu) -> Dropout -> Dense(classes) softmax (sigmoid for multi-label features), trained with
// SGD and momentum on features cached by `tagnet features`.
#include <cstdio>
#include <filesystem>

#include "draw.h"
#include "tagnet/train/features.h"
#include "train.h"
#include "distributed.h"
#include "training.h"

namespace fs = std::filesystem;

namespace tagnet::native {

int train_top_model(const TrainArgs& a) {
  check_counts(a);
  for (const std::string* out : {&a.model_out, &a.plot, &a.history})
    if (out == &a.model_out || !out->empty()) require_writable(*out);
  FeatureSet all = FeatureSet::load(a.features);
  if (all.labels.empty()) throw std::runtime_error(a.features + ": the feature file has no label names");
  FeatureSet train, val;
  if (!a.val_features.empty()) {
    train = std::move(all);
    val = FeatureSet::load(a.val_features);
    if (val.feature_shape != train.feature_shape || val.labels != train.labels)
      throw std::invalid_argument(a.val_features + ": features " + val.feature_shape.str() + " for labels {" +
                                  join(val.labels) + "} do not match " + a.features + " (" +
                                  train.feature_shape.str() + ", {" + join(train.labels) + "})");
    const std::string fa = train.base.value("fingerprint", ""), fb = val.base.value("fingerprint", "");
    if (fa != fb)
      throw std::invalid_argument(a.val_features + " comes from another base than " + a.features +
                                  " (fingerprints " + fb + " and " + fa + ")");
  } else {
    std::vector<size_t> ti, vi;
    split_indices(all.size(), a.val_split, a.seed, ti, vi);
    train = all.subset(ti);
    val = all.subset(vi);
  }
  const Head head = train.head;
  const auto engine = make_engine(a.engine, true);
  const Context ctx{engine.get(), false, nullptr, 0};
  std::fprintf(stderr, "tagnet: %zu training and %zu validation examples of features %s; labels: %s\n",
               train.size(), val.size(), train.feature_shape.str().c_str(), join(train.labels).c_str());

  Model top = make_top_model(train.feature_shape, train.outputs(), head, a.hidden, a.top_dropout, a.seed);
  // --lr's default (1e-3) suits SGD here too: bottleneck features are large and share a strong
  // common component, and with momentum 0.9 a step of 1e-2 swings along it instead of learning
  // (pullover-vs-coat features of the FashionNet backbone stay at chance).
  const float decay = a.decay >= 0 ? a.decay : 0.f;
  const int epochs = a.epochs > 0 ? a.epochs : 50;
  SGD sgd(a.lr, a.momentum, false, decay);
  ModelCard& card = top.card();
  card.labels = train.labels;
  card.label_mode = label_mode_from_name(train.metadata.value("label_mode", label_mode_name(label_mode_of(head))));
  card.threshold = 0.5;
  card.input = "features";
  card.provenance.base = train.base;
  if (train.metadata.contains("preprocessing")) card.preprocessing = Preprocessing::from_json(train.metadata["preprocessing"]);
  card.provenance.data = {{"features", fs::absolute(a.features).string()},
                {"val_features", a.val_features.empty() ? "" : fs::absolute(a.val_features).string()}};
  card.provenance.training = {{"epochs", epochs}, {"batch_size", a.batch}, {"optimizer", "SGD"}, {"lr", a.lr},
                              {"momentum", a.momentum}, {"decay", decay}, {"seed", a.seed},
                              {"hidden", a.hidden}, {"dropout", a.top_dropout}, {"date", utc_now()}};
  std::printf("%s", top.summary().c_str());

  FeatureSource tsrc(train), vsrc(val);
  TrainOptions to;
  to.epochs = epochs;
  to.batch_size = a.batch;
  to.seed = a.seed;
  Trainer trainer(top, tsrc, sgd, loss_for(head), to, ctx);
  trainer.set_validation(val.size() ? &vsrc : nullptr);
  RunOptions ro;
  ro.checkpoint = Checkpoint::kNone;
  const RunResult run = run_training(trainer, top, head, ro);
  if (!leads()) return 0;   // rank 0 reports and writes the files

  Scores s;
  if (val.size()) {
    s = score(top, vsrc, head, train.labels, ctx);
    card.metrics = s.json;
    std::printf("\nvalidation metrics (%zu examples):\n%s", val.size(), s.table.c_str());
  }
  top.save(a.model_out);
  const std::string title = a.title.empty() ? "Top model on cached features" : a.title;
  write_history(a.history, title, top);
  if (!a.plot.empty() && !run.history.empty()) save_history_plot(a.plot, card.history, title);
  if (val.size())
    std::printf("top model: validation %s %.4f after %zu epochs in %.1f s\n",
                head == Head::kSigmoid ? "exact match" : "accuracy", s.headline, run.history.size(), run.seconds);
  std::printf("saved %s\n", a.model_out.c_str());
  return 0;
}

}  // namespace tagnet::native
