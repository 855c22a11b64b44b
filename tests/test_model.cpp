// The model: architectures, the model file, training behaviour and optimizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <cmath>
#include <utility>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/nn/loss.h"
#include "tagnet/nn/model.h"
#include "tagnet/train/train.h"

#include "container_edit.h"
#include "small_models.h"

namespace tagnet {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "tagnet_" + name;
}

TEST(Architectures, ParameterCountsMatchKeras) {
  Model f = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  f.build(0);
  EXPECT_EQ(f.param_count(), 41786u);
  EXPECT_EQ(f.trainable_param_count(), 41786u);
  Model v = make_architecture("smallervggnet", {6, Head::kSigmoid, {}, -1});
  v.build(0);
  EXPECT_EQ(v.trainable_param_count(), 8676422u);
  EXPECT_EQ(v.param_count() - v.trainable_param_count(), 2880u);   // BN moving statistics
  EXPECT_EQ(v.output_shape(), Shape({6}));
  // The web page's network: the same convolutions, the classifier on their averaged channels.
  Model g = make_architecture("smallervggnet-gap-linear", {13, Head::kSigmoid, {64, 64, 3}, -1});
  g.build(0);
  EXPECT_EQ(g.param_count(), 281101u);
  EXPECT_EQ(g.param_count() - g.trainable_param_count(), 832u);
  EXPECT_EQ(g.layer(g.num_layers() - 2).input_shape, Shape({128}));
  Model c = make_architecture("catsdogs", {2, Head::kLogit, {}, 0.2f});
  c.build(0);
  EXPECT_EQ(c.output_shape(), Shape({1}));
  EXPECT_THROW(make_architecture("resnet", {}), std::invalid_argument);
}

TEST(Architectures, SummaryLooksLikeKeras) {
  Model f = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  f.build(0);
  const std::string s = f.summary();
  EXPECT_NE(s.find("conv2d (Conv2D)"), std::string::npos) << s;
  EXPECT_NE(s.find("conv2d_1 (Conv2D)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 56, 56, 16)"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 41,786"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 0"), std::string::npos) << s;
}

TEST(Init, GlorotUniformWithinLimitAndSeeded) {
  Model a = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  Model b = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  Model c = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  a.build(5);
  b.build(5);
  c.build(6);
  const Param& k = a.layer(0).params()[0];   // 2x2x1 -> 16: limit sqrt(6 / (4 + 64))
  const float limit = std::sqrt(6.f / (4 + 64));
  double sumsq = 0;
  for (size_t i = 0; i < k.value.size(); ++i) {
    EXPECT_LE(std::abs(k.value.at(i)), limit);
    sumsq += k.value.at(i) * k.value.at(i);
  }
  EXPECT_GT(sumsq / k.value.size(), limit * limit / 3 * 0.5);   // not all near zero
  const Param& bias = a.layer(0).params()[1];
  for (size_t i = 0; i < bias.value.size(); ++i) EXPECT_EQ(bias.value.at(i), 0.f);
  EXPECT_TRUE(std::equal(a.param_arena(), a.param_arena() + a.arena_size(), b.param_arena()));
  EXPECT_FALSE(std::equal(a.param_arena(), a.param_arena() + a.arena_size(), c.param_arena()));
}

TEST(ModelFile, RoundTripIsBitExactWithOptimizerState) {
  Engine engine(Engine::Options{2, "auto"});
  Model m = small_vgg_like();
  Rng rng(1);
  Tensor x({4, 8, 8, 3}), t({4, 5});
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform();
  for (size_t i = 0; i < t.size(); ++i) t.at(i) = rng.below(2);
  Adam adam(1e-3f, 1e-4f);
  const Context ctx{&engine, true, &rng, 0};
  for (int i = 0; i < 3; ++i) m.train_step(x, t, LossKind::kBinaryCrossentropy, adam, ctx);
  m.layer(0).trainable = false;
  const std::string path = temp_path("roundtrip.tagnet");
  m.save(path, &adam);
  std::unique_ptr<Optimizer> opt;
  Model back = Model::load(path, &opt);
  ASSERT_EQ(back.arena_size(), m.arena_size());
  EXPECT_EQ(0, std::memcmp(back.param_arena(), m.param_arena(), m.arena_size() * sizeof(float)));
  EXPECT_EQ(back.card().labels, m.card().labels);
  EXPECT_FALSE(back.layer(0).trainable);
  EXPECT_EQ(back.layer(2).name, "batch_normalization");
  ASSERT_TRUE(opt);
  EXPECT_EQ(opt->type(), "Adam");
  EXPECT_EQ(opt->iterations, 3);
  auto s1 = adam.state(), s2 = opt->state();
  ASSERT_EQ(s1.size(), s2.size());
  for (size_t i = 0; i < s1.size(); ++i) EXPECT_TRUE(*s1[i].second == *s2[i].second);
  // Same outputs, and saving again gives the same bytes.
  const Context ictx{&engine, false, nullptr, 0};
  Tensor a = m.forward(x, ictx);
  Tensor b = back.forward(x, ictx);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  EXPECT_EQ(m.save_bytes(&adam), back.save_bytes(opt.get()));
  std::remove(path.c_str());
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  try {
    Model::load_bytes(bytes.data(), bytes.size(), "test.tagnet");
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelFile, RejectsDamagedFilesWithClearErrors) {
  Model m = small_vgg_like();
  const std::vector<uint8_t> good = m.save_bytes();
  EXPECT_EQ(load_error(good), "");

  EXPECT_NE(load_error({}).find("not a tagnet model"), std::string::npos);
  auto bad_magic = good;
  bad_magic[0] = 'X';
  EXPECT_NE(load_error(bad_magic).find("wrong magic"), std::string::npos);
  auto bad_version = good;
  bad_version[8] = 99;
  EXPECT_NE(load_error(bad_version).find("version 99"), std::string::npos);
  // Every truncation point is rejected without a crash.
  for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 300)) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + n);
    EXPECT_NE(load_error(cut), "") << "truncated at " << n;
  }
  auto bad_data = good;
  bad_data[good.size() - 5] ^= 0x40;
  EXPECT_NE(load_error(bad_data).find("checksum"), std::string::npos);
  auto bad_json = good;
  bad_json[45] ^= 0x01;
  EXPECT_NE(load_error(bad_json).find("checksum"), std::string::npos);
  // Random byte flips anywhere: always an error, never a crash.
  Rng rng(2);
  for (int i = 0; i < 200; ++i) {
    auto f = good;
    f[rng.below(static_cast<uint32_t>(f.size()))] ^= static_cast<uint8_t>(1 + rng.below(255));
    EXPECT_NE(load_error(f), "");
  }
  EXPECT_THROW(Model::load("/nonexistent/model.tagnet"), ModelFileError);
}

