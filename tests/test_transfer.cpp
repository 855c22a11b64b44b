// Transfer learning: cutting and joining models, head replacement with a frozen base, the
// feature file, and the 2x2 composite pictures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/composites.h"
#include "tagnet/train/features.h"
#include "tagnet/train/finetune.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/train.h"

#include "container_edit.h"

namespace tagnet {
namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "tagnet_transfer_" + name; }

// 12x12 grey pictures with a bright 4x4 square in one of three places; the class is the place.
class SquareSource : public BatchSource {
 public:
  explicit SquareSource(size_t n, uint64_t seed = 1) : n_(n), seed_(seed) {}
  size_t size() const override { return n_; }
  void fill(const std::vector<size_t>& idx, Tensor& x, Tensor& y, Rng&, bool) override {
    const int B = static_cast<int>(idx.size());
    x.resize({B, 12, 12, 1});
    y.resize({B, 3});
    y.zero();
    for (int b = 0; b < B; ++b) {
      Rng r(seed_ * 1000003 + idx[b]);
      float* p = x.data() + size_t(b) * 144;
      for (int i = 0; i < 144; ++i) p[i] = 0.2f * r.uniform();
      const int cls = static_cast<int>(idx[b] % 3);
      const int r0 = cls == 2 ? 7 : 1, c0 = cls == 1 ? 7 : 1;
      for (int rr = 0; rr < 4; ++rr)
        for (int cc = 0; cc < 4; ++cc) p[(r0 + rr) * 12 + c0 + cc] = 0.8f + 0.2f * r.uniform();
      y.at(size_t(b) * 3 + cls) = 1.f;
    }
  }

 private:
  size_t n_;
  uint64_t seed_;
};

// Two conv blocks with BatchNorm and Dropout (like SmallerVGGNet, small), then a classifier.
Model small_vgg(uint64_t seed = 7) {
  Model m({12, 12, 1});
  m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Dropout>(0.25f));
  m.add(std::make_unique<Conv2D>(6, 3, 1, Padding::kSame));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<Conv2D>(6, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Dropout>(0.25f));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(16, Activation::kRelu));
  m.add(std::make_unique<Dense>(3));
  m.add(std::make_unique<Softmax>());
  m.build(seed);
  return m;
}

