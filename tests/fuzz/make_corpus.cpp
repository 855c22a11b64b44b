// Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): small valid files made by
// tagnet itself, each reaching a different part of its reader. make-corpus.sh runs it.
//   tagnet_fuzz_corpus DIR
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tagnet/train/features.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"
#include "tagnet/io/onnx.h"

// Channel counts and formats the library never writes (grey + alpha PNG, BMP). The JPEGs come
// from cjpeg and jpegtran (make-corpus.sh): stb's JPEG writer shifts negative numbers left,
// which this build's UBSan stops at.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma clang diagnostic pop

#include "file_io.h"

namespace tagnet {
namespace {

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

// The other input form of the container targets (container_input.h): JSON, 0, data section.
std::vector<uint8_t> json_form(const std::vector<uint8_t>& file) {
  const size_t json_bytes = get_le<uint64_t>(file.data() + 16);
  const size_t data_start = round_up(kContainerHeader + json_bytes, kContainerAlign);
  std::vector<uint8_t> out(file.begin() + kContainerHeader, file.begin() + kContainerHeader + json_bytes);
  out.push_back(0);
  out.insert(out.end(), file.begin() + data_start, file.end());
  return out;
}

void models(const std::string& dir) {
  // Dense + softmax, with Adam's state after one step.
  Model dense({3});
  dense.add(std::make_unique<Dense>(2));
  dense.add(std::make_unique<Softmax>());
  dense.build(1);
  dense.card().labels = {"cat", "dog"};
  Engine engine(Engine::Options{1, "auto"});
  Rng rng(1);
  Tensor x({2, 3}), y({2, 2});
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform();
  y.at(0) = y.at(3) = 1;
  Adam adam;
  dense.train_step(x, y, LossKind::kCategoricalCrossentropy, adam, {&engine, true, &rng, 0});
  write(dir + "/dense_adam.tagnet", dense.save_bytes(&adam));

  // Every picture layer, one logit.
  Model conv({4, 4, 1});
  conv.add(std::make_unique<Conv2D>(2, 3, 1, Padding::kSame, Activation::kRelu));
  conv.add(std::make_unique<BatchNorm>());
  conv.add(std::make_unique<MaxPool2D>(2));
  conv.add(std::make_unique<Flatten>());
  conv.add(std::make_unique<Dense>(1));
  conv.build(2);
  conv.card().labels = {"no", "yes"};
  conv.card().preprocessing = Preprocessing::from_json({{"rescale", 1.0 / 255}, {"size", {4, 4}}});
  const std::vector<uint8_t> conv_bytes = conv.save_bytes();
  write(dir + "/conv_logit.tagnet", conv_bytes);
  write(dir + "/conv_logit.json", json_form(conv_bytes));

  // Multi-label: valid strided convolution, global pooling, dropout, sigmoid.
  Model multi({5, 5, 2});
  multi.add(std::make_unique<Conv2D>(2, 2, 2, Padding::kValid, Activation::kNone, false));
  multi.add(std::make_unique<ReLU>());
  multi.add(std::make_unique<GlobalAvgPool2D>());
  multi.add(std::make_unique<Dropout>(0.25f));
  multi.add(std::make_unique<Dense>(3, Activation::kRelu));
  multi.add(std::make_unique<Sigmoid>());
  multi.build(3);
  multi.layer(0).trainable = false;
  multi.card().labels = {"red", "dress", "shirt"};
  multi.card().combinations = std::set<std::vector<std::string>>{{"dress", "red"}, {"shirt"}};
  write(dir + "/multi_sigmoid.tagnet", multi.save_bytes());
}

void feature_sets(const std::string& dir) {
  FeatureSet s;
  s.feature_shape = Shape{2, 2, 1};
  s.features = Tensor(Shape{2, 2, 2, 1});
  s.targets = Tensor(Shape{2, 3});
  for (size_t i = 0; i < s.features.size(); ++i) s.features.at(i) = 0.5f * float(i);
  s.targets.at(0) = s.targets.at(5) = 1;
  s.labels = {"a", "b", "c"};
  s.metadata = {{"dataset", "seed"}};
  s.base = {{"layers", 2}, {"fingerprint", "0123456789abcdef"}};
  const std::vector<uint8_t> three = s.save_bytes();
  write(dir + "/softmax3.features", three);
  write(dir + "/softmax3.json", json_form(three));

  FeatureSet logit;
  logit.feature_shape = Shape{4};
  logit.features = Tensor(Shape{1, 4});
  logit.targets = Tensor(Shape{1, 1});
  logit.head = Head::kLogit;
  logit.labels = {"no", "yes"};
  write(dir + "/logit.features", logit.save_bytes());
}

void append(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

void pictures(const std::string& dir) {
  Image im;
  im.width = 9;
  im.height = 7;
  for (int i = 0; i < im.width * im.height; ++i)
    im.rgb.insert(im.rgb.end(), {uint8_t(i * 4), uint8_t(255 - i * 3), uint8_t(i * 37)});
  write(dir + "/rgb.png", encode_png(im));
  std::vector<uint8_t> out;
  const uint8_t grey_alpha[] = {0, 255, 128, 0, 255, 128, 64, 200};
  stbi_write_png_to_func(append, &out, 2, 2, 2, grey_alpha, 4);
  write(dir + "/grey_alpha.png", out);
  out.clear();
  stbi_write_bmp_to_func(append, &out, 3, 2, 3, im.rgb.data());
  write(dir + "/rgb.bmp", out);
  // GIF89a, 2x2, global palette {red, blue}, two frames (LZW, minimum code size 2).
  write(dir + "/two_frames.gif",
        {'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x80, 0, 0, 255, 0, 0, 0, 0, 255,
         0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 3, 0x44, 0x02, 0x05, 0,
         0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0, 2, 3, 0x0C, 0x10, 0x05, 0, 0x3B});
}

}  // namespace
}  // namespace tagnet

namespace tagnet {
namespace {

// Small ONNX files from tagnet's exporter: every layer kind, a Flatten of a picture (the
// permuted Dense), global pooling, each head.
void onnx_models(const std::string& dir) {
  Model conv({6, 6, 1});
  conv.add(std::make_unique<Conv2D>(2, 2, 1, Padding::kSame, Activation::kRelu));
  conv.add(std::make_unique<BatchNorm>());
  conv.add(std::make_unique<MaxPool2D>(2));
  conv.add(std::make_unique<Dropout>(0.25f));
  conv.add(std::make_unique<Flatten>());
  conv.add(std::make_unique<Dense>(3));
  conv.add(std::make_unique<Softmax>());
  conv.build(1);
  conv.card().labels = {"a", "b", "c"};
  write(dir + "/conv_softmax.onnx", export_onnx(conv));
  Model gap({5, 5, 3});
  gap.add(std::make_unique<Conv2D>(2, 3, 2, Padding::kValid));
  gap.add(std::make_unique<ReLU>());
  gap.add(std::make_unique<GlobalAvgPool2D>());
  gap.add(std::make_unique<Dense>(2));
  gap.add(std::make_unique<Sigmoid>());
  gap.build(2);
  write(dir + "/gap_sigmoid.onnx", export_onnx(gap, 17));
}

}  // namespace
}  // namespace tagnet

namespace tagnet {
namespace {

// The structure-aware targets read their choices from any bytes: a few fixed byte strings start
// them off in different places.
void choice_seeds(const std::string& dir) {
  uint64_t s = 12345;
  for (size_t len : {16, 64, 256, 1024}) {
    std::vector<uint8_t> bytes(len);
    for (auto& b : bytes) b = uint8_t((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 56);
    write(dir + "/seed-" + std::to_string(len), bytes);
  }
}

}  // namespace
}  // namespace tagnet

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tagnet_fuzz_corpus DIR (writes DIR/model, DIR/features, DIR/image, DIR/onnx, DIR/onnx_graph, DIR/model_numbers)\n");
    return 2;
  }
  const std::string dir = argv[1];
  tagnet::models(dir + "/model");
  tagnet::feature_sets(dir + "/features");
  tagnet::pictures(dir + "/image");
  tagnet::onnx_models(dir + "/onnx");
  tagnet::choice_seeds(dir + "/onnx_graph");
  tagnet::choice_seeds(dir + "/model_numbers");
  return 0;
}