// Numbers in the header are integers in range before they are used: converting 4.5e+21 to
// int is undefined behaviour, and 2^32 + 5 would quietly become 5.
TEST(ModelFile, HeaderNumbersMustBeIntegersInRange) {
  const std::vector<uint8_t> good = small_vgg_like().save_bytes();
  auto error = [&](const std::function<void(nlohmann::json&)>& edit) { return load_error(with_header(good, edit)); };
  EXPECT_EQ(error([](nlohmann::json& h) { h["architecture"]["input_shape"][0] = 4.5e+21; }),
            "test.tagnet: bad header: input_shape sizes must be an integer in [1, 65536], found 4.5e+21");
  EXPECT_EQ(error([](nlohmann::json& h) { h["architecture"]["layers"][6]["config"]["units"] = 4294967301u; }),
            "test.tagnet: bad header: Dense units must be an integer in [1, 1048576], found 4294967301");
  EXPECT_EQ(error([](nlohmann::json& h) { h["architecture"]["layers"][0]["config"]["kernel_size"] = 2.5; }),
            "test.tagnet: bad header: Conv2D kernel_size must be an integer in [1, 65536], found 2.5");
  EXPECT_EQ(error([](nlohmann::json& h) { h["tensors"][0]["offset"] = -32; }),
            "test.tagnet: bad header: tensor 'conv2d/kernel' offset must be an integer in [0, 9007199254740992], "
            "found -32");
  EXPECT_EQ(error([](nlohmann::json& h) { h["tensors"][0]["shape"][0] = 1e300; }),
            "test.tagnet: bad header: tensor 'conv2d/kernel' shape sizes must be an integer in [1, 2147483647], "
            "found 1e+300");
  // A whole number written as a float is still that number.
  EXPECT_EQ(error([](nlohmann::json& h) { h["architecture"]["layers"][6]["config"]["units"] = 5.0; }), "");
}

// What an error quotes from the file stays on one line of bounded length.
TEST(ModelFile, ErrorsQuotingTheFileStayOnOneLine) {
  const std::vector<uint8_t> good = small_vgg_like().save_bytes();
  EXPECT_EQ(load_error(with_header(good, [](nlohmann::json& h) { h["architecture"]["layers"][0]["type"] = "Conv\n2D"; })),
            "test.tagnet: bad header: unknown layer type 'Conv?2D'");
  // nlohmann's parse error quotes the whole token it stopped in.
  const std::string e = load_error(with_header_text(good, "{\"format\": \"" + std::string(10000, 'T') + "\xff\"}"));
  EXPECT_EQ(e.rfind("test.tagnet: bad header: [json.exception.parse_error.101]", 0), 0u) << e;
  EXPECT_LE(e.size(), 13 + 512 + 3);
  EXPECT_EQ(e.substr(e.size() - 3), "...");
}

// A flattened size past int is refused, not wrapped into a small one.
TEST(ModelFile, DerivedSizesStayWithinInt) {
  Model m({4});
  m.add(std::make_unique<Dense>(2));
  m.build(0);
  const std::vector<uint8_t> good = m.save_bytes();
  const std::string e = load_error(with_header(good, [](nlohmann::json& h) {
    h["architecture"]["input_shape"] = {1024, 1024, 2048};
    const nlohmann::json flatten = {{"type", "Flatten"}, {"name", "flatten"}, {"config", nlohmann::json::object()}};
    h["architecture"]["layers"].insert(h["architecture"]["layers"].begin(), flatten);
  }));
  EXPECT_EQ(e, "test.tagnet: bad header: flatten: flattened size 2147483648 out of range");
}

// Copying or printing JSON recurses once per level: a header nested 200,000 deep would overflow
// the stack, so nesting is limited while parsing.
TEST(ModelFile, DeeplyNestedHeaderIsRefused) {
  const std::vector<uint8_t> good = small_vgg_like().save_bytes();
  nlohmann::json h = header_of(good);
  h["metadata"] = {{"deep", "NESTED"}};
  const std::string text = h.dump();
  auto with_metadata = [&](size_t levels) {
    std::string t = text;
    t.replace(t.find("\"NESTED\""), 8, nested_arrays(levels));
    return with_header_text(good, t);
  };
  EXPECT_EQ(load_error(with_metadata(200000)), "test.tagnet: JSON nested deeper than 64 levels");
  EXPECT_EQ(load_error(with_metadata(63)), "test.tagnet: JSON nested deeper than 64 levels");
  // The header's object, the metadata object and 62 arrays in it: 64 levels, the most allowed.
  const std::vector<uint8_t> deepest = with_metadata(62);
  EXPECT_EQ(load_error(deepest), "");
  Model back = Model::load_bytes(deepest.data(), deepest.size(), "test.tagnet");
  EXPECT_EQ(back.card().other["deep"].dump(), nested_arrays(62));
}

// Layers get Keras' names, counted per kind, also after a cut.
TEST(Model, NamesLayersPerKindAlsoAfterACut) {
  Model m({4});
  for (int i = 0; i < 3; ++i) m.add(std::make_unique<Dense>(4));
  m.add(std::make_unique<ReLU>());
  EXPECT_EQ(m.layer(2).name, "dense_2");
  EXPECT_EQ(m.layer(3).name, "re_lu");
  m.truncate(1);
  EXPECT_EQ(m.add(std::make_unique<Dense>(2)).name, "dense_1");
  EXPECT_EQ(m.add(std::make_unique<ReLU>()).name, "re_lu");
}

