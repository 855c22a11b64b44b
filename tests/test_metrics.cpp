// Classification metrics against hand-computed scikit-learn values.
#include <gtest/gtest.h>

#include <stdexcept>

#include "tagnet/train/metrics.h"

namespace tagnet {
namespace {

Tensor matrix(int rows, int cols, std::initializer_list<float> v) {
  Tensor t({rows, cols});
  int i = 0;
  for (float x : v) t.at(i++) = x;
  EXPECT_EQ(size_t(i), t.size());
  return t;
}

TEST(AveragePrecision, SklearnDocumentationExample) {
  // average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333...
  const float scores[] = {0.1f, 0.4f, 0.35f, 0.8f};
  const float truth[] = {0, 0, 1, 1};
  EXPECT_NEAR(average_precision(scores, truth, 4, 1), 5.0 / 6.0, 1e-12);
}

TEST(AveragePrecision, TiedScoresEnterTogether) {
  // Three examples at one score with two positives: precision 2/3 at recall 1. Any order
  // inside the tie would give 1, 5/6 or 7/12 instead.
  const float scores[] = {0.5f, 0.5f, 0.5f};
  const float truth[] = {1, 0, 1};
  EXPECT_NEAR(average_precision(scores, truth, 3, 1), 2.0 / 3.0, 1e-12);
  // 0.9 (+): R 1/3, P 1; the 0.5 group (+ - +): R 1, P 3/4  ->  1/3 + 2/3 * 3/4.
  const float s2[] = {0.9f, 0.5f, 0.5f, 0.5f, 0.1f};
  const float t2[] = {1, 1, 0, 1, 0};
  EXPECT_NEAR(average_precision(s2, t2, 5, 1), 5.0 / 6.0, 1e-12);
}

TEST(AveragePrecision, StridedColumnAndNoPositives) {
  // Column 1 of a (3, 2) matrix.
  const float scores[] = {0, 0.2f, 0, 0.9f, 0, 0.4f};
  const float truth[] = {0, 0, 0, 1, 0, 0};
  EXPECT_DOUBLE_EQ(average_precision(scores + 1, truth + 1, 3, 2), 1.0);
  EXPECT_DOUBLE_EQ(average_precision(scores, truth, 3, 2), 0.0);
}

// Four examples, labels a, b, c; c never occurs.
//   probs                 targets     predicted (> 0.5)
//   0.9 0.2 0.1           1 0 0       1 0 0   all right
//   0.6 0.7 0.3           0 1 0       1 1 0   a: FP
//   0.4 0.8 0.2           1 1 0       0 1 0   a: FN
//   0.3 0.1 0.6           0 0 0       0 0 1   c: FP
TEST(MultiLabelMetrics, HandComputedCase) {
  Tensor p = matrix(4, 3, {0.9f, 0.2f, 0.1f, 0.6f, 0.7f, 0.3f, 0.4f, 0.8f, 0.2f, 0.3f, 0.1f, 0.6f});
  Tensor t = matrix(4, 3, {1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0});
  MultiLabelMetrics m = multilabel_metrics(p, t, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(m.binary_accuracy, 9.0 / 12.0);
  EXPECT_DOUBLE_EQ(m.exact_match, 0.25);
  EXPECT_DOUBLE_EQ(m.micro_f1, 2.0 / 3.0);   // TP 3, FP 2, FN 1
  EXPECT_DOUBLE_EQ(m.macro_f1, 0.5);         // (0.5 + 1 + 0) / 3
  ASSERT_EQ(m.per_label.size(), 3u);
  const LabelMetrics& a = m.per_label[0];
  EXPECT_EQ(a.label, "a");
  EXPECT_DOUBLE_EQ(a.precision, 0.5);
  EXPECT_DOUBLE_EQ(a.recall, 0.5);
  EXPECT_DOUBLE_EQ(a.f1, 0.5);
  EXPECT_NEAR(a.average_precision, 5.0 / 6.0, 1e-12);
  EXPECT_EQ(a.support, 2u);
  const LabelMetrics& b = m.per_label[1];
  EXPECT_DOUBLE_EQ(b.precision, 1.0);
  EXPECT_DOUBLE_EQ(b.recall, 1.0);
  EXPECT_DOUBLE_EQ(b.f1, 1.0);
  EXPECT_DOUBLE_EQ(b.average_precision, 1.0);
  // No positives and one false positive: every ratio is 0 (zero_division=0).
  const LabelMetrics& c = m.per_label[2];
  EXPECT_EQ(c.support, 0u);
  EXPECT_DOUBLE_EQ(c.precision, 0.0);
  EXPECT_DOUBLE_EQ(c.recall, 0.0);
  EXPECT_DOUBLE_EQ(c.f1, 0.0);
  EXPECT_DOUBLE_EQ(c.average_precision, 0.0);
  // c has no positives, so mAP is over a and b only.
  EXPECT_NEAR(m.mAP, (5.0 / 6.0 + 1.0) / 2.0, 1e-12);
}

TEST(MultiLabelMetrics, PerfectPredictionsScoreOne) {
  Tensor t = matrix(3, 2, {1, 0, 0, 1, 1, 1});
  Tensor p = matrix(3, 2, {0.9f, 0.1f, 0.2f, 0.8f, 0.7f, 0.95f});
  MultiLabelMetrics m = multilabel_metrics(p, t, {"x", "y"});
  EXPECT_DOUBLE_EQ(m.binary_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.exact_match, 1.0);
  EXPECT_DOUBLE_EQ(m.micro_f1, 1.0);
  EXPECT_DOUBLE_EQ(m.macro_f1, 1.0);
  EXPECT_DOUBLE_EQ(m.mAP, 1.0);
  for (const LabelMetrics& l : m.per_label) {
    EXPECT_DOUBLE_EQ(l.precision, 1.0);
    EXPECT_DOUBLE_EQ(l.recall, 1.0);
    EXPECT_DOUBLE_EQ(l.f1, 1.0);
    EXPECT_DOUBLE_EQ(l.average_precision, 1.0);
  }
}

TEST(MultiLabelMetrics, ThresholdIsStrict) {
  Tensor t = matrix(2, 1, {1, 0});
  Tensor p = matrix(2, 1, {0.5f, 0.2f});
  EXPECT_DOUBLE_EQ(multilabel_metrics(p, t, {"x"}).per_label[0].recall, 0.0);
  EXPECT_DOUBLE_EQ(multilabel_metrics(p, t, {"x"}, 0.4f).per_label[0].recall, 1.0);
}

TEST(MultiLabelMetrics, JsonAndTable) {
  Tensor p = matrix(4, 3, {0.9f, 0.2f, 0.1f, 0.6f, 0.7f, 0.3f, 0.4f, 0.8f, 0.2f, 0.3f, 0.1f, 0.6f});
  Tensor t = matrix(4, 3, {1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0});
  MultiLabelMetrics m = multilabel_metrics(p, t, {"red", "dress", "jeans"});
  nlohmann::json j = m.to_json();
  for (const char* k : {"binary_accuracy", "exact_match", "micro_f1", "macro_f1", "mAP"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_DOUBLE_EQ(j["micro_f1"].get<double>(), 2.0 / 3.0);
  ASSERT_TRUE(j["per_label"].contains("red"));
  EXPECT_DOUBLE_EQ(j["per_label"]["red"]["precision"].get<double>(), 0.5);
  EXPECT_NEAR(j["per_label"]["red"]["ap"].get<double>(), 5.0 / 6.0, 1e-12);
  EXPECT_EQ(j["per_label"]["dress"]["support"].get<size_t>(), 2u);
  EXPECT_DOUBLE_EQ(j["per_label"]["jeans"]["f1"].get<double>(), 0.0);
  const std::string table = m.to_table();
  EXPECT_NE(table.find("red"), std::string::npos);
  EXPECT_NE(table.find("jeans"), std::string::npos);
  EXPECT_NE(table.find("0.8333"), std::string::npos);
  EXPECT_NE(table.find("mAP 0.9167"), std::string::npos);
}

TEST(MultiLabelMetrics, RejectsMismatchedInputs) {
  Tensor p({4, 3}), t({4, 2}), empty({0, 3});
  EXPECT_THROW(multilabel_metrics(p, t, {"a", "b", "c"}), std::invalid_argument);
  EXPECT_THROW(multilabel_metrics(p, p, {"a", "b"}), std::invalid_argument);
  EXPECT_THROW(multilabel_metrics(empty, empty, {"a", "b", "c"}), std::invalid_argument);
}

// Five examples, four classes; class w is neither a target nor a prediction.
//   true  0 0 1 2 1
//   pred  0 1 1 2 0
ClassMetrics five_examples() {
  Tensor p = matrix(5, 4, {0.7f, 0.2f, 0.05f, 0.05f,
                           0.3f, 0.6f, 0.05f, 0.05f,
                           0.1f, 0.8f, 0.05f, 0.05f,
                           0.1f, 0.1f, 0.75f, 0.05f,
                           0.5f, 0.4f, 0.05f, 0.05f});
  Tensor t = matrix(5, 4, {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0});
  return multiclass_metrics(p, t, {"x", "y", "z", "w"});
}

TEST(ClassMetrics, HandComputedCase) {
  ClassMetrics m = five_examples();
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  const std::vector<std::vector<size_t>> confusion = {
      {1, 1, 0, 0}, {1, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 0}};
  EXPECT_EQ(m.confusion, confusion);
  ASSERT_EQ(m.per_class.size(), 4u);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].f1, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 1.0);
  EXPECT_EQ(m.per_class[0].support, 2u);
  EXPECT_EQ(m.per_class[3].support, 0u);
  // Class x scores 0.7(+) 0.5(-) 0.3(+) 0.1 0.1: 1/2 * 1 + 1/2 * 2/3.
  EXPECT_NEAR(m.per_class[0].average_precision, 5.0 / 6.0, 1e-12);
  EXPECT_DOUBLE_EQ(m.per_class[2].average_precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[3].average_precision, 0.0);
  // w is absent from targets and predictions, so sklearn leaves it out of the means.
  EXPECT_NEAR(m.macro_f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.macro_precision, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.macro_recall, 2.0 / 3.0, 1e-12);
}

TEST(ClassMetrics, ArgmaxTakesTheFirstOfEqualScores) {
  Tensor p = matrix(1, 3, {0.4f, 0.4f, 0.2f});
  Tensor t = matrix(1, 3, {0, 1, 0});
  ClassMetrics m = multiclass_metrics(p, t, {"a", "b", "c"});
  EXPECT_EQ(m.confusion[1][0], 1u);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.0);
}

TEST(ClassMetrics, PerfectPredictionsScoreOne) {
  Tensor t = matrix(3, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  Tensor p = matrix(3, 3, {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.0f, 0.1f, 0.9f});
  ClassMetrics m = multiclass_metrics(p, t, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.macro_f1, 1.0);
  for (const LabelMetrics& c : m.per_class) {
    EXPECT_DOUBLE_EQ(c.precision, 1.0);
    EXPECT_DOUBLE_EQ(c.recall, 1.0);
    EXPECT_DOUBLE_EQ(c.average_precision, 1.0);
  }
}

TEST(ClassMetrics, JsonAndTable) {
  ClassMetrics m = five_examples();
  nlohmann::json j = m.to_json();
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.6);
  EXPECT_EQ(j["labels"], nlohmann::json({"x", "y", "z", "w"}));
  EXPECT_EQ(j["confusion"][1][0].get<size_t>(), 1u);
  EXPECT_DOUBLE_EQ(j["per_class"]["z"]["recall"].get<double>(), 1.0);
  EXPECT_NEAR(j["macro_f1"].get<double>(), 2.0 / 3.0, 1e-12);
  const std::string table = m.to_table();
  EXPECT_NE(table.find("accuracy 0.6000"), std::string::npos);
  EXPECT_NE(table.find("confusion"), std::string::npos);
}

}  // namespace
}  // namespace tagnet
