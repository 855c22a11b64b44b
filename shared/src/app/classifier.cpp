#include "tagnet/app/classifier.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "tagnet/nn/architectures.h"
#include "tagnet/train/novelty.h"

namespace tagnet {

Classifier::Classifier(Model model, std::string origin) : model_(std::move(model)), origin_(std::move(origin)) {
  if (model_.num_layers() == 0) throw ModelFileError(origin_ + ": the model has no layers");
}

Classifier Classifier::open(const std::string& path) { return Classifier(Model::load(path), path); }

Classifier Classifier::open(const uint8_t* data, size_t size, const std::string& origin) {
  return Classifier(Model::load_bytes(data, size, origin), origin);
}

Classifier Classifier::import_onnx(const uint8_t* data, size_t size, const std::string& origin,
                                   const OnnxImportOptions& options) {
  return Classifier(tagnet::import_onnx(data, size, origin, options), origin);
}

Classifier Classifier::create(const std::string& architecture, const std::vector<std::string>& labels, Head head,
                              uint64_t seed) {
  if (labels.empty()) throw std::invalid_argument("a new model needs labels");
  if (head == Head::kLogit && labels.size() != 2)
    throw std::invalid_argument("a logit head takes exactly 2 labels, not " + std::to_string(labels.size()));
  const int outputs = head == Head::kLogit ? 1 : int(labels.size());
  Model m = make_architecture(architecture, {outputs, head, {}, -1.f});
  m.build(seed);
  m.card().labels = labels;
  m.card().label_mode = label_mode_of(head);
  return Classifier(std::move(m), architecture);
}

Head Classifier::head() const { return model_head(model_); }

LabelMode Classifier::mode() const { return card().mode(head()); }

std::vector<std::string> Classifier::labels() const {
  const size_t outputs = model_.output_shape().numel();
  const size_t count = head() == Head::kLogit && outputs == 1 ? 2 : outputs;
  if (card().labels.size() == count) return card().labels;
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

void Classifier::check_takes_pictures() const {
  const Shape& in = model_.input_shape();
  if (in.rank() != 3 || (in[2] != 1 && in[2] != 3))
    throw ModelFileError(origin_ + ": input shape " + in.str() + " is not a picture (H, W, 1) or (H, W, 3)");
}

std::vector<Answer> Classifier::classify(const std::vector<Image>& pictures, const Context& ctx,
                                         std::optional<double> threshold) {
  check_takes_pictures();
  const auto probs = classify_images(model_, pictures, ctx);
  const std::vector<float> novelty = novelty_of_last_forward(model_, pictures.size());
  const Head h = head();
  const auto& seen = card().combinations;
  const std::vector<std::string> names = labels();
  std::vector<Answer> answers(pictures.size());
  for (size_t p = 0; p < pictures.size(); ++p) {
    Answer& a = answers[p];
    a.probabilities = probs[p];
    a.novelty = novelty[p];
    a.ranking.resize(a.probabilities.size());
    std::iota(a.ranking.begin(), a.ranking.end(), 0);
    std::stable_sort(a.ranking.begin(), a.ranking.end(),
                     [&](size_t x, size_t y) { return a.probabilities[x] > a.probabilities[y]; });
    if (h != Head::kSigmoid) {
      if (!a.ranking.empty()) a.predicted.push_back(a.ranking[0]);
      continue;
    }
    for (size_t i : a.ranking)
      if (a.probabilities[i] > threshold.value_or(card().threshold_for(i))) a.predicted.push_back(i);
    if (seen && !seen->empty() && !a.predicted.empty()) {
      std::vector<std::string> set;
      for (size_t i : a.predicted) set.push_back(names[i]);
      std::sort(set.begin(), set.end());
      a.unseen_combination = !seen->count(set);
    }
  }
  return answers;
}

size_t Classifier::give_new_labels(const NewLabels& n) {
  int outputs = n.names.empty() ? n.outputs : int(n.names.size());
  if (n.head == Head::kLogit) {
    if (!n.names.empty() && n.names.size() != 2)
      throw std::invalid_argument("a logit head takes two labels, not " + std::to_string(n.names.size()));
    outputs = 1;
  }
  const int least = n.head == Head::kSoftmax ? 2 : 1;
  if (outputs < least)
    throw std::invalid_argument(std::string("a ") + (n.head == Head::kSigmoid ? "multi-label" : "single-label") +
                                " head needs at least " + std::to_string(least) + " label" +
                                (least > 1 ? "s" : "") + ", got " + std::to_string(outputs));
  const size_t cut = n.cut == kAtHead ? head_start(model_) : n.cut;
  const size_t dense = cut_and_add_head(model_, cut, outputs, n.head, n.seed, n.freeze_base);
  ModelCard& c = card();
  c.labels = n.names;
  c.label_mode = label_mode_of(n.head);
  c.forget_training_results();
  c.provenance.replaced_head = {{"from", n.from.empty() ? origin_ : n.from},
                                {"cut", cut},
                                {"frozen_below", n.freeze_base ? dense : 0},
                                {"date", utc_now()}};
  return dense;
}

Scores Classifier::evaluate(BatchSource& data, const Context& ctx) {
  return score(model_, data, head(), labels(), ctx);
}

}  // namespace tagnet