// The card reads every key tagnet writes into its field and writes it back unchanged; keys it
// does not know are kept, and a file with only some keys (an older one) reads.
TEST(ModelCard, EveryKeyRoundTripsAndUnknownKeysAreKept) {
  const nlohmann::json md = {
      {"labels", {"black", "dress", "red"}},
      {"label_mode", "multi"},
      {"head", "sigmoid"},
      {"architecture", "smallervggnet"},
      {"description", "clothing colours and kinds"},
      {"input", "features"},
      {"preprocessing", {{"color", "rgb"}, {"scale", 1.0 / 255}, {"resize", "area"}, {"mean", {0.485, 0.456, 0.406}},
                         {"std", {0.229, 0.224, 0.225}}, {"crop", "centre"}}},
      {"combinations", nlohmann::json::array({{"black", "dress"}, {"dress", "red"}})},
      {"threshold", 0.5},
      {"thresholds", {0.4, 0.5, 0.6}},
      {"novelty", {{"means", {{1.0}}}, {"spread", {1.0}}, {"threshold", 2.0}}},
      {"training", {{"epochs", 75}, {"seed", 42}}},
      {"data", {{"dataset", "fashion-color/dataset"}}},
      {"imported", {{"format", "onnx"}}},
      {"replaced_head", {{"cut", 20}}},
      {"fine_tuned", {{"recipe", "teach"}, {"date", "2026-12-07T10:00:00Z"}}},
      {"base", {{"layers", 21}}},
      {"metrics", {{"exact_match", 0.97}}},
      {"metrics_before_finetuning", {{"exact_match", 0.9}}},
      {"history", {{{"loss", 0.5}}}},
      {"from_a_newer_tagnet", {{"anything", {1, 2, 3}}}},
  };
  const ModelCard card = ModelCard::from_json(md);
  EXPECT_EQ(card.labels, (std::vector<std::string>{"black", "dress", "red"}));
  EXPECT_EQ(card.mode(Head::kSoftmax), LabelMode::kMulti);
  EXPECT_EQ(card.head, Head::kSigmoid);
  ASSERT_TRUE(card.preprocessing);
  EXPECT_EQ(card.preprocessing->stddev, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(card.preprocessing->other["crop"], "centre");
  EXPECT_EQ(card.threshold_for(2), 0.6);
  EXPECT_EQ(card.provenance.fine_tuned["recipe"], "teach");
  EXPECT_EQ(card.other["from_a_newer_tagnet"]["anything"][2], 3);
  EXPECT_EQ(card.to_json(), md);

  const ModelCard old = ModelCard::from_json({{"labels", {"cat", "dog"}}});
  EXPECT_EQ(old.mode(Head::kSigmoid), LabelMode::kMulti);   // no label_mode: the head's
  EXPECT_EQ(old.mode(Head::kLogit), LabelMode::kSingle);
  EXPECT_EQ(old.threshold_for(0), 0.5);
  EXPECT_EQ(old.to_json(), nlohmann::json({{"labels", {"cat", "dog"}}}));

  // Through a model file, with the unknown key.
  Model m = small_vgg_like();
  m.card() = ModelCard::from_json(md);
  m.card().labels = {"a", "b", "c", "d", "e"};
  m.card().thresholds = {0.5, 0.5, 0.5, 0.5, 0.5};
  const std::vector<uint8_t> bytes = m.save_bytes();
  EXPECT_EQ(Model::load_bytes(bytes.data(), bytes.size(), "card.tagnet").card().to_json(), m.card().to_json());

  ModelCard relabelled = ModelCard::from_json(md);
  relabelled.forget_training_results();
  for (const char* gone : {"combinations", "thresholds", "description", "metrics", "history"})
    EXPECT_FALSE(relabelled.to_json().contains(gone)) << gone;
  EXPECT_TRUE(relabelled.to_json().contains("novelty"));
}

// `tagnet classify` reads a probability per label name: a one-logit head gives two.
TEST(ModelFile, NoMoreLabelNamesThanProbabilities) {
  Model logit({3});
  logit.add(std::make_unique<Dense>(1));
  logit.build(0);
  logit.card().labels = {"cat", "dog"};
  EXPECT_EQ(load_error(logit.save_bytes()), "");
  logit.card().labels = {"cat", "dog", "fox"};
  EXPECT_EQ(load_error(logit.save_bytes()), "test.tagnet: 3 label names for 1 model outputs");

  Model m = small_vgg_like();  // 5 sigmoid outputs
  m.card().labels = {"a", "b", "c", "d", "e", "f"};
  EXPECT_EQ(load_error(m.save_bytes()), "test.tagnet: 6 label names for 5 model outputs");
  // A base cut from a classifier keeps the classifier's labels; fewer names than outputs is fine.
  m.card().labels = {"a", "b"};
  const std::vector<uint8_t> good = m.save_bytes();
  EXPECT_EQ(load_error(good), "");
  // Metadata that tagnet reads as one JSON type is refused, with the file's name, in another,
  // and so are values it cannot read.
  const std::pair<nlohmann::json, std::string> refused[] = {
      {{{"labels", {"a", 7}}}, "metadata labels must be a list of names"},
      {{{"preprocessing", {1, 2}}}, "metadata preprocessing must be a JSON object, not array"},
      {{{"preprocessing", {{"mean", "x"}}}}, "metadata preprocessing.mean must be a list of numbers, one per channel"},
      {{{"label_mode", 3}}, "metadata label_mode must be text, not number"},
      {{{"label_mode", "many"}}, "metadata label_mode cannot be read: unknown label mode 'many' (multi, single)"},
      {{{"head", "tanh"}}, "metadata head cannot be read: unknown head 'tanh' (softmax, sigmoid, logit)"},
      {{{"combinations", "red"}}, "metadata combinations must be a list, not string"},
      {{{"combinations", {"red"}}}, "metadata combinations must be a list of label lists"},
      {{{"threshold", 2}}, "metadata threshold must be a number from 0 to 1"},
      {{{"thresholds", {0.5, "x"}}}, "metadata thresholds must be a list of numbers"},
      {{{"training", 1}}, "metadata training must be a JSON object, not number"},
  };
  for (const auto& [md, error] : refused) {
    const auto bad = with_header(good, [&](nlohmann::json& h) { h["metadata"].update(md); });
    EXPECT_EQ(load_error(bad), "test.tagnet: " + error) << md.dump();
  }
  const auto listed = with_header(m.save_bytes(), [](nlohmann::json& h) { h["metadata"] = {1, 2}; });
  EXPECT_EQ(load_error(listed), "test.tagnet: metadata must be a JSON object");
}

// Valid in form, meaningless in value: a weight that is NaN or infinite (every answer would be
// NaN), and a tensor listed twice (which entry would hold the weights?).
TEST(ModelFile, NonFiniteWeightsAndTensorsListedTwiceAreRefused) {
  Model m({3});
  m.add(std::make_unique<Dense>(2));
  m.build(0);
  const std::vector<uint8_t> good = m.save_bytes();
  m.layer(0).params()[0].value.at(3) = std::nanf("");
  EXPECT_EQ(load_error(m.save_bytes()), "test.tagnet: tensor 'dense/kernel' holds nan at index 3");
  m.layer(0).params()[0].value.at(3) = 0;
  m.layer(0).params()[1].value.at(1) = -INFINITY;
  EXPECT_EQ(load_error(m.save_bytes()), "test.tagnet: tensor 'dense/bias' holds -inf at index 1");
  const auto twice = with_header(good, [](nlohmann::json& h) { h["tensors"].push_back(h["tensors"][0]); });
  EXPECT_EQ(load_error(twice), "test.tagnet: tensor 'dense/kernel' is listed twice");
  EXPECT_EQ(load_error(good), "");
}

// A few bytes of input shape can ask for gigabytes of layer outputs: refused when loaded.
TEST(ModelFile, HugeInputsAreRefusedBeforeInference) {
  Model m({8, 8, 3});
  m.add(std::make_unique<Conv2D>(32, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<GlobalAvgPool2D>());
  m.add(std::make_unique<Dense>(2));
  m.build(0);
  const auto at = [&](int side) {
    return with_header(m.save_bytes(), [side](nlohmann::json& h) {
      h["architecture"]["input_shape"] = {side, side, 3};
    });
  };
  EXPECT_EQ(load_error(at(1024)), "");   // 1024 x 1024 x 35 floats: 140 MB
  EXPECT_EQ(load_error(at(1025)), "test.tagnet: bad header: input (1025, 1025, 3) is more than tagnet's 1024 pixels per side");
  EXPECT_EQ(load_error(at(65536)), "test.tagnet: bad header: input (65536, 65536, 3) is more than tagnet's 1024 pixels per side");
  Model big({1024, 1024, 3});
  big.add(std::make_unique<Conv2D>(300, 3, 1, Padding::kSame, Activation::kNone));
  try {
    big.build(0);
    ADD_FAILURE() << "built";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("picture would take more than 1024 MB of layer outputs"), std::string::npos) << e.what();
  }
}

// A few hundred bytes of header can describe gigabytes of weights: the sizes are checked against
// the data section before anything is allocated.
TEST(ModelFile, WeightsAreFoundInTheDataSectionBeforeAllocating) {
  Model m({4});
  m.add(std::make_unique<Dense>(2));
  m.build(0);
  const std::vector<uint8_t> good = m.save_bytes();
  // (1024,) -> Dense(2^20): 4 GiB of kernel in a file of a few hundred bytes.
  const std::vector<uint8_t> huge = with_header(good, [](nlohmann::json& h) {
    h["architecture"]["input_shape"] = {1024};
    h["architecture"]["layers"][0]["config"]["units"] = 1 << 20;
    h["tensors"][0]["shape"] = {1 << 20, 1024};
    h["metadata"] = nlohmann::json::object();
  });
  EXPECT_LT(huge.size(), 512u);
  EXPECT_EQ(load_error(huge), "test.tagnet: tensor 'dense/kernel' lies outside the data section (offset 0)");
  // Layers whose weights all lie at offset 0 add up to more than the data section holds.
  const std::vector<uint8_t> shared = with_header(good, [](nlohmann::json& h) {
    auto& layers = h["architecture"]["layers"];
    for (int i = 1; i < 40; ++i) {
      layers.push_back(layers[0]);
      layers.back()["name"] = "d" + std::to_string(i);
      h["tensors"].push_back({{"name", "d" + std::to_string(i) + "/kernel"}, {"dtype", "f32"}, {"shape", {2, 2}},
                              {"offset", 0}});
      h["tensors"].push_back({{"name", "d" + std::to_string(i) + "/bias"}, {"dtype", "f32"}, {"shape", {2}},
                              {"offset", 0}});
    }
  });
  EXPECT_NE(load_error(shared).find("test.tagnet: the parameters take more than the 64 bytes of the data section"),
            std::string::npos) << load_error(shared);
}

TEST(ModelFile, SaveIsAtomic) {
  Model m = small_vgg_like();
  const std::string path = temp_path("atomic.tagnet");
  write_file(path, {1, 2, 3});
  m.save(path);
  EXPECT_EQ(read_file(path), m.save_bytes());
  // A failed save leaves no file behind.
  EXPECT_THROW(m.save("/nonexistent-dir/x.tagnet"), std::runtime_error);
  // The temporary file of a save that was killed (no such process) goes with the next save;
  // one of a live process stays.
  const std::string stale = path + ".tmp-999999999";
  write_file(stale, {1});
  write_file(path + ".tmp-1", {1});  // init is alive
  m.save(path);
  EXPECT_FALSE(std::ifstream(stale).good());
  EXPECT_TRUE(std::ifstream(path + ".tmp-1").good());
  std::remove((path + ".tmp-1").c_str());
  std::remove(path.c_str());
}

TEST(ModelFile, AFolderGivesAOneLineError) {
  const std::string dir = temp_path("folder.tagnet");
  std::filesystem::create_directories(dir);
  try {
    Model::load(dir);
    FAIL() << "a folder loaded as a model";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": cannot read (Is a directory)");
  }
  std::filesystem::remove(dir);
}