std::vector<float> params_of(const Layer& l) {
  std::vector<float> v;
  for (const auto& p : l.params()) v.insert(v.end(), p.value.data(), p.value.data() + p.value.size());
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Tensor forward_copy(Model& m, const Tensor& x, const Context& ctx) { return Tensor(m.forward(x, ctx)); }

Tensor batch_of(BatchSource& s, size_t begin, size_t count, Tensor* y = nullptr) {
  std::vector<size_t> idx(count);
  for (size_t i = 0; i < count; ++i) idx[i] = begin + i;
  Tensor x, t;
  Rng rng(0);
  s.fill(idx, x, t, rng, false);
  if (y) *y = t;
  return x;
}

TEST(Transfer, BaseEndAndLastBlock) {
  Model v = small_vgg();
  EXPECT_EQ(base_end(v), 11u);                 // the Flatten
  EXPECT_EQ(last_block_start(v, 11), 5u);      // the conv after the first pooling
  Model f = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  f.build(0);
  EXPECT_EQ(base_end(f), 8u);
  EXPECT_EQ(f.layer(last_block_start(f, 8)).name, "conv2d_2");
  Model g = make_architecture("smallervggnet", {6, Head::kSigmoid, {}, -1});
  g.build(0);
  const size_t n = base_end(g);
  EXPECT_EQ(g.layer(n).type(), "Flatten");
  const size_t lb = last_block_start(g, n);
  EXPECT_EQ(g.layer(lb).type(), "Conv2D");
  EXPECT_EQ(g.layer(lb).params()[0].shape[0], 128);   // the two 128-filter convolutions
  EXPECT_EQ(g.layer(lb - 1).type(), "Dropout");
  Model dense_only({4});
  dense_only.add(std::make_unique<Dense>(2));
  dense_only.build(0);
  EXPECT_THROW(base_end(dense_only), std::invalid_argument);
}

// The fine-tuning policy names the parts of every tutorial network the same way for the
// command line and the page.
TEST(FineTunePolicy, PartsOfTheTutorialNetworks) {
  Model g = make_architecture("smallervggnet-gap", {6, Head::kSigmoid, {64, 64, 3}, -1});
  g.build(0);
  const size_t head = head_start(g);
  EXPECT_EQ(g.layer(head).kind(), LayerKind::kDense);
  EXPECT_EQ(g.layer(head + 1).kind(), LayerKind::kSigmoid);
  EXPECT_EQ(trainable_from(g, "head"), head);
  EXPECT_EQ(trainable_from(g, "none"), head);
  EXPECT_EQ(trainable_from(g, "all"), 0u);
  // The last block: the two 128-filter convolutions with their ReLU and BatchNorm, after the
  // block before it closed with pooling and dropout.
  const size_t block = trainable_from(g, "last-block");
  EXPECT_EQ(g.layer(block).kind(), LayerKind::kConv2D);
  EXPECT_EQ(g.layer(block).params()[0].shape[0], 128);
  EXPECT_EQ(g.layer(block - 1).kind(), LayerKind::kDropout);
  EXPECT_EQ(g.layer(block - 2).kind(), LayerKind::kMaxPool2D);
  EXPECT_EQ(trainable_from(g, g.layer(block).name), block);
  EXPECT_EQ(trainable_from(g, std::to_string(block)), block);
  for (const char* bad : {"bogus", "999", "99999999999999999999", ""}) {
    try {
      trainable_from(g, bad, kAtHead, "--trainable");
      ADD_FAILURE() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("--trainable " + std::string(bad) + ": expected none, head, last-block"),
                std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("0 conv2d"), std::string::npos) << e.what();
    }
  }

  EXPECT_EQ(set_trainable(g, "last-block"), block);
  for (size_t i = 0; i < g.num_layers(); ++i) EXPECT_EQ(g.layer(i).trainable, i >= block) << i;
  EXPECT_EQ(trainable_from(g, "as-saved"), block);
  EXPECT_EQ(set_trainable(g, "as-saved"), block);   // changes nothing
  for (size_t i = 0; i < g.num_layers(); ++i) EXPECT_EQ(g.layer(i).trainable, i >= block) << i;

  Model f = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  f.build(0);
  EXPECT_EQ(f.layer(trainable_from(f, "last-block")).name, "conv2d_2");
  EXPECT_EQ(f.layer(trainable_from(f, "head")).kind(), LayerKind::kDense);
  // A joined base + top model: the top model's first layer is where "head" starts.
  EXPECT_EQ(trainable_from(f, "head", 7), 7u);
  Model dense_only({4});
  dense_only.add(std::make_unique<Dense>(2));
  dense_only.build(0);
  EXPECT_THROW(trainable_from(dense_only, "head"), std::invalid_argument);
  EXPECT_THROW(trainable_from(dense_only, "last-block"), std::invalid_argument);
}

TEST(FineTunePolicy, ReplacingTheHeadKeepsTheBase) {
  Model g = make_architecture("smallervggnet-gap", {6, Head::kSigmoid, {64, 64, 3}, -1});
  g.build(3);
  const size_t head = head_start(g);
  const std::vector<float> base(g.param_arena(), g.layer(head).params()[0].value.data());
  g.freeze_below(head);
  EXPECT_EQ(cut_and_add_head(g, head_start(g), 2, Head::kSoftmax, 7, false), head);
  EXPECT_EQ(head_start(g), head);
  EXPECT_EQ(model_head(g), Head::kSoftmax);
  EXPECT_EQ(g.output_shape(), Shape{2});
  EXPECT_EQ(std::vector<float>(g.param_arena(), g.layer(head).params()[0].value.data()), base);
  for (size_t i = 0; i < g.num_layers(); ++i) EXPECT_TRUE(g.layer(i).trainable) << i;
  EXPECT_EQ(g.layer(head).name, "dense_1");
  EXPECT_EQ(g.layer(head + 1).name, "softmax");
}

