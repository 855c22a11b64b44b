#include "tagnet/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace tagnet {
namespace {

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

// Fills precision, recall and F1 from counts. F1 = 2TP / (2TP + FP + FN) equals the harmonic
// mean whenever that is defined, and is 0 (not undefined) when P and R are both 0.
void set_scores(LabelMetrics& m, size_t tp, size_t fp, size_t fn) {
  m.precision = ratio(double(tp), double(tp + fp));
  m.recall = ratio(double(tp), double(tp + fn));
  m.f1 = ratio(2.0 * tp, 2.0 * tp + fp + fn);
  m.support = tp + fn;
}

// probs and targets (N, F), one name per column.
void check_inputs(const Tensor& probs, const Tensor& targets,
                  const std::vector<std::string>& labels, const char* who) {
  if (probs.rank() != 2)
    throw std::invalid_argument(std::string(who) + ": probabilities must be (N, F), got " +
                                probs.shape().str());
  targets.expect_shape(probs.shape(), std::string(who) + " targets");
  if (probs.dim(0) == 0) throw std::invalid_argument(std::string(who) + ": no examples");
  if (labels.size() != size_t(probs.dim(1)))
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(labels.size()) +
                                " label names for " + std::to_string(probs.dim(1)) +
                                " outputs");
}

nlohmann::json label_json(const std::vector<LabelMetrics>& v) {
  nlohmann::json j = nlohmann::json::object();
  for (const LabelMetrics& m : v)
    j[m.label] = {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1},
                  {"ap", m.average_precision}, {"support", m.support}};
  return j;
}

int name_width(const std::vector<LabelMetrics>& v, int at_least) {
  int w = at_least;
  for (const LabelMetrics& m : v) w = std::max(w, static_cast<int>(m.label.size()));
  return w;
}

std::string label_rows(const std::vector<LabelMetrics>& v, int w) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s %9s %9s %9s %9s %9s\n", w, "", "precision", "recall",
                "f1", "AP", "support");
  out += line;
  for (const LabelMetrics& m : v) {
    out += m.label + std::string(size_t(w) - m.label.size(), ' ');
    std::snprintf(line, sizeof line, " %9.4f %9.4f %9.4f %9.4f %9zu\n", m.precision, m.recall,
                  m.f1, m.average_precision, m.support);
    out += line;
  }
  return out;
}

}  // namespace

double average_precision(const float* scores, const float* positive, size_t n, size_t stride) {
  // NaN scores rank last so that a diverged model still gets a (poor) score instead of
  // breaking the sort's ordering.
  std::vector<std::pair<float, bool>> s(n);
  size_t total_pos = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = scores[i * stride];
    s[i] = {std::isnan(v) ? -std::numeric_limits<float>::infinity() : v,
            positive[i * stride] > 0.5f};
    total_pos += s[i].second;
  }
  if (total_pos == 0) return 0.0;
  std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  double ap = 0, prev_recall = 0;
  size_t tp = 0, seen = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    for (; j < n && s[j].first == s[i].first; ++j) tp += s[j].second;
    seen = j;
    const double recall = double(tp) / double(total_pos);
    ap += (recall - prev_recall) * (double(tp) / double(seen));
    prev_recall = recall;
    i = j;
  }
  return ap;
}

MultiLabelMetrics multilabel_metrics(const Tensor& probs, const Tensor& targets,
                                     const std::vector<std::string>& labels, float threshold) {
  check_inputs(probs, targets, labels, "multilabel_metrics");
  const size_t N = size_t(probs.dim(0)), F = size_t(probs.dim(1));
  const float* p = probs.data();   // (N, F)
  const float* t = targets.data(); // (N, F)
  std::vector<size_t> tp(F), fp(F), fn(F);
  size_t right = 0, exact = 0;
  for (size_t n = 0; n < N; ++n) {
    bool all = true;
    for (size_t f = 0; f < F; ++f) {
      const bool pred = p[n * F + f] > threshold;
      const bool truth = t[n * F + f] > 0.5f;
      tp[f] += pred && truth;
      fp[f] += pred && !truth;
      fn[f] += !pred && truth;
      right += pred == truth;
      all = all && pred == truth;
    }
    exact += all;
  }
  MultiLabelMetrics m;
  m.binary_accuracy = double(right) / double(N * F);
  m.exact_match = double(exact) / double(N);
  m.per_label.resize(F);
  size_t sum_tp = 0, sum_fp = 0, sum_fn = 0, with_pos = 0;
  double f1_sum = 0, ap_sum = 0;
  for (size_t f = 0; f < F; ++f) {
    LabelMetrics& l = m.per_label[f];
    l.label = labels[f];
    set_scores(l, tp[f], fp[f], fn[f]);
    l.average_precision = average_precision(p + f, t + f, N, F);
    sum_tp += tp[f];
    sum_fp += fp[f];
    sum_fn += fn[f];
    f1_sum += l.f1;
    if (l.support) {
      ap_sum += l.average_precision;
      ++with_pos;
    }
  }
  m.micro_f1 = ratio(2.0 * sum_tp, 2.0 * sum_tp + sum_fp + sum_fn);
  m.macro_f1 = F ? f1_sum / double(F) : 0.0;
  m.mAP = ratio(ap_sum, double(with_pos));
  return m;
}

