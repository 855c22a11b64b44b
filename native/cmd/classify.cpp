// `tagnet classify`: every label's probability for each picture, the predicted labels, a note
// for label sets never seen together in training, and annotated copies.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <set>

#include "commands.h"
#include "draw.h"
#include "folder_dataset.h"
#include "tagnet/app/classifier.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

struct ClassifyArgs {
  std::string model;
  std::vector<std::string> images;   // files or folders
  int top = 2;
  std::optional<double> threshold;   // none: the model's own
  std::string output;                // annotated picture (one input) or folder (several)
  bool json = false;
  EngineArgs engine;
};

std::string percent(float p) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", p * 100.f);
  return b;
}

int classify_command(const ClassifyArgs& a) {
  const auto engine = make_engine(a.engine);
  const Context ctx{engine.get(), false, nullptr, 0};
  Classifier classifier = Classifier::open(a.model);
  if (classifier.card().labels.empty()) throw std::runtime_error(a.model + ": the model file has no label names");
  classifier.check_takes_pictures();
  const std::vector<std::string> labels = classifier.labels();
  const Head head = classifier.head();

  std::vector<std::string> files;
  for (auto& p : a.images) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      auto pics = list_pictures(p);
      if (pics.empty()) throw std::runtime_error(p + ": no pictures in this folder");
      files.insert(files.end(), pics.begin(), pics.end());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) throw std::invalid_argument("no pictures given (--image FILE or FOLDER)");
  const bool out_dir = !a.output.empty() && files.size() > 1;
  if (out_dir) fs::create_directories(a.output);

  nlohmann::json all = nlohmann::json::array();
  int failures = 0;
  for (const auto& file : files) {
    Image img;
    try {
      img = load_image(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tagnet: error: %s\n", e.what());
      ++failures;
      continue;
    }
    const Answer answer = std::move(classifier.classify({img}, ctx, a.threshold)[0]);
    const std::vector<float>& probs = answer.probabilities;
    const std::vector<size_t>& order = answer.ranking;
    const bool unseen = answer.unseen_combination, unfamiliar = answer.unfamiliar();
    std::vector<std::string> predicted, sorted_pred;
    for (size_t i : answer.predicted) predicted.push_back(labels[i]);
    sorted_pred = predicted;
    std::sort(sorted_pred.begin(), sorted_pred.end());
    nlohmann::json j = {{"image", file}, {"predicted", predicted}};
    for (size_t i : order) j["probabilities"][labels[i]] = probs[i];
    if (head == Head::kSigmoid) j["unseen_combination"] = unseen;
    if (answer.novelty >= 0) {
      j["novelty"] = answer.novelty;
      j["unfamiliar"] = unfamiliar;
    }
    if (!a.json) {
      std::printf("%s\n", file.c_str());
      for (size_t i : order) {
        const bool mark = std::find(answer.predicted.begin(), answer.predicted.end(), i) != answer.predicted.end();
        std::printf("  %s %s: %s\n", mark ? "*" : " ", labels[i].c_str(), percent(probs[i]).c_str());
      }
      if (unseen) {
        std::string combo;
        for (auto& l : sorted_pred) combo += (combo.empty() ? "" : ", ") + l;
        if (sorted_pred.size() == 1)
          std::printf("  note: the label %s alone never occurred in training\n", combo.c_str());
        else
          std::printf("  note: the combination {%s} never occurred together in training\n", combo.c_str());
      }
      if (unfamiliar)
        std::printf("  note: this looks unlike the pictures this model learnt from (novelty %.1f); the labels are guesses\n",
                    answer.novelty);
    }
    if (!a.output.empty()) {
      std::vector<std::string> lines;
      for (size_t k = 0; k < order.size() && static_cast<int>(k) < a.top; ++k)
        lines.push_back(labels[order[k]] + ": " + percent(probs[order[k]]));
      if (unseen) lines.push_back("(never seen together in training)");
      if (unfamiliar) lines.push_back("(unlike the training pictures)");
      const std::string out =
          out_dir ? (fs::path(a.output) / (fs::path(file).stem().string() + ".png")).string() : a.output;
      save_png(out, annotate_image(img, lines));
      j["annotated"] = out;
    }
    all.push_back(j);
  }
  if (a.json) std::cout << (files.size() == 1 && !all.empty() ? all[0] : all).dump() << "\n";
  return failures ? 1 : 0;
}

}  // namespace

Command add_classify(CLI::App& app) {
  auto a = std::make_shared<ClassifyArgs>();
  auto* c = app.add_subcommand("classify", "Classify pictures with a trained model");
  c->add_option("--model", a->model, "Model file")->required();
  c->add_option("--image", a->images, "Picture files or folders")->required();
  c->add_option("--top", a->top, "Labels drawn on the annotated picture")->capture_default_str()->check(at_least(0));
  c->add_option("--threshold", a->threshold,
                "Multi-label decision threshold for every label (default: the model's own, 0.5 unless calibrated)")
      ->check(between(0, 1));
  c->add_option("--output", a->output, "Annotated picture (PNG), or a folder for several");
  c->add_flag("--json", a->json, "Print JSON");
  add_engine_options(c, a->engine);
  return {c, [a] { return classify_command(*a); }};
}

}  // namespace tagnet::native
