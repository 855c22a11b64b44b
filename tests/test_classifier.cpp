// The use-cases of app/classifier.h: answers, the one policy for new labels, and the card they leave.
#include <gtest/gtest.h>

#include <memory>

#include "tagnet/app/classifier.h"
#include "tagnet/nn/layers.h"

using namespace tagnet;

namespace {

const Engine& engine() {
  static Engine e(Engine::Options{1, "ref"});
  return e;
}

Image plain(uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = im.height = 4;
  for (int i = 0; i < 16; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

// A colour reader: output k is the mean of channel k (0..1, times 4, minus 2), through a sigmoid.
Classifier colour_reader() {
  Model m({4, 4, 3});
  m.add(std::make_unique<GlobalAvgPool2D>());
  m.add(std::make_unique<Dense>(3));
  m.add(std::make_unique<Sigmoid>());
  m.build(1);
  auto& dense = m.layer(1).params();
  std::fill(dense[0].value.data(), dense[0].value.data() + 9, 0.f);
  for (int k = 0; k < 3; ++k) dense[0].value.data()[k * 3 + k] = 4.f;
  std::fill(dense[1].value.data(), dense[1].value.data() + 3, -2.f);
  m.card().labels = {"red", "green", "blue"};
  m.card().combinations = std::set<std::vector<std::string>>{{"red"}, {"blue", "green"}};
  return Classifier(std::move(m), "colours.tagnet");
}

}  // namespace

TEST(Classifier, AnswersFollowThresholdsAndCombinations) {
  Classifier c = colour_reader();
  const Context ctx{&engine()};
  // Red alone: seen. Red and green: never seen together. Dark: nothing above 0.5.
  const auto answers = c.classify({plain(255, 0, 0), plain(255, 255, 0), plain(0, 0, 0)}, ctx);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].predicted, (std::vector<size_t>{0}));
  EXPECT_FALSE(answers[0].unseen_combination);
  EXPECT_EQ(answers[1].predicted.size(), 2u);
  EXPECT_TRUE(answers[1].unseen_combination);
  EXPECT_TRUE(answers[2].predicted.empty());
  EXPECT_FALSE(answers[2].unseen_combination);
  EXPECT_EQ(answers[0].ranking[0], 0u);
  EXPECT_EQ(answers[0].novelty, -1.f);   // no statistics in the card
  EXPECT_FALSE(answers[0].unfamiliar());

  // sigmoid(4 * 0.5 - 2) = 0.5 for a half-bright red: each label's own threshold decides.
  const Image half = plain(140, 0, 0);
  const float p = c.classify({half}, ctx)[0].probabilities[0];
  ASSERT_GT(p, 0.5f);
  c.card().thresholds = {p + 0.01, 0.5, 0.5};
  EXPECT_TRUE(c.classify({half}, ctx)[0].predicted.empty());
  c.card().thresholds = {p - 0.01, 0.5, 0.5};
  EXPECT_EQ(c.classify({half}, ctx)[0].predicted, (std::vector<size_t>{0}));
  // A threshold given for the call serves every label.
  EXPECT_TRUE(c.classify({half}, ctx, p + 0.01)[0].predicted.empty());
}

TEST(Classifier, NewLabelsFollowOnePolicy) {
  const Context ctx{&engine()};
  {
    Classifier c = colour_reader();
    c.card().description = "colours";
    c.card().metrics = {{"exact_match", 1.0}};
    c.card().novelty = {{"means", {{0.0}}}};
    const size_t dense = c.give_new_labels({{"warm", "cold"}, Head::kSoftmax});
    EXPECT_EQ(c.labels(), (std::vector<std::string>{"warm", "cold"}));
    EXPECT_EQ(c.mode(), LabelMode::kSingle);
    EXPECT_EQ(c.head(), Head::kSoftmax);
    EXPECT_FALSE(c.model().layer(0).trainable);   // below the head: frozen
    EXPECT_TRUE(c.model().layer(dense).trainable);
    // What described the old outputs is gone; what describes the base stays.
    EXPECT_FALSE(c.card().combinations);
    EXPECT_TRUE(c.card().description.empty());
    EXPECT_TRUE(c.card().metrics.is_null());
    EXPECT_FALSE(c.card().novelty.is_null());
    EXPECT_EQ(c.card().provenance.replaced_head["from"], "colours.tagnet");
    EXPECT_EQ(c.card().provenance.replaced_head["cut"], dense);
    EXPECT_EQ(c.classify({plain(1, 2, 3)}, ctx)[0].probabilities.size(), 2u);
  }
  auto error = [](const NewLabels& n) {
    Classifier c = colour_reader();
    try {
      c.give_new_labels(n);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error({{"only"}, Head::kSoftmax}), "a single-label head needs at least 2 labels, got 1");
  EXPECT_EQ(error({{}, Head::kSigmoid}), "a multi-label head needs at least 1 label, got 0");
  EXPECT_EQ(error({{"a", "b", "c"}, Head::kLogit}), "a logit head takes two labels, not 3");
  EXPECT_EQ(error({{"one"}, Head::kSigmoid}), "");
  EXPECT_EQ(error({{"cat", "dog"}, Head::kLogit}), "");

  Classifier logit = colour_reader();
  logit.give_new_labels({{"cat", "dog"}, Head::kLogit});
  EXPECT_EQ(logit.labels(), (std::vector<std::string>{"cat", "dog"}));   // two names for one logit
  const auto a = logit.classify({plain(9, 9, 9)}, ctx)[0];
  EXPECT_EQ(a.probabilities.size(), 2u);
  EXPECT_NEAR(a.probabilities[0] + a.probabilities[1], 1.f, 1e-6f);
}

TEST(Classifier, RefusesWhatIsNotAPictureClassifier) {
  Model top({8});
  top.add(std::make_unique<Dense>(2));
  top.add(std::make_unique<Softmax>());
  top.build(0);
  Classifier c(std::move(top), "top.tagnet");
  try {
    c.classify({plain(0, 0, 0)}, Context{&engine()});
    FAIL() << "classified with a model that takes features";
  } catch (const ModelFileError& e) {
    EXPECT_STREQ(e.what(), "top.tagnet: input shape (8,) is not a picture (H, W, 1) or (H, W, 3)");
  }
  EXPECT_THROW(Classifier(Model({4, 4, 3}), "empty.tagnet"), ModelFileError);
}
