// Teaching new labels (tagnet/train/teach.h): the old outputs do not move, the new ones learn from a
// few pictures, the held-out score and the warnings say how well.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/nn/layers.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/teach.h"

namespace tagnet {
namespace {

// A small multi-label classifier with a flat feature layer below its head: conv, global
// average pooling, Dense(16) + ReLU, then the head Dense(3) + sigmoid.
Model small_classifier(Head head = Head::kSigmoid, int outputs = 3) {
  Model m({16, 16, 3});
  m.add(std::make_unique<Conv2D>(8, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Conv2D>(16, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(32, Activation::kRelu));
  m.add(std::make_unique<Dense>(head == Head::kLogit ? 1 : outputs));
  if (head == Head::kSigmoid) m.add(std::make_unique<Sigmoid>());
  if (head == Head::kSoftmax) m.add(std::make_unique<Softmax>());
  m.build(3);
  m.card().labels = {"red", "green", "blue"};
  m.card().combinations = std::set<std::vector<std::string>>{{"red"}, {"blue", "green"}};
  return m;
}

// A picture with a bright bar in its top or bottom half, anywhere left and right (the
// tutorial's augmentation flips pictures sideways, which must not change the answer).
Image square_picture(bool top, uint64_t seed) {
  Rng rng(seed);
  Image im;
  im.width = im.height = 16;
  im.rgb.assign(16 * 16 * 3, 0);
  for (auto& v : im.rgb) v = static_cast<uint8_t>(rng.below(40));
  const int y0 = top ? int(rng.below(2)) : 10 + int(rng.below(2));
  const int x0 = int(rng.below(8));
  for (int y = y0; y < y0 + 4; ++y)
    for (int x = x0; x < x0 + 8; ++x)
      for (int c = 0; c < 3; ++c) im.rgb[(size_t(y) * 16 + x) * 3 + c] = 230;
  return im;
}

const Engine& engine() {
  static Engine e({1, "hwy"});
  return e;
}

Context ctx() { return Context{&engine(), false, nullptr}; }

Model teach_top_bottom(const Model& m, Teacher& t, int per_label, uint64_t seed = 10) {
  for (int i = 0; i < per_label; ++i) {
    t.add(square_picture(true, seed + 2 * i), {"top"});
    t.add(square_picture(false, seed + 2 * i + 1), {"bottom"});
  }
  std::vector<std::string> phases;
  while (t.step()) phases.push_back(t.progress().phase);
  EXPECT_FALSE(phases.empty());
  EXPECT_EQ(phases.front(), "features");
  EXPECT_EQ(t.progress().phase, "done");
  (void)m;
  return t.result();
}

std::vector<float> outputs(Model& m, const std::vector<Image>& pictures) {
  std::vector<float> out;
  for (const auto& p : classify_images(m, pictures, ctx())) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(Teach, NewLabelsLearnAndOldOutputsStayBitForBit) {
  Model m = small_classifier();
  TeachOptions o;
  Teacher t(m, {"top", "bottom"}, /*one_per_picture=*/true, o, ctx());
  Model taught = teach_top_bottom(m, t, 15);

  const auto labels = taught.card().labels;
  EXPECT_EQ(labels, (std::vector<std::string>{"red", "green", "blue", "top", "bottom"}));
  EXPECT_EQ(model_head(taught), Head::kSigmoid);

  // The old outputs on unseen pictures are the old model's, exactly.
  std::vector<Image> unseen;
  for (int i = 0; i < 20; ++i) unseen.push_back(square_picture(i % 2 == 0, 1000 + i));
  const std::vector<float> before = outputs(m, unseen), after = outputs(taught, unseen);
  int right = 0;
  for (size_t i = 0; i < unseen.size(); ++i) {
    for (int k = 0; k < 3; ++k) EXPECT_EQ(before[i * 3 + k], after[i * 5 + k]) << "picture " << i << " output " << k;
    const bool says_top = after[i * 5 + 3] > after[i * 5 + 4];
    right += says_top == (i % 2 == 0);
  }
  EXPECT_GE(right, 18) << "of 20 unseen pictures";

  // The report: 15 pictures per label, 3 of each kept aside, scored.
  const TeachReport& r = t.report();
  ASSERT_EQ(r.labels.size(), 2u);
  for (const auto& l : r.labels) {
    EXPECT_EQ(l.pictures, 15);
    EXPECT_EQ(l.held_out, 3);
  }
  EXPECT_EQ(r.held_out, 6);
  EXPECT_GE(r.right, 5);
  EXPECT_DOUBLE_EQ(r.chance, 0.5);
  EXPECT_EQ(r.trained_params, 2u * 33u);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  // Only the head trains in the result; the combinations gain the taught pictures' sets.
  EXPECT_EQ(taught.trainable_param_count(), 5u * 33u);
  ASSERT_TRUE(taught.card().combinations);
  EXPECT_GT(taught.card().combinations->size(), 2u);
}

TEST(Teach, SameInputsGiveTheSameModel) {
  Model m = small_classifier();
  Teacher a(m, {"top", "bottom"}, true, {}, ctx()), b(m, {"top", "bottom"}, true, {}, ctx());
  const std::vector<uint8_t> x = teach_top_bottom(m, a, 6).save_bytes(), y = teach_top_bottom(m, b, 6).save_bytes();
  EXPECT_TRUE(x == y);
}

TEST(Teach, AnOldLabelWithPicturesTrainsAndTheOthersDoNot) {
  Model m = small_classifier();
  Teacher t(m, {"green", "top"}, /*one_per_picture=*/false, {}, ctx());
  for (int i = 0; i < 8; ++i) {
    t.add(square_picture(true, 50 + i), {"top"});
    t.add(square_picture(false, 70 + i), {"green"});
    t.add(square_picture(i % 2, 90 + i), {});   // neither
  }
  while (t.step()) {
  }
  Model taught = t.result();
  EXPECT_EQ(taught.card().labels,
            (std::vector<std::string>{"red", "green", "blue", "top"}));
  std::vector<Image> unseen{square_picture(true, 5), square_picture(false, 6)};
  const auto before = outputs(m, unseen), after = outputs(taught, unseen);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(before[i * 3 + 0], after[i * 4 + 0]);   // red: no pictures
    EXPECT_EQ(before[i * 3 + 2], after[i * 4 + 2]);   // blue: no pictures
    EXPECT_NE(before[i * 3 + 1], after[i * 4 + 1]);   // green was taught
  }
  // Multi-label scoring: every held-out picture is scored on both labels.
  const TeachReport& r = t.report();
  EXPECT_EQ(r.labels[0].held_out, r.labels[1].held_out);
  EXPECT_GT(r.held_out, 0);
}

TEST(Teach, ReplacingTheLabels) {
  Model m = small_classifier();
  TeachOptions o;
  o.keep_labels = false;
  Teacher t(m, {"top", "bottom"}, true, o, ctx());
  Model taught = teach_top_bottom(m, t, 6);
  EXPECT_EQ(taught.card().labels, (std::vector<std::string>{"top", "bottom"}));
  EXPECT_EQ(model_head(taught), Head::kSoftmax);
  EXPECT_EQ(taught.card().label_mode, LabelMode::kSingle);
}

TEST(Teach, FewPicturesAndChanceAreSaidPlainly) {
  Model m = small_classifier();
  Teacher t(m, {"a", "b"}, true, {}, ctx());
  // Labels that do not match what the pictures show: a coin flip.
  for (int i = 0; i < 10; ++i) t.add(square_picture(i % 2 == 0, 300 + i), {i < 5 ? "a" : "b"});
  t.add(square_picture(true, 400), {"a"});
  while (t.step()) {
  }
  const TeachReport& r = t.report();
  EXPECT_EQ(r.labels[0].pictures, 6);
  bool few = false, chance = false;
  for (const auto& w : r.warnings) {
    few |= w.find("\"a\" has 6 pictures") != std::string::npos;
    chance |= w.rfind("Near chance", 0) == 0;
  }
  EXPECT_TRUE(few);
  if (double(r.right) / r.held_out < r.chance + 0.5 * (1 - r.chance)) EXPECT_TRUE(chance);

  Teacher tiny(m, {"a", "b"}, true, {}, ctx());
  for (int i = 0; i < 3; ++i) tiny.add(square_picture(true, i), {"a"}), tiny.add(square_picture(false, i), {"b"});
  while (tiny.step()) {
  }
  EXPECT_EQ(tiny.report().held_out, 0);
  EXPECT_NE(tiny.report().warnings.at(0).find("too few to keep any aside"), std::string::npos);
}

TEST(Teach, BadRequestsAreRefused) {
  Model m = small_classifier();
  EXPECT_THROW(Teacher(m, {}, false, {}, ctx()), std::invalid_argument);
  EXPECT_THROW(Teacher(m, {"a", "a"}, false, {}, ctx()), std::invalid_argument);
  EXPECT_THROW(Teacher(m, {"a"}, true, {}, ctx()), std::invalid_argument);
  Model logit = small_classifier(Head::kLogit);
  EXPECT_THROW(Teacher(logit, {"a", "b"}, true, {}, ctx()), std::invalid_argument);
  Model softmax = small_classifier(Head::kSoftmax);
  EXPECT_THROW(Teacher(softmax, {"a", "b"}, false, {}, ctx()), std::invalid_argument);

  Teacher t(m, {"a", "b"}, true, {}, ctx());
  EXPECT_THROW(t.add(square_picture(true, 1), {"c"}), std::invalid_argument);
  EXPECT_THROW(t.add(square_picture(true, 1), {"a", "b"}), std::invalid_argument);
  EXPECT_THROW(t.add(square_picture(true, 1), {}), std::invalid_argument);
  EXPECT_THROW(t.step(), std::invalid_argument);   // no pictures
  t.add(square_picture(true, 1), {"a"});
  EXPECT_THROW(t.step(), std::invalid_argument);   // "b" has none
  EXPECT_THROW(t.result(), std::logic_error);
}

}  // namespace
}  // namespace tagnet