nlohmann::json MultiLabelMetrics::to_json() const {
  return {{"binary_accuracy", binary_accuracy}, {"exact_match", exact_match},
          {"micro_f1", micro_f1},               {"macro_f1", macro_f1},
          {"mAP", mAP},                         {"per_label", label_json(per_label)}};
}

std::string MultiLabelMetrics::to_table() const {
  const int w = name_width(per_label, 5);
  std::string out = label_rows(per_label, w);
  char line[256];
  std::snprintf(line, sizeof line,
                "\nbinary accuracy %.4f  exact match %.4f\nmicro F1 %.4f  macro F1 %.4f  mAP %.4f\n",
                binary_accuracy, exact_match, micro_f1, macro_f1, mAP);
  return out + line;
}

ClassMetrics multiclass_metrics(const Tensor& probs, const Tensor& targets,
                                const std::vector<std::string>& labels) {
  check_inputs(probs, targets, labels, "multiclass_metrics");
  const size_t N = size_t(probs.dim(0)), F = size_t(probs.dim(1));
  const float* p = probs.data();   // (N, F)
  const float* t = targets.data(); // (N, F)
  ClassMetrics m;
  m.confusion.assign(F, std::vector<size_t>(F, 0));
  size_t right = 0;
  for (size_t n = 0; n < N; ++n) {
    const size_t truth = size_t(std::max_element(t + n * F, t + (n + 1) * F) - (t + n * F));
    const size_t pred = size_t(std::max_element(p + n * F, p + (n + 1) * F) - (p + n * F));
    ++m.confusion[truth][pred];
    right += truth == pred;
  }
  m.accuracy = double(right) / double(N);
  m.per_class.resize(F);
  double sp = 0, sr = 0, sf = 0;
  size_t present = 0;
  for (size_t k = 0; k < F; ++k) {
    size_t predicted = 0, actual = 0;
    for (size_t j = 0; j < F; ++j) {
      predicted += m.confusion[j][k];
      actual += m.confusion[k][j];
    }
    const size_t tp = m.confusion[k][k];
    LabelMetrics& c = m.per_class[k];
    c.label = labels[k];
    set_scores(c, tp, predicted - tp, actual - tp);
    c.average_precision = average_precision(p + k, t + k, N, F);
    if (predicted || actual) {
      sp += c.precision;
      sr += c.recall;
      sf += c.f1;
      ++present;
    }
  }
  m.macro_precision = ratio(sp, double(present));
  m.macro_recall = ratio(sr, double(present));
  m.macro_f1 = ratio(sf, double(present));
  return m;
}

nlohmann::json ClassMetrics::to_json() const {
  nlohmann::json names = nlohmann::json::array();
  for (const LabelMetrics& c : per_class) names.push_back(c.label);
  return {{"accuracy", accuracy},
          {"macro_precision", macro_precision},
          {"macro_recall", macro_recall},
          {"macro_f1", macro_f1},
          {"labels", names},
          {"per_class", label_json(per_class)},
          {"confusion", confusion}};
}

std::string ClassMetrics::to_table() const {
  const int w = name_width(per_class, 5);
  std::string out = label_rows(per_class, w);
  char line[512];
  std::snprintf(line, sizeof line,
                "\naccuracy %.4f  macro precision %.4f  macro recall %.4f  macro F1 %.4f\n",
                accuracy, macro_precision, macro_recall, macro_f1);
  out += line;
  // Columns are numbered rather than named so that long class names keep the matrix narrow.
  out += "\nconfusion (rows: true class, columns: predicted)\n";
  size_t widest = 1;
  for (const auto& row : confusion)
    for (size_t v : row) widest = std::max(widest, std::to_string(v).size());
  const int cw = static_cast<int>(std::max<size_t>(widest, std::to_string(confusion.size()).size()));
  out += std::string(size_t(w) + 4, ' ');
  for (size_t k = 0; k < confusion.size(); ++k) {
    std::snprintf(line, sizeof line, " %*zu", cw, k);
    out += line;
  }
  out += "\n";
  for (size_t k = 0; k < confusion.size(); ++k) {
    const std::string& name = per_class[k].label;
    out += name + std::string(size_t(w) - name.size(), ' ');
    std::snprintf(line, sizeof line, " %2zu ", k);
    out += line;
    for (size_t v : confusion[k]) {
      std::snprintf(line, sizeof line, " %*zu", cw, v);
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace tagnet
