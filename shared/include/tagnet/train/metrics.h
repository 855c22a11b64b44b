// Classification metrics with scikit-learn's definitions, so reports can be checked against
// sklearn.metrics (precision_recall_fscore_support with zero_division=0, f1_score micro and
// macro, average_precision_score, accuracy_score).
//
//   tagnet::Tensor probs, targets;   // (N, F) from tagnet::evaluate(...)
//   auto m = tagnet::multilabel_metrics(probs, targets, {"black", "blue", "dress"});
//   std::cout << m.to_table();       // per-label precision / recall / F1 / AP, then summaries
//   auto c = tagnet::multiclass_metrics(probs, onehot, class_names);
//   c.to_json()["confusion"][true_class][predicted_class];
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/kernels/tensor.h"

namespace tagnet {

// Scores of one label (multi-label) or one class (multi-class, one-vs-rest). Ratios with a
// zero denominator are 0, as sklearn with zero_division=0.
struct LabelMetrics {
  std::string label;
  double precision = 0, recall = 0, f1 = 0;
  double average_precision = 0;   // 0 when the label has no positive example
  size_t support = 0;             // positive examples
};

struct MultiLabelMetrics {
  double binary_accuracy = 0;   // over all N * F decisions, as Keras' binary_accuracy
  double exact_match = 0;       // examples with every label right (sklearn's subset accuracy)
  double micro_f1 = 0;          // from TP, FP, FN pooled over labels
  double macro_f1 = 0;          // mean of the per-label F1, every label counted
  double mAP = 0;               // mean AP over the labels with at least one positive
  std::vector<LabelMetrics> per_label;

  // {binary_accuracy, exact_match, micro_f1, macro_f1, mAP,
  //  per_label: {label: {precision, recall, f1, ap, support}}}
  nlohmann::json to_json() const;
  // Fixed-width text: one row per label, then the summary figures.
  std::string to_table() const;
};

// probs and targets are (N, F), targets 0/1. A label is predicted when its probability is
// above `threshold` (strictly, like Keras and tagnet::count_correct).
MultiLabelMetrics multilabel_metrics(const Tensor& probs, const Tensor& targets,
                                     const std::vector<std::string>& labels,
                                     float threshold = 0.5f);

struct ClassMetrics {
  double accuracy = 0;
  // Means over the classes that occur among the targets or the predictions, as sklearn does
  // when it is not given a label list.
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  std::vector<LabelMetrics> per_class;   // average_precision is one-vs-rest on that column
  std::vector<std::vector<size_t>> confusion;   // [true class][predicted class]

  // {accuracy, macro_precision, macro_recall, macro_f1, labels: [...],
  //  per_class: {label: {precision, recall, f1, ap, support}}, confusion: [[...], ...]}
  // with the confusion rows and columns in the order of `labels`.
  nlohmann::json to_json() const;
  // Per-class rows, the summary, then the confusion matrix.
  std::string to_table() const;
};

// probs (N, F) are softmax outputs, targets (N, F) one-hot; the true and the predicted class
// are each row's argmax (the first one on ties, like numpy).
ClassMetrics multiclass_metrics(const Tensor& probs, const Tensor& targets,
                                const std::vector<std::string>& labels);

// sklearn's average_precision_score for one label: sum over distinct score thresholds, highest
// first, of (R_n - R_{n-1}) * P_n; examples with equal scores enter together. `scores` and
// `positive` are strided (element i at [i * stride]). Returns 0 without positives.
double average_precision(const float* scores, const float* positive, size_t n, size_t stride);

}  // namespace tagnet
