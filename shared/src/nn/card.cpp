#include "tagnet/nn/card.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <utility>

namespace tagnet {

namespace {

using T = nlohmann::json::value_t;

// Every metadata key tagnet knows, with the one JSON type it is read as.
struct Key {
  const char* name;
  T type;
};
constexpr Key kKeys[] = {
    {"labels", T::array},         {"label_mode", T::string},      {"head", T::string},
    {"architecture", T::string},  {"description", T::string},     {"input", T::string},
    {"preprocessing", T::object}, {"combinations", T::array},     {"threshold", T::number_float},
    {"thresholds", T::array},     {"novelty", T::object},         {"training", T::object},
    {"data", T::object},          {"imported", T::object},        {"replaced_head", T::object},
    {"fine_tuned", T::object},    {"base", T::object},            {"metrics", T::object},
    {"metrics_before_finetuning", T::object}, {"history", T::array},
};

bool of_type(const nlohmann::json& v, T type) {
  if (type == T::number_float) return v.is_number();
  return v.type() == type;
}

const char* type_words(T type) {
  switch (type) {
    case T::string: return "text";
    case T::object: return "a JSON object";
    case T::array: return "a list";
    default: return "a number";
  }
}

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw std::invalid_argument("metadata " + key + " " + what);
}

std::vector<std::string> names(const nlohmann::json& v, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.is_string()) bad(key, "must be a list of names");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string number_text(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}

double finite_number(const nlohmann::json& v, const std::string& key, double lo, double hi) {
  const double x = v.get<double>();
  if (!(std::isfinite(x) && x >= lo && x <= hi))
    bad(key, "must be a number from " + number_text(lo) + " to " + number_text(hi));
  return x;
}

std::vector<double> numbers(const nlohmann::json& v, const std::string& key, double lo, double hi) {
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number()) bad(key, "must be a list of numbers");
    out.push_back(finite_number(x, key, lo, hi));
  }
  return out;
}

}  // namespace

Preprocessing Preprocessing::from_json(const nlohmann::json& j) {
  if (!j.is_object()) bad("preprocessing", "must be a JSON object");
  Preprocessing p;
  for (const auto& [k, v] : j.items()) {
    const std::string key = "preprocessing." + k;
    if (k == "color" || k == "resize") {
      if (!v.is_string()) bad(key, "must be text");
      (k == "color" ? p.color : p.resize) = v.get<std::string>();
    } else if (k == "scale") {
      if (!v.is_number()) bad(key, "must be a number");
      p.scale = finite_number(v, key, -1e30, 1e30);
    } else if (k == "mean" || k == "std") {
      if (!v.is_array()) bad(key, "must be a list of numbers, one per channel");
      (k == "mean" ? p.mean : p.stddev) = numbers(v, key, -1e30, 1e30);
    } else {
      p.other[k] = v;
    }
  }
  return p;
}

nlohmann::json Preprocessing::to_json() const {
  nlohmann::json j = other;
  j["color"] = color;
  j["scale"] = scale;
  j["resize"] = resize;
  if (!mean.empty()) j["mean"] = mean;
  if (!stddev.empty()) j["std"] = stddev;
  return j;
}

namespace {

// The provenance records, by their metadata keys.
constexpr std::pair<const char*, nlohmann::json Provenance::*> kRecords[] = {
    {"training", &Provenance::training},         {"data", &Provenance::data},
    {"imported", &Provenance::imported},         {"replaced_head", &Provenance::replaced_head},
    {"fine_tuned", &Provenance::fine_tuned},     {"base", &Provenance::base},
};

}  // namespace

Head head_from_name(const std::string& s) {
  if (s == "softmax") return Head::kSoftmax;
  if (s == "sigmoid") return Head::kSigmoid;
  if (s == "logit") return Head::kLogit;
  throw std::invalid_argument("unknown head '" + s + "' (softmax, sigmoid, logit)");
}

std::string head_name(Head h) {
  switch (h) {
    case Head::kSoftmax: return "softmax";
    case Head::kSigmoid: return "sigmoid";
    case Head::kLogit: return "logit";
  }
  return "?";
}

