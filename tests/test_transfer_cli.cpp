// Transfer learning through the tagnet command line: `features`, `train --features`,
// `finetune`, `replace-head` and `train --dataset fashion-mnist-2x2`, checked against the core
// library's own forward passes, and the one-line errors bad input gets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_run.h"
#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/train/features.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"

namespace fs = std::filesystem;

namespace tagnet {
namespace {

using namespace cli;

// The first number after `prefix` in the output, or -1.
double number_after(const std::string& out, const std::string& prefix) {
  const size_t at = out.find(prefix);
  if (at == std::string::npos) return -1;
  return std::atof(out.c_str() + at + prefix.size());
}

const std::vector<std::string> kClasses = {"left", "right"};

// 56x56 grey pictures: a bright block of random size in the left or the right half of a dark,
// noisy canvas; the class is the half. Written as PNG so the loader sees exact pixels.
void write_pictures(const std::string& dir, int per_class, uint64_t seed) {
  Rng rng(seed);
  for (size_t c = 0; c < kClasses.size(); ++c) {
    fs::create_directories(dir + "/" + kClasses[c]);
    for (int i = 0; i < per_class; ++i) {
      Image im;
      im.width = im.height = 56;
      im.rgb.assign(56 * 56 * 3, 0);
      const int h = 10 + static_cast<int>(rng.below(16)), w = 8 + static_cast<int>(rng.below(12));
      const int r0 = static_cast<int>(rng.below(56 - h)), c0 = (c ? 30 : 2) + static_cast<int>(rng.below(24 - w));
      const int level = 150 + static_cast<int>(rng.below(100));
      for (int r = 0; r < 56; ++r)
        for (int k = 0; k < 56; ++k) {
          const bool in = r >= r0 && r < r0 + h && k >= c0 && k < c0 + w;
          const uint8_t v = static_cast<uint8_t>(in ? level : rng.below(40));
          for (int ch = 0; ch < 3; ++ch) im.rgb[(size_t(r) * 56 + k) * 3 + ch] = v;
        }
      char name[32];
      std::snprintf(name, sizeof name, "/%03d.png", i);
      save_png(dir + "/" + kClasses[c] + name, im);
    }
  }
}

// The folder as the loader reads it: class folders and files in sorted order.
ImageSet load_pictures(const std::string& dir) {
  ImageSet set({56, 56, 1}, static_cast<int>(kClasses.size()));
  for (size_t c = 0; c < kClasses.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir + "/" + kClasses[c])) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    std::vector<float> target(kClasses.size(), 0.f);
    target[c] = 1.f;
    for (const auto& f : files) set.add(load_image(f), target);
  }
  return set;
}