// A toy problem: the label is whether the left half of the picture is brighter.
class ToySource : public BatchSource {
 public:
  explicit ToySource(size_t n) : n_(n) {}
  size_t size() const override { return n_; }
  void fill(const std::vector<size_t>& idx, Tensor& x, Tensor& y, Rng&, bool) override {
    const int B = static_cast<int>(idx.size());
    x.resize({B, 8, 8, 3});
    y.resize({B, 2});
    y.zero();
    for (int b = 0; b < B; ++b) {
      Rng r(idx[b] * 7919 + 1);
      const bool left = r.below(2);
      for (int h = 0; h < 8; ++h)
        for (int w = 0; w < 8; ++w)
          for (int c = 0; c < 3; ++c)
            x.at(((size_t(b) * 8 + h) * 8 + w) * 3 + c) = r.uniform() * 0.5f + ((w < 4) == left ? 0.5f : 0.f);
      y.at(size_t(b) * 2 + (left ? 0 : 1)) = 1.f;
    }
  }

 private:
  size_t n_;
};

Model toy_model() {
  Model m({8, 8, 3});
  m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(2));
  m.add(std::make_unique<Softmax>());
  m.build(1);
  return m;
}

TEST(Training, LossFallsAndAccuracyRises) {
  Engine engine(Engine::Options{2, "auto"});
  Model m = toy_model();
  ToySource train(256), val(128);
  Adam adam(1e-2f);
  FitOptions fo;
  fo.epochs = 5;
  fo.batch_size = 16;
  fo.seed = 3;
  const Context ctx{&engine, false, nullptr, 0};
  const Metrics before = evaluate(m, val, LossKind::kCategoricalCrossentropy, 32, ctx);
  auto hist = fit(m, train, &val, adam, LossKind::kCategoricalCrossentropy, fo, ctx, nullptr);
  ASSERT_EQ(hist.size(), 5u);
  EXPECT_LT(hist.back().loss, hist.front().loss);
  EXPECT_LT(hist.back().val.loss, before.loss * 0.5);
  EXPECT_GT(hist.back().val.accuracy, 0.95);
}

