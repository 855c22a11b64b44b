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
#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/novelty.h"

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

struct ClassifyArgs {
  std::string model;
  std::vector<std::string> images;   // files or folders
  int top = 2;
  float threshold = 0.5f;
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
  Model model = Model::load(a.model);
  const std::vector<std::string> labels = model.card().labels;
  if (labels.empty()) throw std::runtime_error(a.model + ": the model file has no label names");
  const Head head = model_head(model);
  const std::set<std::vector<std::string>> seen = model.card().combinations.value_or(std::set<std::vector<std::string>>{});

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
    std::vector<float> novelty;
    const std::vector<float> probs = classify_images(model, {img}, ctx, &novelty)[0];
    const bool unfamiliar = novelty[0] > 1;
    std::vector<size_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return probs[x] > probs[y]; });
    std::vector<std::string> predicted;
    if (head == Head::kSigmoid) {
      for (size_t i : order)
        if (probs[i] > a.threshold) predicted.push_back(labels[i]);
    } else {
      predicted.push_back(labels[order[0]]);
    }
    std::vector<std::string> sorted_pred = predicted;
    std::sort(sorted_pred.begin(), sorted_pred.end());
    const bool unseen = head == Head::kSigmoid && !seen.empty() && !predicted.empty() && !seen.count(sorted_pred);
    nlohmann::json j = {{"image", file}, {"predicted", predicted}};
    for (size_t i : order) j["probabilities"][labels[i]] = probs[i];
    if (head == Head::kSigmoid) j["unseen_combination"] = unseen;
    if (novelty[0] >= 0) {
      j["novelty"] = novelty[0];
      j["unfamiliar"] = unfamiliar;
    }
    if (!a.json) {
      std::printf("%s\n", file.c_str());
      for (size_t i : order) {
        const bool mark = head == Head::kSigmoid ? probs[i] > a.threshold : i == order[0];
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
                    novelty[0]);
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
  c->add_option("--threshold", a->threshold, "Multi-label decision threshold")
      ->capture_default_str()
      ->check(between(0, 1));
  c->add_option("--output", a->output, "Annotated picture (PNG), or a folder for several");
  c->add_flag("--json", a->json, "Print JSON");
  add_engine_options(c, a->engine);
  return {c, [a] { return classify_command(*a); }};
}

}  // namespace tagnet::native