LabelMode label_mode_from_name(const std::string& s) {
  if (s == "multi") return LabelMode::kMulti;
  if (s == "single") return LabelMode::kSingle;
  throw std::invalid_argument("unknown label mode '" + s + "' (multi, single)");
}

std::string label_mode_name(LabelMode m) { return m == LabelMode::kMulti ? "multi" : "single"; }

LabelMode label_mode_of(Head h) { return h == Head::kSigmoid ? LabelMode::kMulti : LabelMode::kSingle; }

Preprocessing Preprocessing::for_channels(int channels) {
  Preprocessing p;
  p.color = channels == 1 ? "grayscale" : "rgb";
  return p;
}

double ModelCard::threshold_for(size_t i) const {
  if (i < thresholds.size()) return thresholds[i];
  return threshold.value_or(0.5);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return b;
}

void ModelCard::record_fine_tuning(nlohmann::json record) {
  forget_training_results();
  record["date"] = utc_now();
  provenance.fine_tuned = std::move(record);
}

void ModelCard::forget_training_results() {
  combinations.reset();
  thresholds.clear();
  description.clear();
  metrics = nullptr;
  history = nullptr;
}

ModelCard ModelCard::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("metadata must be a JSON object");
  ModelCard c;
  for (const auto& [k, v] : j.items()) {
    const Key* key = nullptr;
    for (const Key& known : kKeys)
      if (k == known.name) key = &known;
    if (!key) {
      c.other[k] = v;
      continue;
    }
    if (!of_type(v, key->type)) bad(k, std::string("must be ") + type_words(key->type) + ", not " + v.type_name());
    try {
      if (k == "labels") c.labels = names(v, k);
      else if (k == "label_mode") c.label_mode = label_mode_from_name(v.get<std::string>());
      else if (k == "head") c.head = head_from_name(v.get<std::string>());
      else if (k == "architecture") c.architecture = v.get<std::string>();
      else if (k == "description") c.description = v.get<std::string>();
      else if (k == "input") c.input = v.get<std::string>();
      else if (k == "preprocessing") c.preprocessing = Preprocessing::from_json(v);
      else if (k == "threshold") c.threshold = finite_number(v, k, 0, 1);
      else if (k == "thresholds") c.thresholds = numbers(v, k, 0, 1);
      else if (k == "novelty") c.novelty = v;
      else if (k == "metrics") c.metrics = v;
      else if (k == "metrics_before_finetuning") c.metrics_before_finetuning = v;
      else if (k == "history") c.history = v;
      else if (k == "combinations") {
        c.combinations.emplace();
        for (const auto& set : v) {
          if (!set.is_array()) bad(k, "must be a list of label lists");
          c.combinations->insert(names(set, k));
        }
      } else {
        for (const auto& [name, record] : kRecords)
          if (k == name) c.provenance.*record = v;
      }
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      if (what.rfind("metadata ", 0) == 0) throw;
      bad(k, "cannot be read: " + what);
    }
  }
  return c;
}

nlohmann::json ModelCard::to_json() const {
  nlohmann::json j = other;
  if (!labels.empty()) j["labels"] = labels;
  if (label_mode) j["label_mode"] = label_mode_name(*label_mode);
  if (head) j["head"] = head_name(*head);
  if (!architecture.empty()) j["architecture"] = architecture;
  if (!description.empty()) j["description"] = description;
  if (!input.empty()) j["input"] = input;
  if (preprocessing) j["preprocessing"] = preprocessing->to_json();
  if (combinations) j["combinations"] = *combinations;
  if (threshold) j["threshold"] = *threshold;
  if (!thresholds.empty()) j["thresholds"] = thresholds;
  if (!novelty.is_null()) j["novelty"] = novelty;
  for (const auto& [name, record] : kRecords)
    if (!(provenance.*record).is_null()) j[name] = provenance.*record;
  if (!metrics.is_null()) j["metrics"] = metrics;
  if (!metrics_before_finetuning.is_null()) j["metrics_before_finetuning"] = metrics_before_finetuning;
  if (!history.is_null()) j["history"] = history;
  return j;
}

}  // namespace tagnet