TEST(Training, FrozenLayersStayUnchanged) {
  Engine engine(Engine::Options{2, "auto"});
  Model m = toy_model();
  m.freeze_below(3);   // conv frozen, dense trains
  const Param& kernel = m.layer(0).params()[0];
  const std::vector<float> frozen(kernel.value.data(), kernel.value.data() + kernel.value.size());
  const Param& dense = m.layer(3).params()[0];
  const std::vector<float> head(dense.value.data(), dense.value.data() + dense.value.size());
  EXPECT_LT(m.trainable_param_count(), m.param_count());
  ToySource train(64);
  SGD sgd(0.1f, 0.9f, true);
  FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = 8;
  fit(m, train, nullptr, sgd, LossKind::kCategoricalCrossentropy, fo, {&engine, false, nullptr, 0}, nullptr);
  EXPECT_EQ(0, std::memcmp(frozen.data(), kernel.value.data(), frozen.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(head.data(), dense.value.data(), head.size() * sizeof(float)));
}

TEST(Training, StopFlagEndsAfterCurrentBatch) {
  Engine engine(Engine::Options{1, "auto"});
  Model m = toy_model();
  ToySource train(64);
  Adam adam;
  std::atomic<bool> stop{false};
  FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 8;
  fo.stop = &stop;
  size_t steps = 0;
  auto hist = fit(m, train, nullptr, adam, LossKind::kCategoricalCrossentropy, fo, {&engine, false, nullptr, 0},
                  [&](const Progress& p) {
                    if (!p.epoch_end && ++steps == 3) stop = true;
                  });
  EXPECT_EQ(steps, 3u);
  EXPECT_TRUE(hist.empty());
  EXPECT_EQ(adam.iterations, 3);
}

std::vector<float> arena_of(Model& m) { return {m.param_arena(), m.param_arena() + m.arena_size()}; }

// fit() is a thin wrapper: stepping a Trainer by hand gives the same weights bit for bit.
TEST(Trainer, SteppingByHandEqualsFit) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  ToySource train(100), val(40);
  Model a = toy_model(), b = toy_model();
  Adam adam_a(1e-2f), adam_b(1e-2f);
  FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 16;   // 100 = 6 x 16 + 4: a short last batch
  fo.seed = 9;
  const auto hist = fit(a, train, &val, adam_a, LossKind::kCategoricalCrossentropy, fo, ctx, nullptr);
  Trainer t(b, train, adam_b, LossKind::kCategoricalCrossentropy, fo, ctx);
  t.set_validation(&val);
  size_t steps = 0, ends = 0;
  while (!t.done()) {
    const Progress& p = t.step();
    ++steps;
    EXPECT_EQ(p.steps, 7u);
    EXPECT_EQ(p.epoch_end, p.step == 7);
    ends += p.epoch_end;
  }
  EXPECT_EQ(steps, 21u);
  EXPECT_EQ(ends, 3u);
  ASSERT_EQ(t.history().size(), hist.size());
  for (size_t e = 0; e < hist.size(); ++e) {
    EXPECT_EQ(t.history()[e].loss, hist[e].loss);
    EXPECT_EQ(t.history()[e].val.loss, hist[e].val.loss);
  }
  EXPECT_EQ(arena_of(a), arena_of(b));
  // Stepping on trains another epoch that the history does not keep.
  t.step();
  EXPECT_EQ(t.epoch(), 4);
  EXPECT_EQ(t.history().size(), 3u);
}

// A thread count no machine has is refused before a thread starts; 0 takes the machine's.
TEST(Engine, ThreadCountsAreBounded) {
  try {
    Engine e(Engine::Options{Engine::kMaxThreads + 1, "hwy"});
    ADD_FAILURE() << "built an engine of " << e.threads() << " threads";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "threads: at most 1024, not 1025");
  }
  const Engine all(Engine::Options{0, "hwy"});
  EXPECT_GE(all.threads(), 1);
  EXPECT_LE(all.threads(), Engine::kMaxThreads);
}

// A network whose first BatchNorm sees a convolution's output (which no BatchNorm above it
// shapes), then a Dense block with Dropout under a second BatchNorm, as SmallerVGGNet's head.
Model batchnorm_model(float dropout = 0.5f) {
  Model m({8, 8, 3});
  m.add(std::make_unique<Conv2D>(5, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(6));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<Dropout>(dropout));
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<Dense>(2));
  m.add(std::make_unique<Softmax>());
  m.build(4);
  return m;
}

// Mean and unbiased variance per channel of layer `i`'s output over every row of `x`, in
// inference mode (Dropout off), in double.
void column_statistics(Model& m, size_t i, const Tensor& x, const Context& ctx, std::vector<double>& mean,
                       std::vector<double>& var) {
  m.forward(x, ctx);
  const Tensor& a = m.activation(i);
  const size_t C = a.shape()[a.rank() - 1], M = a.size() / C;
  mean.assign(C, 0.0);
  var.assign(C, 0.0);
  for (size_t r = 0; r < M; ++r)
    for (size_t c = 0; c < C; ++c) mean[c] += a.at(r * C + c) / double(M);
  for (size_t r = 0; r < M; ++r)
    for (size_t c = 0; c < C; ++c) var[c] += (a.at(r * C + c) - mean[c]) * (a.at(r * C + c) - mean[c]) / double(M - 1);
}

// Population statistics: the moving statistics become the mean and unbiased variance of a
// BatchNorm's inputs over every batch given, whatever the batch sizes; Dropout is off.
TEST(Model, PopulationStatisticsAreTheInputsMeanAndVariance) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  ToySource data(15);
  Model m = batchnorm_model();
  EXPECT_EQ(m.batchnorm_sums_size(), (1 + 2 * 5) + (1 + 2 * 6u));
  Rng rng(1);
  Tensor all, y;
  std::vector<size_t> every(15);
  std::iota(every.begin(), every.end(), size_t(0));
  data.fill(every, all, y, rng, false);
  // Batches of 5, 7 and 3.
  const auto count = [&](Model& model) {
    std::vector<double> sums(model.batchnorm_sums_size(), 0.0);
    for (const auto& [b, e] : {std::pair{0, 5}, {5, 12}, {12, 15}}) {
      Tensor x;
      data.fill(std::vector<size_t>(every.begin() + b, every.begin() + e), x, y, rng, false);
      model.add_batchnorm_sums(x, ctx, sums);
    }
    return sums;
  };
  const std::vector<double> sums = count(m);
  std::vector<double> short_sums(3);
  EXPECT_THROW(m.add_batchnorm_sums(all, ctx, short_sums), std::invalid_argument);
  m.set_batchnorm_statistics(sums);
  EXPECT_EQ(sums[0], 15.0 * 8 * 8);
  EXPECT_EQ(sums[11], 15.0);
  std::vector<double> mean, var;
  column_statistics(m, 0, all, ctx, mean, var);
  const Param& mm = std::as_const(m).layer(1).params()[2];
  const Param& mv = std::as_const(m).layer(1).params()[3];
  for (size_t c = 0; c < 5; ++c) {
    EXPECT_NEAR(mm.value.at(c), mean[c], 1e-5 * (1 + std::fabs(mean[c]))) << c;
    EXPECT_NEAR(mv.value.at(c), var[c], 1e-5 * (1 + var[c])) << c;
  }
  // The second BatchNorm's input depends on how the first normalised each batch; Dropout is
  // off while it is counted (at rate 0.5 it would double the variance).
  Model off = batchnorm_model(0.0f);
  const std::vector<double> sums_off = count(off);
  for (size_t i = 0; i < sums.size(); ++i) EXPECT_NEAR(sums[i], sums_off[i], 1e-6 * (1 + std::fabs(sums[i]))) << i;
  // A frozen BatchNorm keeps its statistics and adds nothing.
  m.layer(1).trainable = false;
  EXPECT_EQ(m.batchnorm_sums_size(), 1 + 2 * 6u);
}

