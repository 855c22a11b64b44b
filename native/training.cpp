#include "training.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "cli.h"
#include "distributed.h"
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
    model.card().history = r.history_json;
  };
  Trainer::Callbacks cb;
  cb.checkpoint = o.model_out.empty() ? Checkpoint::kNone : o.checkpoint;
  size_t saved_epochs = 0;
  int saved_epoch = 0;
  cb.on_checkpoint = [&](const Progress& p) {
    ++saved_epochs;
    saved_epoch = p.epoch;
    record();
    // The optimizer's state goes with the weights of the same epoch, so that a run can go on
    // from a best checkpoint too.
    if (leads()) model.save(o.model_out, o.save_optimizer);
  };
  // Under mpirun, each process trains its slice of every batch; mpirun answers Ctrl-C with
  // SIGTERM to every process, which then stop after the same batch.
  trainer.set_collective(processes());
  // Training images per second, over the steps but the first (which warms the caches up) and
  // the epochs' last (which validate).
  size_t images = 0;
  double busy = 0;
  auto last = std::chrono::steady_clock::now();
  cb.on_progress = [&](const Progress& p) {
    printer(p);
    const auto now = std::chrono::steady_clock::now();
    if (!p.epoch_end && !(p.epoch == 1 && p.step == 1)) {
      busy += std::chrono::duration<double>(now - last).count();
      images += p.batch_examples;
    }
    last = now;
  };
  g_stop = false;
  cb.stop = &g_stop;
  const auto previous = std::signal(SIGINT, on_sigint);
  const auto previous_term = processes() ? std::signal(SIGTERM, on_sigint) : SIG_DFL;
  auto restore = [&] {
    std::signal(SIGINT, previous);
    if (processes()) std::signal(SIGTERM, previous_term);
  };
  try {
    trainer.run(cb);
  } catch (const NonFiniteLoss& e) {
    restore();
    std::string kept = "nothing was saved";
    if (cb.checkpoint != Checkpoint::kNone && saved_epochs > 0)
      kept = o.model_out + " keeps epoch " + std::to_string(saved_epoch);
    throw std::runtime_error(std::string("training stopped ") + e.what() + "; " + kept + " (a lower --lr may help)");
  }
  restore();
  record();
  r.stopped = g_stop || !trainer.done();   // together: another process was stopped
  r.best_saved = trainer.saved_best() && o.checkpoint == Checkpoint::kBest && !o.model_out.empty();
  r.saved_epoch = saved_epochs > 0 ? saved_epoch : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.stopped) std::fprintf(stderr, "tagnet: stopped after %zu complete epochs\n", r.history.size());
  if (Collective* c = processes()) {
    const AllreduceStats a = allreduce_stats();
    std::fprintf(stderr, "tagnet: %d process%s: %.1f training images/s", c->size(), c->size() > 1 ? "es" : "",
                 busy > 0 ? double(images) / busy : 0.);
    if (a.steps > 0)
      std::fprintf(stderr, "; allreduce of %.1f MB in %zu bucket%s: %.1f ms per step, %.1f ms of it hidden behind backward",
                   double(a.bytes) / 1e6, a.buckets, a.buckets == 1 ? "" : "s", 1e3 * a.seconds / double(a.steps),
                   1e3 * std::max(0., a.seconds - a.exposed_seconds) / double(a.steps));
    std::fprintf(stderr, "\n");
  }
  return r;
}

void write_history(const std::string& path, const std::string& title, const Model& model,
                   const nlohmann::json& extra) {
  if (path.empty()) return;
  const ModelCard& card = model.card();
  nlohmann::json h = {{"title", title},
                      {"history", card.history.is_null() ? nlohmann::json::array() : card.history},
                      {"metrics", card.metrics},
                      {"training", card.provenance.training.is_null() ? nlohmann::json::object() : card.provenance.training},
                      {"labels", card.labels}};
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