TEST(FineTunePolicy, TutorialAugmentationAndNames) {
  const Augment a = tutorial_augment();
  EXPECT_EQ(a.rotation_deg, 25.f);
  EXPECT_EQ(a.width_shift, 0.1f);
  EXPECT_EQ(a.height_shift, 0.1f);
  EXPECT_EQ(a.shear_deg, 0.2f);
  EXPECT_EQ(a.zoom, 0.2f);
  EXPECT_TRUE(a.hflip);
  EXPECT_EQ(a.fill, FillMode::kNearest);
  for (FillMode m : {FillMode::kNearest, FillMode::kConstant, FillMode::kReflect, FillMode::kWrap})
    EXPECT_EQ(fill_mode_from_name(fill_mode_name(m)), m);
  EXPECT_THROW(fill_mode_from_name("mirror"), std::invalid_argument);
  for (LayerKind k : {LayerKind::kConv2D, LayerKind::kDense, LayerKind::kBatchNorm, LayerKind::kReLU,
                      LayerKind::kSigmoid, LayerKind::kSoftmax, LayerKind::kMaxPool2D, LayerKind::kGlobalAvgPool2D,
                      LayerKind::kDropout, LayerKind::kFlatten})
    EXPECT_EQ(layer_kind_from_name(layer_kind_name(k)), k);
  EXPECT_EQ(layer_kind_name(LayerKind::kBatchNorm), "BatchNormalization");
  EXPECT_THROW(layer_kind_from_name("Conv3D"), std::invalid_argument);
}

TEST(Transfer, FrozenBaseStaysBitIdenticalWhileTheNewHeadTrains) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  Model m = small_vgg();
  // Cut after the last pooling block's dropout: a new sigmoid head for 3 new labels.
  const size_t dense = cut_and_add_head(m, 11, 3, Head::kSigmoid, 5, true);
  EXPECT_EQ(m.layer(dense).type(), "Dense");
  EXPECT_EQ(m.layer(dense - 1).type(), "Flatten");
  EXPECT_EQ(m.layer(m.num_layers() - 1).type(), "Sigmoid");
  EXPECT_EQ(model_head(m), Head::kSigmoid);
  for (size_t i = 0; i < m.num_layers(); ++i) EXPECT_EQ(m.layer(i).trainable, i >= dense) << i;
  EXPECT_EQ(m.trainable_param_count(), m.layer(dense).param_count(true));

  std::vector<std::vector<float>> before;
  for (size_t i = 0; i < m.num_layers(); ++i) before.push_back(params_of(m.layer(i)));
  SquareSource train(96);
  for (const char* opt : {"adam", "sgd"}) {
    Adam adam(1e-2f);
    SGD sgd(0.1f, 0.9f);
    Optimizer& o = std::string(opt) == "adam" ? static_cast<Optimizer&>(adam) : sgd;
    FitOptions fo;
    fo.epochs = 2;
    fo.batch_size = 16;
    fit(m, train, nullptr, o, LossKind::kBinaryCrossentropy, fo, ctx, nullptr);
  }
  for (size_t i = 0; i < dense; ++i)
    EXPECT_TRUE(same_bits(before[i], params_of(m.layer(i)))) << "layer " << i << " " << m.layer(i).name;
  EXPECT_FALSE(same_bits(before[dense], params_of(m.layer(dense))));

  // The frozen flags survive the model file.
  const std::string path = temp_path("head.tagnet");
  m.save(path);
  Model again = Model::load(path);
  for (size_t i = 0; i < m.num_layers(); ++i) EXPECT_EQ(again.layer(i).trainable, m.layer(i).trainable) << i;
  std::remove(path.c_str());
}

