// `tagnet teach`: the page's Teach on the command line. A trained model learns the labels of a
// folder's subfolders from a few pictures each (tagnet/train/teach.h: cached features of the frozen
// base, the new outputs trained on them), keeps its own labels, and reports held-out accuracy.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <set>

#include "commands.h"
#include "folder_dataset.h"
#include "tagnet/app/classifier.h"
#include "tagnet/train/teach.h"

namespace tagnet::native {

namespace {

struct TeachArgs {
  std::string model, dataset, out, test;
  std::string labels = "single";
  bool json = false;
  TeachOptions options;
  EngineArgs engine;
};

struct Pictures {
  std::vector<Image> images;
  std::vector<std::vector<std::string>> labels;
  std::set<std::string> names;
};

// Every readable picture of every subfolder of `dir`, with the labels its folder stands for.
Pictures read_folder(const std::string& dir, LabelMode mode) {
  Pictures p;
  for (const std::string& name : folder_label_names(dir, mode)) p.names.insert(name);
  std::vector<std::string> folders;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_directory()) folders.push_back(e.path().filename().string());
  std::sort(folders.begin(), folders.end());
  for (const std::string& folder : folders)
    for (const std::string& file : list_pictures(dir + "/" + folder)) {
      try {
        p.images.push_back(load_image(file));
        p.labels.push_back(folder_labels(folder, mode));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tagnet: skipping %s\n", e.what());
      }
    }
  if (p.images.empty()) throw std::runtime_error(dir + ": no readable pictures");
  return p;
}

std::string fraction(int right, int total) {
  char b[64];
  std::snprintf(b, sizeof b, "%d/%d (%.1f%%)", right, total, total ? 100.0 * right / total : 0.0);
  return b;
}

int teach_command(const TeachArgs& a) {
  const LabelMode mode = label_mode_from_name(a.labels);
  require_writable(a.out);
  Model model = Model::load(a.model);
  const Pictures pics = read_folder(a.dataset, mode);
  const Pictures test = a.test.empty() ? Pictures{} : read_folder(a.test, mode);
  const std::vector<std::string> taught(pics.names.begin(), pics.names.end());
  const auto engine = make_engine(a.engine, !a.json);
  const Context ctx{engine.get(), false, nullptr, 0};

  Teacher teacher(model, taught, mode == LabelMode::kSingle, a.options, ctx);
  for (size_t i = 0; i < pics.images.size(); ++i) teacher.add(pics.images[i], pics.labels[i]);
  while (teacher.step()) {
  }
  Classifier taught_model(teacher.result(), a.out);
  taught_model.save(a.out);
  const TeachReport& r = teacher.report();
  nlohmann::json out = r.to_json();

  // The test folder's pictures through the taught model: the taught label scored highest
  // (one per picture), or each taught label's probability against 0.5.
  if (!a.test.empty()) {
    const auto& labels = taught_model.card().labels;
    std::vector<int> column;
    for (const auto& l : taught)
      column.push_back(int(std::find(labels.begin(), labels.end(), l) - labels.begin()));
    nlohmann::json per = nlohmann::json::object();
    int right = 0, total = 0;
    // In batches, as `classify` would run a folder.
    std::vector<std::vector<float>> all;
    for (size_t i = 0; i < test.images.size(); i += 32) {
      const std::vector<Image> batch(test.images.begin() + long(i),
                                     test.images.begin() + long(std::min(test.images.size(), i + 32)));
      for (auto& answer : taught_model.classify(batch, ctx)) all.push_back(std::move(answer.probabilities));
    }
    for (size_t i = 0; i < test.images.size(); ++i) {
      const auto& probs = all[i];
      for (size_t l = 0; l < taught.size(); ++l) {
        const bool truth = std::find(test.labels[i].begin(), test.labels[i].end(), taught[l]) != test.labels[i].end();
        bool ok;
        if (mode == LabelMode::kSingle) {
          if (!truth) continue;
          size_t best = 0;
          for (size_t k = 1; k < taught.size(); ++k)
            if (probs[size_t(column[k])] > probs[size_t(column[best])]) best = k;
          ok = best == l;
        } else {
          ok = (probs[size_t(column[l])] > 0.5f) == truth;
        }
        auto& entry = per[taught[l]];
        if (entry.is_null()) entry = {{"right", 0}, {"total", 0}};
        entry["right"] = entry["right"].get<int>() + int(ok);
        entry["total"] = entry["total"].get<int>() + 1;
        right += ok, ++total;
      }
    }
    out["test"] = {{"labels", per}, {"right", right}, {"total", total}};
  }

  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("taught %s to %s in %.2f s (features %.2f s, training %.2f s), %zu parameters trained\n",
              join(taught).c_str(), a.model.c_str(), r.feature_seconds + r.train_seconds, r.feature_seconds,
              r.train_seconds, r.trained_params);
  for (const auto& l : r.labels)
    std::printf("  %-16s %3d pictures, held out: %s\n", l.name.c_str(), l.pictures,
                l.held_out ? fraction(l.right, l.held_out).c_str() : "none");
  if (r.held_out) std::printf("held-out accuracy %s, guessing %.1f%%\n", fraction(r.right, r.held_out).c_str(), 100 * r.chance);
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
  if (out.contains("test")) {
    const auto& t = out["test"];
    for (const auto& [name, e] : t["labels"].items())
      std::printf("  test %-11s %s\n", name.c_str(), fraction(e["right"], e["total"]).c_str());
    std::printf("test accuracy %s\n", fraction(t["right"], t["total"]).c_str());
  }
  std::printf("wrote %s (labels: %s)\n", a.out.c_str(),
              join(taught_model.card().labels).c_str());
  return 0;
}

}  // namespace

Command add_teach(CLI::App& app) {
  auto a = std::make_shared<TeachArgs>();
  auto* c = app.add_subcommand("teach", "Teach a trained model the labels of a folder from a few pictures each, keeping its own");
  c->add_option("--model", a->model, "The model to teach")->required()->check(CLI::ExistingFile);
  c->add_option("--dataset", a->dataset, "A folder of labelled subfolders (10 to 20 pictures each)")->required();
  c->add_option("--out", a->out, "Where the taught model goes")->required();
  c->add_option("--labels", a->labels, "single: one label per folder; multi: folder names split on _")
      ->check(CLI::IsMember({"single", "multi"}))
      ->capture_default_str();
  c->add_option("--test", a->test, "Score the taught model on this folder's pictures too");
  c->add_option("--copies", a->options.copies, "Augmented copies of each picture")->check(CLI::Range(0, 64))->capture_default_str();
  c->add_option("--steps", a->options.steps, "Optimizer steps over the cached features")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--lr", a->options.lr, "Adam's learning rate")->check(positive())->capture_default_str();
  c->add_option("--held-out", a->options.held_out, "Share of each label's pictures kept aside for the score")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  c->add_option("--seed", a->options.seed)->capture_default_str();
  c->add_flag("--json", a->json, "Print the report as JSON");
  add_engine_options(c, a->engine);
  return {c, [a] { return teach_command(*a); }};
}

}  // namespace tagnet::native
