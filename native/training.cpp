#include "training.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "cli.h"
#include "progress.h"

namespace tagnet::native {

namespace {

std::atomic<bool> g_stop{false};

void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);   // a second Ctrl-C quits at once
}

}  // namespace

Checkpoint checkpoint_from_name(const std::string& name) {
  if (name == "best") return Checkpoint::kBest;
  if (name == "last") return Checkpoint::kLast;
  throw std::invalid_argument("--checkpoint must be best or last, not '" + name + "'");
}

RunResult run_training(Trainer& trainer, Model& model, Head head, const RunOptions& o) {
  ProgressPrinter printer(stdout, head == Head::kSoftmax ? "accuracy" : "binary_accuracy");
  RunResult r;
  const auto t0 = std::chrono::steady_clock::now();
  auto record = [&] {
    r.history = trainer.history();
    r.history_json = continued_history(o.earlier, history_json(r.history));
    model.metadata()["history"] = r.history_json;
  };
  Trainer::Callbacks cb;
  cb.on_progress = [&](const Progress& p) { printer(p); };
  cb.checkpoint = o.model_out.empty() ? Checkpoint::kNone : o.checkpoint;
  size_t saved_epochs = 0;
  int saved_epoch = 0;
  cb.on_checkpoint = [&](const Progress& p) {
    ++saved_epochs;
    saved_epoch = p.epoch;
    record();
    // A best checkpoint is saved without the optimizer: its state belongs to the last epoch.
    model.save(o.model_out, o.checkpoint == Checkpoint::kLast ? o.save_optimizer : nullptr);
  };
  g_stop = false;
  cb.stop = &g_stop;
  const auto previous = std::signal(SIGINT, on_sigint);
  try {
    trainer.run(cb);
  } catch (const NonFiniteLoss& e) {
    std::signal(SIGINT, previous);
    std::string kept = "nothing was saved";
    if (cb.checkpoint != Checkpoint::kNone && saved_epochs > 0)
      kept = o.model_out + " keeps epoch " + std::to_string(saved_epoch);
    throw std::runtime_error(std::string("training stopped ") + e.what() + "; " + kept + " (a lower --lr may help)");
  }
  std::signal(SIGINT, previous);
  record();
  r.stopped = g_stop;
  r.best_saved = trainer.saved_best() && o.checkpoint == Checkpoint::kBest && !o.model_out.empty();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.stopped) std::fprintf(stderr, "tagnet: stopped after %zu complete epochs\n", r.history.size());
  return r;
}

void write_history(const std::string& path, const std::string& title, const Model& model,
                   const nlohmann::json& extra) {
  if (path.empty()) return;
  const auto& md = model.metadata();
  nlohmann::json h = {{"title", title},
                      {"history", md.value("history", nlohmann::json::array())},
                      {"metrics", md.value("metrics", nlohmann::json())},
                      {"training", md.value("training", nlohmann::json::object())},
                      {"labels", md.value("labels", nlohmann::json::array())}};
  h.update(extra);
  write_text(path, h.dump(2) + "\n");
}

std::string trainable_summary(const Model& m, size_t from) {
  char b[256];
  std::snprintf(b, sizeof b, "training layers %zu-%zu (%s ... %s): %zu of %zu parameters", from, m.num_layers() - 1,
                m.layer(from).name.c_str(), m.layer(m.num_layers() - 1).name.c_str(), m.trainable_param_count(),
                m.param_count());
  return b;
}

}  // namespace tagnet::native