// At each epoch's end the Trainer replaces the moving averages with population statistics
// for the final weights; batchnorm_examples = 0 keeps Keras' moving averages.
TEST(Trainer, EpochsEndWithPopulationStatistics) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  ToySource train(40);
  Rng rng(1);
  Tensor all, y;
  std::vector<size_t> every(40);
  std::iota(every.begin(), every.end(), size_t(0));
  train.fill(every, all, y, rng, false);
  for (const int examples : {1024, 0}) {
    Model m = batchnorm_model();
    Adam adam(1e-2f);
    TrainOptions o;
    o.epochs = 2;
    o.batch_size = 8;
    o.seed = 5;
    o.batchnorm_examples = examples;
    Trainer t(m, train, adam, LossKind::kCategoricalCrossentropy, o, ctx);
    while (!t.done()) t.step();
    std::vector<double> mean, var;
    column_statistics(m, 0, all, ctx, mean, var);
    const Param& mm = std::as_const(m).layer(1).params()[2];
    const Param& mv = std::as_const(m).layer(1).params()[3];
    double worst = 0;
    for (size_t c = 0; c < 5; ++c)
      worst = std::max({worst, std::fabs(mm.value.at(c) - mean[c]) / std::sqrt(var[c] + 1e-3),
                        std::fabs(std::log((mv.value.at(c) + 1e-3) / (var[c] + 1e-3)))});
    if (examples > 0) EXPECT_LT(worst, 1e-4);
    else EXPECT_GT(worst, 0.1) << "10 steps of moving averages from (0, 1) cannot have reached the statistics";
  }
  // Stopped within an epoch (Ctrl-C), the model handed back has the statistics of its weights.
  Model m = batchnorm_model();
  Adam adam(1e-2f);
  std::atomic<bool> stop{false};
  FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = 8;
  fo.seed = 5;
  fo.stop = &stop;
  size_t steps = 0;
  fit(m, train, nullptr, adam, LossKind::kCategoricalCrossentropy, fo, ctx, [&](const Progress& p) {
    if (++steps == 7) stop = true;   // two batches into the second epoch
  });
  EXPECT_EQ(adam.iterations, 7);
  std::vector<double> mean, var;
  column_statistics(m, 0, all, ctx, mean, var);
  const Param& mm = std::as_const(m).layer(1).params()[2];
  for (size_t c = 0; c < 5; ++c) EXPECT_NEAR(mm.value.at(c), mean[c], 1e-4 * std::sqrt(var[c] + 1e-3)) << c;
}

// The gradient hook sees every batch's gradients before the optimizer does: zeroing them
// leaves the weights where they were.
TEST(Trainer, GradientHookRunsBetweenBackwardAndTheStep) {
  Engine engine(Engine::Options{1, "auto"});
  Model m = toy_model();
  const std::vector<float> before = arena_of(m);
  ToySource train(32);
  SGD sgd(0.1f);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 8;
  Trainer t(m, train, sgd, LossKind::kCategoricalCrossentropy, o, {&engine, false, nullptr, 0});
  int calls = 0;
  bool had_gradient = false;
  t.set_gradient_hook([&](Model& model) {
    ++calls;
    float* g = const_cast<float*>(model.grad_arena());
    for (size_t i = 0; i < model.arena_size(); ++i) {
      had_gradient |= g[i] != 0.f;
      g[i] = 0.f;
    }
  });
  Trainer::Callbacks cb;
  t.run(cb);
  EXPECT_EQ(calls, 8);
  EXPECT_TRUE(had_gradient);
  EXPECT_EQ(arena_of(m), before);
  EXPECT_EQ(sgd.iterations, 8);
}

