// Novelty (tagnet/train/novelty.h): training pictures score below 1, pictures unlike them above.
#include <gtest/gtest.h>

#include <memory>

#include "tagnet/data/dataset.h"
#include "tagnet/nn/layers.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/novelty.h"
#include "tagnet/train/teach.h"

namespace tagnet {
namespace {

const Engine& engine() {
  static Engine e({1, "hwy"});
  return e;
}

TEST(Novelty, TrainingPointsScoreBelowOneFarPointsAbove) {
  // Two groups of 500 points in 8 dimensions around different means, spread 1.
  Rng rng(4);
  const int D = 8;
  std::vector<float> f;
  std::vector<int> group;
  for (int i = 0; i < 1000; ++i) {
    for (int d = 0; d < D; ++d) f.push_back((i % 2 ? 5.f : -5.f) + (rng.uniform() + rng.uniform() + rng.uniform() - 1.5f) * 2.f);
    group.push_back(i % 2 ? 7 : 3);
  }
  const NoveltyStats s = novelty_statistics(f.data(), 1000, D, group);
  ASSERT_EQ(s.means.size(), 2u);
  int below = 0;
  for (int i = 0; i < 1000; ++i) below += s.novelty(f.data() + i * D) <= 1.f;
  EXPECT_GE(below, 985);
  EXPECT_LE(below, 995);
  const std::vector<float> between(D, 0.f), far(D, 30.f);
  EXPECT_GT(s.novelty(between.data()), 2.f);
  EXPECT_GT(s.novelty(far.data()), 5.f);

  NoveltyStats back;
  ASSERT_TRUE(NoveltyStats::from_json(s.to_json(), D, back));
  EXPECT_EQ(back.novelty(far.data()), s.novelty(far.data()));
  EXPECT_FALSE(NoveltyStats::from_json(s.to_json(), D + 1, back));
  nlohmann::json bad = s.to_json();
  bad["spread"][0] = 0;
  EXPECT_FALSE(NoveltyStats::from_json(bad, D, back));
  EXPECT_FALSE(NoveltyStats::from_json(nlohmann::json::array(), D, back));
}

// Pictures of one bright colour; a classifier with a flat layer below its head.
class ColourSource : public BatchSource {
 public:
  size_t size() const override { return 200; }
  void fill(const std::vector<size_t>& idx, Tensor& x, Tensor& y, Rng&, bool) override {
    x.resize({int(idx.size()), 8, 8, 3});
    y.resize({int(idx.size()), 2});
    for (size_t b = 0; b < idx.size(); ++b) {
      Rng r(idx[b]);
      const bool red = idx[b] % 2;
      for (int p = 0; p < 64; ++p) {
        x.at(b * 192 + size_t(p) * 3 + 0) = red ? 0.8f + 0.1f * r.uniform() : 0.1f * r.uniform();
        x.at(b * 192 + size_t(p) * 3 + 1) = 0.1f * r.uniform();
        x.at(b * 192 + size_t(p) * 3 + 2) = red ? 0.1f * r.uniform() : 0.8f + 0.1f * r.uniform();
      }
      y.at(b * 2 + 0) = red, y.at(b * 2 + 1) = !red;
    }
  }
};

Image plain(uint8_t r, uint8_t g, uint8_t b) {
  Image im;
  im.width = im.height = 8;
  for (int i = 0; i < 64; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

TEST(Novelty, StoredByTrainingUsedByClassifyExtendedByTeaching) {
  Model m({8, 8, 3});
  m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(16, Activation::kRelu));
  m.add(std::make_unique<Dense>(2));
  m.add(std::make_unique<Sigmoid>());
  m.build(5);
  m.card().labels = {"red", "blue"};
  const Context ctx{&engine(), false, nullptr};
  classify_images(m, {plain(200, 10, 10)}, ctx);
  EXPECT_EQ(novelty_of_last_forward(m, 1), std::vector<float>{-1.f});   // no statistics yet

  ColourSource source;
  learn_novelty(m, source, ctx);
  ASSERT_TRUE(m.card().novelty.is_object());
  classify_images(m, {plain(220, 10, 10), plain(10, 10, 220), plain(10, 230, 10), plain(255, 255, 255)}, ctx);
  const std::vector<float> novelty = novelty_of_last_forward(m, 4);
  EXPECT_LT(novelty[0], 1.5f);   // like the red training pictures
  EXPECT_LT(novelty[1], 1.5f);
  EXPECT_GT(novelty[2], 1.f);    // green was never seen
  EXPECT_GT(novelty[3], 1.f);

  // Teaching green makes green familiar.
  Teacher t(m, {"green"}, false, {}, ctx);
  for (int i = 0; i < 10; ++i) t.add(plain(10, uint8_t(200 + i * 4), 10), {"green"});
  for (int i = 0; i < 10; ++i) t.add(plain(uint8_t(200 + i * 4), 10, 10), {});
  while (t.step()) {
  }
  Model taught = t.result();
  classify_images(taught, {plain(10, 230, 10)}, ctx);
  EXPECT_LT(novelty_of_last_forward(taught, 1)[0], 1.f);

  // Labels taught one per picture say no to the kinds of pictures the model learnt from: its
  // statistics stand in for them.
  Teacher classes(m, {"green", "yellow"}, true, {}, ctx);
  for (int i = 0; i < 10; ++i) {
    classes.add(plain(10, uint8_t(200 + i * 4), 10), {"green"});
    classes.add(plain(uint8_t(200 + i * 4), uint8_t(200 + i * 4), 10), {"yellow"});
  }
  while (classes.step()) {
  }
  Model two = classes.result();
  const auto p = classify_images(two, {plain(10, 10, 220), plain(10, 230, 10)}, ctx);
  EXPECT_LT(p[0][2], 0.5f) << "a blue picture called green";
  EXPECT_LT(p[0][3], 0.5f) << "a blue picture called yellow";
  EXPECT_GT(p[1][2], 0.5f);
}

}  // namespace
}  // namespace tagnet