TEST(Transfer, CutAnywhereAddsAHeadWithUniqueNames) {
  Model f = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  f.build(3);
  const std::vector<float> conv1 = params_of(f.layer(3));
  // Cut after the second pooling layer (index 4): Flatten, Dense, Softmax follow.
  const size_t dense = cut_and_add_head(f, 5, 4, Head::kSoftmax, 9, true);
  EXPECT_EQ(dense, 6u);
  EXPECT_EQ(f.output_shape(), Shape({4}));
  EXPECT_EQ(f.layer(dense).input_shape, Shape({14 * 14 * 32}));
  EXPECT_TRUE(same_bits(conv1, params_of(f.layer(3))));
  std::set<std::string> names;
  for (size_t i = 0; i < f.num_layers(); ++i) EXPECT_TRUE(names.insert(f.layer(i).name).second) << f.layer(i).name;
  EXPECT_NO_THROW(Model::load_bytes(f.save_bytes().data(), f.save_bytes().size(), "cut"));
  // replace_head keeps the Flatten: the same as cutting before the last Dense.
  Model g = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  g.build(3);
  EXPECT_EQ(cut_and_add_head(g, 9, 10, Head::kSigmoid, 1, true), 9u);
  EXPECT_EQ(g.num_layers(), 11u);
  EXPECT_THROW(cut_and_add_head(g, 0, 3, Head::kSigmoid, 1, true), std::out_of_range);
}

TEST(Transfer, CachedFeaturesEqualAFreshForwardPass) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  Model trained = small_vgg();
  const size_t n = base_end(trained);
  Model base = slice_model(trained, 0, n);
  EXPECT_EQ(base.output_shape(), Shape({3, 3, 6}));
  SquareSource data(50);
  FeatureSet f = extract_features(base, data, 16, ctx);
  f.labels = {"left", "right", "bottom"};
  f.base = base_identity(trained, n);
  f.metadata = {{"dataset", "squares"}};
  const std::string path = temp_path("squares.features");
  f.save(path);
  const FeatureSet g = FeatureSet::load(path);
  EXPECT_EQ(g.size(), 50u);
  EXPECT_EQ(g.feature_shape, Shape({3, 3, 6}));
  EXPECT_EQ(g.labels, f.labels);
  EXPECT_EQ(g.head, Head::kSoftmax);
  EXPECT_EQ(g.base["fingerprint"], f.base["fingerprint"]);
  EXPECT_EQ(g.metadata["dataset"], "squares");
  // A fresh inference pass of the whole trained model over the same batches: the activation
  // of the base's last layer is what was cached, bit for bit.
  for (size_t b = 0; b < 50; b += 16) {
    const size_t count = std::min<size_t>(16, 50 - b);
    Tensor y;
    const Tensor x = batch_of(data, b, count, &y);
    trained.forward(x, ctx);
    const Tensor& act = trained.activation(n - 1);
    ASSERT_EQ(act.size(), count * 54);
    EXPECT_EQ(0, std::memcmp(act.data(), g.features.data() + b * 54, act.size() * sizeof(float))) << b;
    EXPECT_EQ(0, std::memcmp(y.data(), g.targets.data() + b * 3, y.size() * sizeof(float))) << b;
  }
  // Another batching changes nothing beyond rounding.
  const Tensor all = forward_copy(base, batch_of(data, 0, 50), ctx);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_NEAR(all.at(i), g.features.at(i), 1e-5f * (1 + std::fabs(all.at(i))));

  // The fingerprint follows the weights.
  Model other = small_vgg(8);
  EXPECT_NE(base_identity(other, n)["fingerprint"], f.base["fingerprint"]);
  EXPECT_EQ(base_identity(slice_model(trained, 0, n), n)["fingerprint"], f.base["fingerprint"]);
  std::remove(path.c_str());
}