// An untrained FashionNet: its random convolutions already keep where a bright block is.
std::string write_backbone(const std::string& dir) {
  Model m = make_architecture("fashionnet", {10, Head::kSoftmax, {}, -1});
  m.build(11);
  m.card().labels = {"tshirt", "trouser", "pullover", "dress", "coat",
                            "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  const std::string path = dir + "/backbone.tagnet";
  m.save(path);
  return path;
}

// Runs `model` over every example of `data` in batches of `batch`: (N, ...outputs).
std::vector<float> outputs_of(Model& model, BatchSource& data, int batch, std::vector<float>* targets = nullptr) {
  Engine engine(Engine::Options{0, "auto"});
  const Context ctx{&engine, false, nullptr, 0};
  std::vector<float> out;
  Rng rng(0);
  Tensor x, y;
  for (size_t b = 0; b < data.size(); b += batch) {
    std::vector<size_t> idx(std::min<size_t>(batch, data.size() - b));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = b + i;
    data.fill(idx, x, y, rng, false);
    const Tensor& o = model.forward(x, ctx);
    out.insert(out.end(), o.data(), o.data() + o.size());
    if (targets) targets->insert(targets->end(), y.data(), y.data() + y.size());
  }
  return out;
}

std::vector<float> params_of(const Model& m, size_t from, size_t to) {
  std::vector<float> v;
  for (size_t i = from; i < to; ++i)
    for (const auto& p : m.layer(i).params()) v.insert(v.end(), p.value.data(), p.value.data() + p.value.size());
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(TransferCli, FeatureFileEqualsAFreshForwardPassOfTheBase) {
  const std::string d = cli_temp_dir("xfer_features");
  const std::string bb = write_backbone(d);
  write_pictures(d + "/train", 40, 1);
  CliResult r = run_cli("features --model " + bb + " --dataset " + d + "/train --out " + d + "/train.features --labels single");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("80 examples, features (7, 7, 64), 2 labels (left, right)"), std::string::npos) << r.out;

  const FeatureSet f = FeatureSet::load(d + "/train.features");
  ASSERT_EQ(f.size(), 80u);
  EXPECT_EQ(f.labels, kClasses);
  EXPECT_EQ(f.head, Head::kSoftmax);
  Model trained = Model::load(bb);
  const size_t n = base_end(trained);
  EXPECT_EQ(f.base["fingerprint"], base_identity(trained, n)["fingerprint"]);
  EXPECT_EQ(f.base["layers"].get<size_t>(), n);

  // The same pictures through the base in this process, in the command's batches of 64.
  Model base = slice_model(trained, 0, n);
  ImageSet pictures = load_pictures(d + "/train");
  std::vector<float> targets;
  const std::vector<float> fresh = outputs_of(base, pictures, 64, &targets);
  ASSERT_EQ(fresh.size(), f.features.size());
  EXPECT_EQ(0, std::memcmp(fresh.data(), f.features.data(), fresh.size() * sizeof(float)));
  ASSERT_EQ(targets.size(), f.targets.size());
  EXPECT_EQ(0, std::memcmp(targets.data(), f.targets.data(), targets.size() * sizeof(float)));
  fs::remove_all(d);
}

TEST(TransferCli, TopModelLearnsAndFinetuningStartsFromIt) {
  const std::string d = cli_temp_dir("xfer_finetune");
  const std::string bb = write_backbone(d);
  write_pictures(d + "/train", 40, 2);
  write_pictures(d + "/val", 20, 3);
  for (const char* s : {"train", "val"}) {
    CliResult r = run_cli("features --model " + bb + " --dataset " + d + "/" + s + " --out " + d + "/" + s + ".features");
    ASSERT_EQ(r.status, 0) << r.out;
  }
  CliResult r = run_cli("train --features " + d + "/train.features --val-features " + d + "/val.features --epochs 15 " +
                 "--model " + d + "/top.tagnet --plot '' --history " + d + "/top.json");
  ASSERT_EQ(r.status, 0) << r.out;
  const double top_acc = number_after(r.out, "top model: validation accuracy ");
  EXPECT_GE(top_acc, 0.9) << r.out;
  {
    std::ifstream hf(d + "/top.json");
    const nlohmann::json h = nlohmann::json::parse(hf);
    ASSERT_EQ(h["history"].size(), 15u);
    EXPECT_LT(h["history"][14]["loss"].get<double>(), h["history"][0]["loss"].get<double>());
    EXPECT_EQ(h["training"]["optimizer"], "SGD");
  }
  Model top = Model::load(d + "/top.tagnet");
  ASSERT_EQ(top.num_layers(), 5u);   // Flatten, Dense 256 relu, Dropout, Dense 2, Softmax
  EXPECT_EQ(top.layer(1).params()[1].value.size(), 256u);
  EXPECT_EQ(top.layer(2).type(), "Dropout");

  // No fine-tuning epochs: the saved model is base + top, and scores what the top model scored.
  r = run_cli("finetune --base " + bb + " --top " + d + "/top.tagnet --dataset " + d + "/train --val-dataset " + d +
          "/val --epochs 0 --model " + d + "/joined.tagnet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_DOUBLE_EQ(number_after(r.out, "before fine-tuning: validation accuracy "), top_acc) << r.out;
  Model joined = Model::load(d + "/joined.tagnet");
  ImageSet val = load_pictures(d + "/val");
  const FeatureSet vf = FeatureSet::load(d + "/val.features");
  FeatureSource vfs(vf);
  const std::vector<float> want = outputs_of(top, vfs, 64);
  const std::vector<float> got = outputs_of(joined, val, 64);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << i;

  // Fine-tuning the last block: the blocks below keep their bits, the last block moves, and the
  // saved model cut into base and top, saved and joined again gives its outputs exactly.
  r = run_cli("finetune --base " + bb + " --top " + d + "/top.tagnet --dataset " + d + "/train --val-dataset " + d +
          "/val --epochs 2 --batch-size 8 --unfreeze last-block --lr 1e-3 --momentum 0.9 --model " + d +
          "/finetuned.tagnet --history " + d + "/ft.json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("accuracy: top model alone "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", fine-tuned "), std::string::npos) << r.out;
  Model ft = Model::load(d + "/finetuned.tagnet");
  Model backbone = Model::load(bb);
  const size_t n = base_end(backbone), lb = last_block_start(backbone, n);
  ASSERT_EQ(ft.num_layers(), n + top.num_layers());
  EXPECT_TRUE(same_bits(params_of(ft, 0, lb), params_of(backbone, 0, lb)));
  EXPECT_FALSE(same_bits(params_of(ft, lb, n), params_of(backbone, lb, n)));
  EXPECT_FALSE(same_bits(params_of(ft, n, ft.num_layers()), params_of(top, 0, top.num_layers())));
  slice_model(ft, 0, n).save(d + "/ft-base.tagnet");
  slice_model(ft, n, ft.num_layers()).save(d + "/ft-top.tagnet");
  Model rejoined = join_models(Model::load(d + "/ft-base.tagnet"), Model::load(d + "/ft-top.tagnet"));
  EXPECT_TRUE(same_bits(outputs_of(rejoined, val, 64), outputs_of(ft, val, 64)));
  fs::remove_all(d);
}

TEST(TransferCli, ReplacedHeadTrainsOnTwoByTwoPicturesOverAFrozenBase) {
  const std::string d = cli_temp_dir("xfer_head");
  const std::string bb = write_backbone(d);
  CliResult r = run_cli("replace-head --model " + bb + " --out " + d + "/head.tagnet --head sigmoid --labels "
                 "tshirt,trouser,pullover,dress,coat,sandal,shirt,sneaker,bag,boot");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Non-trainable params: 10,416"), std::string::npos) << r.out;
  Model head = Model::load(d + "/head.tagnet");
  EXPECT_EQ(model_head(head), Head::kSigmoid);
  const size_t dense = head.num_layers() - 2;
  ASSERT_EQ(head.layer(dense).type(), "Dense");
  for (size_t i = 0; i < head.num_layers(); ++i) EXPECT_EQ(head.layer(i).trainable, i >= dense) << i;

  r = run_cli("train --dataset fashion-mnist-2x2 --base " + d + "/head.tagnet --epochs 1 --epoch-size 320 "
          "--test-size 64 --batch-size 16 --model " + d + "/trained.tagnet --plot '' --history ''");
  ASSERT_EQ(r.status, 0) << r.out;
  // The head was made for these labels, so training keeps the frozen flags it was saved with.
  EXPECT_NE(r.out.find("training layers 9-10 (dense ... sigmoid)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(as-saved trainable, 1 epochs"), std::string::npos) << r.out;
  Model trained = Model::load(d + "/trained.tagnet");
  ASSERT_EQ(trained.num_layers(), head.num_layers());
  EXPECT_TRUE(same_bits(params_of(trained, 0, dense), params_of(head, 0, dense)));
  EXPECT_FALSE(same_bits(params_of(trained, dense, dense + 1), params_of(head, dense, dense + 1)));

  // Cut lower down, with a softmax head for other labels.
  r = run_cli("replace-head --model " + bb + " --out " + d + "/cut.tagnet --cut conv2d_1 --head softmax --labels a,b,c");
  ASSERT_EQ(r.status, 0) << r.out;
  Model cut = Model::load(d + "/cut.tagnet");
  EXPECT_EQ(cut.layer(4).type(), "Flatten");
  EXPECT_EQ(cut.output_shape(), Shape({3}));
  EXPECT_EQ(cut.card().labels, (std::vector<std::string>{"a", "b", "c"}));
  fs::remove_all(d);
}

TEST(TransferCli, TwoByTwoTaskReportsExactMatchF1AndMap) {
  const std::string d = cli_temp_dir("xfer_grid");
  const std::string bb = write_backbone(d);
  CliResult r = run_cli("train --dataset fashion-mnist-2x2 --base " + bb + " --trainable all --epochs 1 --epoch-size 320 "
                 "--test-size 96 --batch-size 16 --model " + d + "/all.tagnet --plot '' --history " + d + "/h.json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("320 fresh 2x2 training pictures per epoch, 96 fixed test pictures"), std::string::npos)
      << r.out;
  for (const char* s : {"exact match ", "micro F1 ", "macro F1 ", "mAP ", "\nsneaker ", "(all trainable"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  std::ifstream hf(d + "/h.json");
  const nlohmann::json h = nlohmann::json::parse(hf);
  const nlohmann::json& m = h["metrics"];
  for (const char* k : {"exact_match", "micro_f1", "macro_f1", "mAP"}) {
    ASSERT_TRUE(m.contains(k)) << k;
    EXPECT_GE(m[k].get<double>(), 0.0);
    EXPECT_LE(m[k].get<double>(), 1.0);
  }
  EXPECT_EQ(m["per_label"].size(), 10u);
  EXPECT_EQ(m["examples"].get<size_t>(), 96u);
  EXPECT_NEAR(number_after(r.out, ", mAP "), m["mAP"].get<double>(), 5e-5) << r.out;
  // Every layer trained: the convolutions moved too.
  Model all = Model::load(d + "/all.tagnet"), base = Model::load(bb);
  EXPECT_FALSE(same_bits(params_of(all, 0, 1), params_of(base, 0, 1)));
  fs::remove_all(d);
}

TEST(TransferCli, FolderRunFromABaseGetsANewHeadThenGoesOn) {
  const std::string d = cli_temp_dir("xfer_folder_base");
  const std::string bb = write_backbone(d);
  write_pictures(d + "/train", 32, 1);
  write_pictures(d + "/val", 16, 2);
  // No augmentation: a horizontal flip would swap the classes.
  const std::string data =
      " --dataset " + d + "/train --val-dataset " + d + "/val --labels single --batch-size 8 --no-augment";

  // Another task's model: cut below its last Dense, a new one-logit head for left/right; only
  // the head trains.
  CliResult r = run_cli("train" + data + " --base " + bb + " --epochs 3 --model " + d +
                        "/head.tagnet --plot '' --history " + d + "/h1.json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("continuing"), std::string::npos) << r.out;
  Model backbone = Model::load(bb);
  Model headed = Model::load(d + "/head.tagnet");
  size_t head = headed.num_layers();
  while (head > 0 && headed.layer(--head).type() != "Dense") {
  }
  EXPECT_EQ(model_head(headed), Head::kLogit);
  EXPECT_EQ(headed.card().labels, kClasses);
  EXPECT_TRUE(same_bits(params_of(backbone, 0, head), params_of(headed, 0, head)));
  const nlohmann::json ev = run_cli_json("evaluate --model " + d + "/head.tagnet --dataset " + d + "/val --json");
  EXPECT_GT(ev["accuracy"].get<double>(), 0.9) << ev.dump();

  // The same labels and head: training goes on, Adam state and history included.
  r = run_cli("train" + data + " --base " + d + "/head.tagnet --epochs 2 --model " + d + "/more.tagnet --plot '' --history " +
              d + "/h2.json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("continuing " + d + "/head.tagnet's Adam state (24 steps)"), std::string::npos) << r.out;
  std::ifstream h1f(d + "/h1.json"), h2f(d + "/h2.json");
  const nlohmann::json h1 = nlohmann::json::parse(h1f)["history"], h2 = nlohmann::json::parse(h2f)["history"];
  ASSERT_EQ(h2.size(), 5u);
  for (size_t e = 0; e < 5; ++e) EXPECT_EQ(h2[e]["epoch"], e + 1);
  for (size_t e = 0; e < 3; ++e) EXPECT_EQ(h2[e]["loss"], h1[e]["loss"]);
  std::unique_ptr<Optimizer> opt;
  Model more = Model::load(d + "/more.tagnet", &opt);
  ASSERT_TRUE(opt);
  EXPECT_EQ(opt->iterations, 40);   // 64 pictures in batches of 8, 5 epochs
  EXPECT_TRUE(same_bits(params_of(backbone, 0, head), params_of(more, 0, head)));
  EXPECT_FALSE(same_bits(params_of(headed, head, headed.num_layers()), params_of(more, head, more.num_layers())));

  // A two-class softmax head made by replace-head is kept (not swapped for one logit), and so
  // are its frozen layers.
  r = run_cli("replace-head --model " + bb + " --out " + d + "/soft.tagnet --labels left,right --head softmax");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_cli("train" + data + " --base " + d + "/soft.tagnet --epochs 1 --model " + d + "/soft2.tagnet --plot '' --history ''");
  ASSERT_EQ(r.status, 0) << r.out;
  Model soft = Model::load(d + "/soft2.tagnet");
  EXPECT_EQ(model_head(soft), Head::kSoftmax);
  EXPECT_EQ(soft.output_shape(), Shape{2});
  EXPECT_TRUE(same_bits(params_of(backbone, 0, head), params_of(soft, 0, head)));

  r = run_cli("train" + data + " --base " + bb + " --size 96 --model " + d + "/x.tagnet");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "tagnet: error: " + bb + ": expects 56x56 pictures, not --size 96\n");
  EXPECT_FALSE(fs::exists(d + "/x.tagnet"));
  fs::remove_all(d);
}

TEST(TransferCli, BadInputGivesOneLineErrors) {
  const std::string d = cli_temp_dir("xfer_bad");
  const std::string bb = write_backbone(d);
  { std::ofstream(d + "/garbage.features") << "not features at all, but long enough for a header......"; }
  FeatureSet f;
  f.feature_shape = Shape({3});
  f.features = Tensor(Shape({4, 3}));
  f.targets = Tensor(Shape({4, 2}));
  f.labels = {"a", "b"};
  f.save(d + "/small.features");
  {
    std::ifstream in(d + "/small.features", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d + "/truncated.features", std::ios::binary) << bytes.substr(0, bytes.size() - 16);
  }
  const std::string model = d + "/top.tagnet";
  auto one_line_error = [&](const std::string& args, const std::string& expected) {
    const CliResult r = run_cli(args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_EQ(count_lines(r.out), 1) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("tagnet: error: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(expected), std::string::npos) << args << "\n" << r.out;
    EXPECT_FALSE(fs::exists(model)) << args;
  };
  one_line_error("train --features " + d + "/garbage.features --model " + model,
                 d + "/garbage.features: not a tagnet feature file");
  one_line_error("train --features " + d + "/truncated.features --model " + model,
                 d + "/truncated.features: truncated or corrupt file");
  one_line_error("train --features " + bb + " --model " + model, bb + ": this is a tagnet model, not a feature file");
  one_line_error("train --features " + d + "/missing.features --model " + model, d + "/missing.features: cannot open");
  one_line_error("train --features " + d + "/small.features --model " + d + "/no/such/top.tagnet",
                 d + "/no/such/top.tagnet: cannot write");
  one_line_error("finetune --base " + bb + " --top " + bb + " --dataset " + d + " --model " + model,
                 bb + ": takes input (56, 56, 1), but the first 8 layers of " + bb + " give (7, 7, 64)");
  one_line_error("train --dataset fashion-mnist-2x2 --base " + bb + " --trainable bogus --model " + model,
                 "--trainable bogus: expected ");
  one_line_error("replace-head --model " + bb + " --out " + model + " --cut nope --outputs 2", "--cut nope: expected ");
  one_line_error("features --model " + d + "/garbage.features --dataset " + d + " --out " + d + "/x.features",
                 d + "/garbage.features: ");
  EXPECT_FALSE(fs::exists(d + "/x.features"));
  fs::remove_all(d);
}

}  // namespace
}  // namespace tagnet