// Checkpoints: every epoch with kLast; with kBest only when the validation loss is the lowest
// so far.
TEST(Trainer, CheckpointsFollowThePolicy) {
  Engine engine(Engine::Options{2, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  ToySource train(64), val(32);
  for (Checkpoint policy : {Checkpoint::kLast, Checkpoint::kBest}) {
    Model m = toy_model();
    Adam adam(0.2f);   // large steps: the validation loss goes up and down
    TrainOptions o;
    o.epochs = 8;
    o.batch_size = 8;
    o.seed = 1;
    Trainer t(m, train, adam, LossKind::kCategoricalCrossentropy, o, ctx);
    t.set_validation(&val);
    std::vector<double> saved;
    Trainer::Callbacks cb;
    cb.checkpoint = policy;
    cb.on_checkpoint = [&](const Progress& p) {
      EXPECT_TRUE(p.epoch_end);
      saved.push_back(p.val.loss);
    };
    const auto& h = t.run(cb);
    ASSERT_EQ(h.size(), 8u);
    if (policy == Checkpoint::kLast) {
      EXPECT_EQ(saved.size(), 8u);
      EXPECT_FALSE(t.saved_best());
      continue;
    }
    double lowest = h[0].val.loss;
    std::vector<double> expected{lowest};
    for (size_t e = 1; e < h.size(); ++e)
      if (h[e].val.loss < lowest) expected.push_back(lowest = h[e].val.loss);
    EXPECT_EQ(saved, expected);
    EXPECT_TRUE(t.saved_best());
  }
}

// Optimizers against hand-computed Keras updates on a single parameter.
TEST(Optimizers, AdamAndSgdMatchKerasFormulas) {
  Engine engine(Engine::Options{1, "ref"});
  auto one_param = [] {
    Model m({1});
    m.add(std::make_unique<Dense>(1, Activation::kNone, false));
    m.build(0);
    m.layer(0).params()[0].value.at(0) = 1.f;
    const_cast<float*>(m.grad_arena())[0] = 0.5f;
    return m;
  };
  {
    Model m = one_param();
    Adam adam(0.1f, 0.5f);
    adam.step(m, engine);   // t=1: m=0.05, v=0.00025, step = lr*sqrt(1-b2)/(1-b1) * m/(sqrt(v)+eps)
    const double step1 = 0.1 * std::sqrt(1 - 0.999) / (1 - 0.9) * 0.05 / (std::sqrt(0.00025) + 1e-7);
    EXPECT_NEAR(m.param_arena()[0], 1.0 - step1, 1e-6);
    const float p1 = m.param_arena()[0];
    adam.step(m, engine);   // t=2 with decayed lr = 0.1 / (1 + 0.5 * 1)
    const double m2 = 0.9 * 0.05 + 0.1 * 0.5, v2 = 0.999 * 0.00025 + 0.001 * 0.25;
    const double step2 = 0.1 / 1.5 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.81) * m2 / (std::sqrt(v2) + 1e-7);
    EXPECT_NEAR(m.param_arena()[0], p1 - step2, 1e-6);
  }
  {
    Model m = one_param();
    SGD sgd(0.1f, 0.9f, false);
    sgd.step(m, engine);   // v = -0.05; p = 0.95
    sgd.step(m, engine);   // v = -0.045 - 0.05 = -0.095; p = 0.855
    EXPECT_NEAR(m.param_arena()[0], 0.855, 1e-6);
  }
  {
    Model m = one_param();
    SGD sgd(0.1f, 0.9f, true);
    sgd.step(m, engine);   // v = -0.05; p += 0.9 * -0.05 - 0.05 = -0.095
    EXPECT_NEAR(m.param_arena()[0], 0.905, 1e-6);
  }
}

// The update runs over the trainable spans of the arena on the engine's threads: the same
// numbers as one thread, frozen layers untouched.
TEST(Optimizers, StepOnSeveralThreadsMatchesOneAndLeavesFrozenLayersAlone) {
  Engine one(Engine::Options{1, "ref"}), two(Engine::Options{2, "ref"});
  auto model = [] {
    Model m({300});
    m.add(std::make_unique<Dense>(200, Activation::kRelu));
    m.add(std::make_unique<Dense>(100, Activation::kRelu));
    m.add(std::make_unique<Dense>(50, Activation::kNone));
    m.build(3);
    m.freeze_below(1);
    float* g = const_cast<float*>(m.grad_arena());
    Rng rng(5);
    for (size_t i = 0; i < m.arena_size(); ++i) g[i] = rng.uniform(-1, 1);
    return m;
  };
  for (int kind = 0; kind < 2; ++kind) {
    Model a = model(), b = model();
    const std::vector<float> before(a.param_arena(), a.param_arena() + a.arena_size());
    std::unique_ptr<Optimizer> oa, ob;
    if (kind == 0) oa = std::make_unique<Adam>(0.01f), ob = std::make_unique<Adam>(0.01f);
    else oa = std::make_unique<SGD>(0.01f, 0.9f, true), ob = std::make_unique<SGD>(0.01f, 0.9f, true);
    for (int t = 0; t < 3; ++t) {
      oa->step(a, one);
      ob->step(b, two);
    }
    for (size_t i = 0; i < a.arena_size(); ++i)
      ASSERT_EQ(a.param_arena()[i], b.param_arena()[i]) << "kind " << kind << " at " << i;
    for (size_t l = 0; l < a.num_layers(); ++l)
      for (const Param& p : std::as_const(a.layer(l)).params())
        for (size_t i = 0; i < p.value.size(); ++i) {
          const float was = before[size_t(p.value.data() - a.param_arena()) + i];
          if (l == 0) ASSERT_EQ(p.value.data()[i], was) << "layer " << l;
          else ASSERT_NE(p.value.data()[i], was) << "layer " << l;
        }
  }
}

// A ReLU output followed by max pooling: the pool's backward carries the ReLU's gate and the
// layer below skips its own. A Dropout of rate 0 between them keeps the two passes apart; the
// gradients must be the same to the bit, on every backend.
TEST(Model, ReluThenMaxPoolGradientsMatchTheSeparatePasses) {
  for (const std::string backend : Engine::available_backends()) {
    SCOPED_TRACE(backend);
    Engine engine(Engine::Options{2, backend});
    auto make = [](bool apart) {
      Model m({14, 14, 3});
      auto gap = [&] { if (apart) m.add(std::make_unique<Dropout>(0.f)); };
      m.add(std::make_unique<Conv2D>(8, 3, 1, Padding::kSame, Activation::kRelu));
      gap();
      m.add(std::make_unique<MaxPool2D>(2));   // 14 -> 7, windows tile the input
      m.add(std::make_unique<Conv2D>(16, 3, 1, Padding::kSame));
      m.add(std::make_unique<ReLU>());
      gap();
      m.add(std::make_unique<MaxPool2D>(2));   // 7 -> 3, the last row and column uncovered
      m.add(std::make_unique<Flatten>());
      m.add(std::make_unique<Dense>(4));
      m.add(std::make_unique<Softmax>());
      m.build(11);
      return m;
    };
    Model fused = make(false), apart = make(true);
    ASSERT_EQ(fused.arena_size(), apart.arena_size());
    std::copy(fused.param_arena(), fused.param_arena() + fused.arena_size(), apart.param_arena());
    Rng rng(4);
    Tensor x({6, 14, 14, 3}), y({6, 4});
    for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(-1, 1);
    for (int n = 0; n < 6; ++n) y.at(size_t(n) * 4 + n % 4) = 1.f;
    Context ctx{&engine, false, &rng, 0};
    fused.compute_gradients(x, y, LossKind::kCategoricalCrossentropy, ctx);
    apart.compute_gradients(x, y, LossKind::kCategoricalCrossentropy, ctx);
    size_t nonzero = 0;
    for (size_t i = 0; i < fused.arena_size(); ++i) {
      ASSERT_EQ(fused.grad_arena()[i], apart.grad_arena()[i]) << i;
      nonzero += fused.grad_arena()[i] != 0.f;
    }
    EXPECT_GT(nonzero, fused.arena_size() / 2);
  }
}

// A model with every fusion: a ReLU after a Conv2D and after a Dense (fused), one after a
// Conv2D with its own ReLU (not fused), BatchNorm and MaxPool2D on a ReLU's output, Dropout
// and Flatten.
Model FusionModel() {
  Model m({12, 12, 3});
  m.add(std::make_unique<Conv2D>(8, 3, 1, Padding::kSame));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Dropout>(0.25f));
  m.add(std::make_unique<Conv2D>(16, 3, 1, Padding::kSame, Activation::kRelu));
  m.add(std::make_unique<ReLU>());   // after a fused activation: runs as a layer
  m.add(std::make_unique<MaxPool2D>(2));
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(10));
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<Dense>(3));
  m.add(std::make_unique<Sigmoid>());
  m.build(5);
  // BatchNorm's moving statistics away from 0 and 1, so that it changes its input.
  for (const size_t l : {2, 11})
    for (Param& p : m.layer(l).params())
      for (size_t i = 0; i < p.value.size(); ++i) p.value.at(i) = 0.5f + 0.1f * i;
  return m;
}

void FusionData(Tensor& x, Tensor& y) {
  x = Tensor({5, 12, 12, 3});
  y = Tensor({5, 3});
  Rng rng(6);
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(-1, 1);
  for (size_t i = 0; i < y.size(); ++i) y.at(i) = static_cast<float>(i % 2);
}