TEST(Transfer, FeatureFileErrorsNameTheFileAndTheProblem) {
  FeatureSet f;
  f.feature_shape = Shape({2, 2, 3});
  f.features = Tensor(Shape({5, 2, 2, 3}));
  for (size_t i = 0; i < f.features.size(); ++i) f.features.at(i) = 0.5f * float(i);
  f.targets = Tensor(Shape({5, 2}));
  f.labels = {"a", "b"};
  const std::vector<uint8_t> good = f.save_bytes();
  auto error = [](std::vector<uint8_t> bytes) -> std::string {
    try {
      FeatureSet::load_bytes(bytes.data(), bytes.size(), "x.features");
    } catch (const FeatureFileError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error(good), "");
  auto flipped = good;
  flipped[flipped.size() - 40] ^= 1;
  EXPECT_EQ(error(flipped), "x.features: corrupt feature data (checksum mismatch)");
  auto header = good;
  header[50] ^= 1;
  EXPECT_EQ(error(header), "x.features: corrupt header (checksum mismatch)");
  EXPECT_NE(error({good.begin(), good.end() - 8}).find("x.features: truncated or corrupt file"), std::string::npos);
  EXPECT_NE(error({good.begin(), good.begin() + 20}).find("shorter than the header"), std::string::npos);
  Model m({4});
  m.add(std::make_unique<Dense>(2));
  m.build(0);
  EXPECT_EQ(error(m.save_bytes()), "x.features: this is a tagnet model, not a feature file");
  auto magic = good;
  magic[0] = 'X';
  EXPECT_EQ(error(magic), "x.features: not a tagnet feature file (wrong magic bytes)");
  try {
    FeatureSet::load(temp_path("missing.features"));
    ADD_FAILURE();
  } catch (const FeatureFileError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.features: cannot open"), std::string::npos) << e.what();
  }
  // A subset keeps rows in the order asked.
  const FeatureSet s = f.subset({3, 1});
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.features.at(0), f.features.at(36));
  EXPECT_EQ(s.features.at(12), f.features.at(12));
}

// Every size in a feature file's header is an integer in range before it is used, and their
// product is checked against the data section without overflowing.
TEST(Transfer, FeatureFileSizesAreCheckedBeforeUse) {
  FeatureSet f;
  f.feature_shape = Shape({2, 2, 3});
  f.features = Tensor(Shape({5, 2, 2, 3}));
  f.targets = Tensor(Shape({5, 2}));
  f.labels = {"a", "b"};
  const std::vector<uint8_t> good = f.save_bytes();
  auto error = [&](const std::function<void(nlohmann::json&)>& edit) -> std::string {
    const std::vector<uint8_t> bytes = with_header(good, edit);
    try {
      FeatureSet::load_bytes(bytes.data(), bytes.size(), "x.features");
    } catch (const FeatureFileError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error([](nlohmann::json& h) { h["count"] = 4.5e+21; }),
            "x.features: bad header: count must be an integer in [1, 1073741824], found 4.5e+21");
  EXPECT_EQ(error([](nlohmann::json& h) { h["outputs"] = -2; }),
            "x.features: bad header: outputs must be an integer in [1, 1048576], found -2");
  EXPECT_EQ(error([](nlohmann::json& h) { h["feature_shape"] = {2, 2, 4294967299u}; }),
            "x.features: bad header: feature_shape sizes must be an integer in [1, 1048576], found 4294967299");
  EXPECT_EQ(error([](nlohmann::json& h) { h["tensors"][1]["offset"] = 1e300; }),
            "x.features: bad header: tensor 'targets' offset must be an integer in [0, 9007199254740992], "
            "found 1e+300");
  // 2^30 examples of 2^60 floats: 2^92 bytes, which wraps to 0 in 64 bits.
  EXPECT_EQ(error([](nlohmann::json& h) {
              h["count"] = 1 << 30;
              h["feature_shape"] = {1 << 20, 1 << 20, 1 << 20};
            }),
            "x.features: the data section holds 320 bytes, too few for 1073741824 examples of "
            "1152921504606846978 floats");
  EXPECT_EQ(error([](nlohmann::json& h) { h["head"] = "sof\nt"; }),
            "x.features: bad header: unknown head 'sof?t' (softmax, sigmoid, logit)");
  nlohmann::json h = header_of(good);
  h["metadata"] = "NESTED";
  std::string text = h.dump();
  text.replace(text.find("\"NESTED\""), 8, nested_arrays(200000));
  const std::vector<uint8_t> deep = with_header_text(good, text);
  EXPECT_THROW(
      {
        try {
          FeatureSet::load_bytes(deep.data(), deep.size(), "x.features");
        } catch (const FeatureFileError& e) {
          EXPECT_STREQ(e.what(), "x.features: JSON nested deeper than 64 levels");
          throw;
        }
      },
      FeatureFileError);
}

TEST(Transfer, SavedTopAndBaseReproduceTheFineTunedModel) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  Model trained = small_vgg();
  const size_t n = base_end(trained);
  Model base = slice_model(trained, 0, n);
  SquareSource data(64), val(30, 2);
  const FeatureSet f = extract_features(base, data, 32, ctx);
  Model top = make_top_model(f.feature_shape, 3, Head::kSoftmax, 8, 0.5f, 4);
  FeatureSource fs(f);
  SGD sgd(0.05f, 0.9f);
  FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 16;
  fit(top, fs, nullptr, sgd, LossKind::kCategoricalCrossentropy, fo, ctx, nullptr);

  // Joined: pictures in, the top model's outputs out.
  Model joined = join_models(base, top);
  ASSERT_EQ(joined.num_layers(), base.num_layers() + top.num_layers());
  std::set<std::string> names;
  for (size_t i = 0; i < joined.num_layers(); ++i) EXPECT_TRUE(names.insert(joined.layer(i).name).second);
  const Tensor x = batch_of(val, 0, 30);
  const Tensor feats = forward_copy(base, x, ctx);
  EXPECT_TRUE(same_bits(forward_copy(joined, x, ctx), forward_copy(top, feats, ctx)));

  // Fine-tune the last block and the top; then save the two parts separately and join again.
  joined.freeze_below(last_block_start(joined, n));
  const std::vector<float> frozen = params_of(joined.layer(2));   // first block's BatchNorm
  SquareSource aug(64, 3);
  SGD slow(1e-3f, 0.9f);
  fit(joined, aug, nullptr, slow, LossKind::kCategoricalCrossentropy, fo, ctx, nullptr);
  EXPECT_TRUE(same_bits(frozen, params_of(joined.layer(2))));
  EXPECT_FALSE(same_bits(params_of(base.layer(5)), params_of(joined.layer(5))));
  const std::string whole = temp_path("finetuned.tagnet"), tpath = temp_path("top.tagnet"),
                    bpath = temp_path("base.tagnet");
  joined.save(whole);
  slice_model(joined, n, joined.num_layers()).save(tpath);
  slice_model(joined, 0, n).save(bpath);
  Model finetuned = Model::load(whole);
  Model rejoined = join_models(Model::load(bpath), Model::load(tpath));
  const Tensor want = forward_copy(finetuned, x, ctx);
  EXPECT_TRUE(same_bits(want, forward_copy(rejoined, x, ctx)));
  EXPECT_TRUE(same_bits(want, forward_copy(joined, x, ctx)));
  // Mismatched shapes are refused with both shapes named.
  Model wrong = make_top_model(Shape({4, 4, 6}), 3, Head::kSoftmax);
  try {
    join_models(base, wrong);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "the top model takes (4, 4, 6) but the base gives (3, 3, 6)");
  }
  for (auto& p : {whole, tpath, bpath}) std::remove(p.c_str());
}