// Inference fuses a ReLU into the Conv2D or Dense before it and hands on the input of that
// ReLU, of Dropout and of Flatten as a view. The outputs must equal, to the bit, those of each
// layer run on its own; a training step after it must not write through a view.
TEST(Model, InferenceFusionsMatchTheLayersRunOneByOne) {
  for (const std::string backend : Engine::available_backends()) {
    SCOPED_TRACE(backend);
    Engine engine(Engine::Options{2, backend});
    Model m = FusionModel(), fresh = FusionModel();
    Tensor x, y;
    FusionData(x, y);
    const Context ctx{&engine, false, nullptr, 0};
    const Tensor out = m.forward(x, ctx);
    EXPECT_TRUE(m.activation(1).is_view()) << "ReLU after Conv2D";
    EXPECT_FALSE(m.activation(6).is_view()) << "ReLU after Conv2D with its own ReLU";
    EXPECT_TRUE(m.activation(4).is_view() && m.activation(8).is_view() && m.activation(10).is_view());
    Tensor a = x;
    for (size_t i = 0; i < m.num_layers(); ++i) {
      Tensor b;
      m.layer(i).forward(a, b, ctx);
      a = b;
      ASSERT_EQ(a.shape(), m.activation(i).shape()) << i;
      if (m.layer(i).kind() == LayerKind::kConv2D || m.layer(i).kind() == LayerKind::kDense) continue;
      for (size_t k = 0; k < a.size(); ++k) ASSERT_EQ(a.at(k), m.activation(i).at(k)) << "layer " << i << " at " << k;
    }
    for (size_t k = 0; k < out.size(); ++k) ASSERT_EQ(out.at(k), a.at(k)) << k;
    // Training after inference: the same gradients as a model that never ran inference.
    Rng r1(9), r2(9);
    const float l1 = m.compute_gradients(x, y, LossKind::kBinaryCrossentropy, {&engine, true, &r1, 0});
    const float l2 = fresh.compute_gradients(x, y, LossKind::kBinaryCrossentropy, {&engine, true, &r2, 0});
    EXPECT_EQ(l1, l2);
    for (size_t i = 0; i < m.arena_size(); ++i) ASSERT_EQ(m.grad_arena()[i], fresh.grad_arena()[i]) << i;
    EXPECT_FALSE(m.activation(4).is_view() || m.activation(8).is_view()) << "Dropout, Flatten";
  }
}

// Training fuses the same ReLUs, and a MaxPool2D or BatchNorm on a ReLU's output gates its
// input gradient with that ReLU, which then hands the gradient on as a view instead of making
// its own pass. Loss and gradients must equal, to the bit, those of the layers run one by one.
TEST(Model, TrainingFusionsMatchTheLayersRunOneByOne) {
  for (const std::string backend : Engine::available_backends()) {
    SCOPED_TRACE(backend);
    Engine engine(Engine::Options{2, backend});
    Model m = FusionModel();
    Tensor x, y;
    FusionData(x, y);
    const LossKind bce = LossKind::kBinaryCrossentropy;
    for (int step = 0; step < 2; ++step) {   // the second step reuses the views' tensors
      SCOPED_TRACE(step);
      Rng r1(9 + step), r2(9 + step);
      const float fused_loss = m.compute_gradients(x, y, bce, {&engine, true, &r1, 0});
      EXPECT_TRUE(m.activation(1).is_view() && m.activation(10).is_view()) << "fused ReLUs";
      EXPECT_FALSE(m.activation(6).is_view());
      const std::vector<float> fused(m.grad_arena(), m.grad_arena() + m.arena_size());

      const size_t n = m.num_layers();
      const Context tc{&engine, true, &r2, 0};
      std::vector<Tensor> acts(n);
      for (size_t i = 0; i < n; ++i) m.layer(i).forward(i ? acts[i - 1] : x, acts[i], tc);
      Tensor dy;
      const float loss = loss_forward_backward(bce, acts[n - 2], y, &dy);
      EXPECT_EQ(fused_loss, loss);
      BackwardContext bc;
      static_cast<Context&>(bc) = tc;
      for (size_t i = n - 1; i-- > 0;) {
        const Tensor& in = i ? acts[i - 1] : x;
        Tensor dx(in.shape());
        m.layer(i).backward(in, acts[i], dy, i ? &dx : nullptr, bc);
        dy = dx;
      }
      for (size_t i = 0; i < m.arena_size(); ++i) ASSERT_EQ(fused[i], m.grad_arena()[i]) << i;
    }
  }
}

TEST(Model, RejectsWrongInputShape) {
  Engine engine(Engine::Options{1, "ref"});
  Model m = toy_model();
  Tensor x({2, 9, 8, 3});
  try {
    m.forward(x, {&engine, false, nullptr, 0});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected (2, 8, 8, 3)"), std::string::npos) << e.what();
  }
}

// Writing weights through the public API is all it takes: the next forward rebuilds what the
// backend cached from the old ones (Winograd-transformed weights on hwy, a packed operator on
// xnnpack), so its output matches a model that never saw the old weights.
TEST(Model, ForwardSeesWeightsWrittenThroughTheApi) {
  const auto make = [] {
    Model m({8, 8, 16});
    m.add(std::make_unique<Conv2D>(16, 3, 1, Padding::kSame));   // 3x3, 16 -> 16: Winograd
    m.build(1);
    return m;
  };
  Tensor x({2, 8, 8, 16});
  Rng rng(2);
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(-1, 1);
  const auto output = [&](Model& m, const Context& ctx) {
    const Tensor& y = m.forward(x, ctx);
    return std::vector<float>(y.data(), y.data() + y.size());
  };
  for (const std::string& backend : Engine::available_backends()) {
    SCOPED_TRACE(backend);
    Engine engine(Engine::Options{2, backend});
    const Context ctx{&engine, false, nullptr, 0};
    Model m = make();
    const std::vector<float> before = output(m, ctx);
    output(m, ctx);   // xnnpack packs weights on their second use

    // Through a layer's parameters.
    Tensor& kernel = m.layer(0).params()[0].value;
    for (size_t i = 0; i < kernel.size(); ++i) kernel.at(i) = 0.5f - kernel.at(i);
    Model fresh = make();
    float* fresh_kernel = fresh.layer(0).params()[0].value.data();
    std::copy(kernel.data(), kernel.data() + kernel.size(), fresh_kernel);
    const std::vector<float> after = output(m, ctx);
    EXPECT_NE(after, before);
    EXPECT_EQ(after, output(fresh, ctx));
    output(m, ctx);

    // Through the parameter arena.
    float* arena = m.param_arena();
    for (size_t i = 0; i < kernel.size(); ++i) arena[i] *= -2.0f;
    Model fresh2 = make();
    std::copy(arena, arena + m.arena_size(), fresh2.param_arena());
    EXPECT_EQ(output(m, ctx), output(fresh2, ctx));
  }
}

TEST(BatchNorm, MovingStatisticsFollowKeras) {
  Engine engine(Engine::Options{1, "ref"});
  Model m({2});
  m.add(std::make_unique<BatchNorm>(0.9f, 1e-3f));
  m.build(0);
  Tensor x({4, 2});
  const float v[] = {1, 10, 2, 20, 3, 30, 4, 40};
  std::copy(v, v + 8, x.data());
  m.forward(x, {&engine, true, nullptr, 0});
  const auto& p = m.layer(0).params();
  EXPECT_NEAR(p[2].value.at(0), 0.1 * 2.5, 1e-5);                 // moving mean
  EXPECT_NEAR(p[3].value.at(0), 0.9 + 0.1 * (5.0 / 3.0), 1e-4);   // unbiased variance 1.6667
  EXPECT_NEAR(p[3].value.at(1), 0.9 + 0.1 * (500.0 / 3.0), 1e-2);
}

}  // namespace
}  // namespace tagnet