TEST(Transfer, TopModelOnFeaturesLearns) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  Model trained = small_vgg();   // untrained weights still separate the three places
  Model base = slice_model(trained, 0, base_end(trained));
  SquareSource train(120), val(60, 5);
  const FeatureSet ft = extract_features(base, train, 32, ctx), fv = extract_features(base, val, 32, ctx);
  Model top = make_top_model(ft.feature_shape, 3, Head::kSoftmax, 32, 0.5f, 1);
  EXPECT_EQ(top.layer(0).type(), "Flatten");
  EXPECT_EQ(top.layer(2).type(), "Dropout");
  FeatureSource ts(ft), vs(fv);
  SGD sgd(0.05f, 0.9f);
  FitOptions fo;
  fo.epochs = 20;
  fo.batch_size = 16;
  auto h = fit(top, ts, &vs, sgd, LossKind::kCategoricalCrossentropy, fo, ctx, nullptr);
  EXPECT_GT(h.back().val.accuracy, 0.9);
}

std::vector<uint8_t> cell_pictures(int count, std::vector<uint8_t>& labels) {
  // 4x4 sources: picture k is filled with k + 1, its class is k % 3.
  std::vector<uint8_t> px(size_t(count) * 16);
  labels.resize(count);
  for (int k = 0; k < count; ++k) {
    std::fill(px.begin() + k * 16, px.begin() + (k + 1) * 16, static_cast<uint8_t>(k + 1));
    labels[k] = static_cast<uint8_t>(k % 3);
  }
  return px;
}

TEST(Composites, FixedSetIsSeededAndTargetsAreTheClassesShown) {
  std::vector<uint8_t> labels;
  std::vector<uint8_t> px = cell_pictures(30, labels);
  GridComposites::Options o;
  o.count = 400;
  o.seed = 1;
  GridComposites set(px, labels, 4, 4, 3, o);
  EXPECT_EQ(set.height(), 8);
  std::vector<size_t> idx(400);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Tensor x, y, x2, y2;
  Rng r1(1), r2(99);
  set.fill(idx, x, y, r1, true);
  set.fill(idx, x2, y2, r2, false);
  EXPECT_TRUE(same_bits(x, x2));
  EXPECT_TRUE(same_bits(y, y2));
  std::set<int> item_counts;
  for (size_t b = 0; b < 400; ++b) {
    const float* p = x.data() + b * 64;
    std::vector<float> want(3, 0.f);
    int items = 0;
    for (int cell = 0; cell < 4; ++cell) {
      const int r0 = (cell / 2) * 4, c0 = (cell % 2) * 4;
      const float v = p[r0 * 8 + c0];
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) ASSERT_EQ(p[(r0 + r) * 8 + c0 + c], v);   // one source per cell
      if (v == 0.f) continue;
      ++items;
      const int k = static_cast<int>(std::lround(v * 255.f)) - 1;
      want[labels[k]] = 1.f;
    }
    item_counts.insert(items);
    for (int c = 0; c < 3; ++c) ASSERT_EQ(y.at(b * 3 + c), want[c]) << b;
  }
  EXPECT_EQ(item_counts, (std::set<int>{0, 1, 2, 3, 4}));
  o.seed = 2;
  GridComposites other(px, labels, 4, 4, 3, o);
  other.fill(idx, x2, y2, r1, false);
  EXPECT_FALSE(same_bits(x, x2));
}

TEST(Composites, FreshSetChangesEveryEpoch) {
  std::vector<uint8_t> labels;
  std::vector<uint8_t> px = cell_pictures(50, labels);
  GridComposites::Options o;
  o.count = 64;
  o.fresh = true;
  GridComposites set(px, labels, 4, 4, 3, o);
  std::vector<size_t> idx(64);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Tensor x, y, x2, y2, x3, y3;
  Rng rng(5), same(5);
  set.fill(idx, x, y, rng, true);
  set.fill(idx, x2, y2, rng, true);
  set.fill(idx, x3, y3, same, true);
  EXPECT_FALSE(same_bits(x, x2));
  EXPECT_TRUE(same_bits(x, x3));   // reproducible from the training seed
  o.max_items = 5;
  EXPECT_THROW(GridComposites(px, labels, 4, 4, 3, o), std::invalid_argument);
  labels[0] = 7;
  o.max_items = 4;
  EXPECT_THROW(GridComposites(px, labels, 4, 4, 3, o), std::invalid_argument);
}

}  // namespace
}  // namespace tagnet
