// The native side of the WebAssembly tests (wasm/test/): model files, pictures and the native
// outputs the WASM build must reproduce.
//
//   tagnet_wasm_reference make <dir>
//       Builds each test network with a fixed seed, gives its BatchNorm statistics and biases
//       non-trivial values (so that a mistake in using them shows), saves <name>.tagnet, writes
//       deterministic RGBA pictures (<picture>.rgba, raw bytes) and reference.json with the
//       native classify outputs of every model for every picture, and where the fine-tuning
//       policy starts each part of every model ("trainableFrom").
//       Also the ONNX files of a briefly trained fashionnet and of smallervggnet (onnx-*.onnx),
//       with their preprocessed inputs (onnx-*.f32: the pictures as (N, H, W, C) float32) and
//       native outputs, under "onnx" in reference.json: ONNX Runtime and the module's importOnnx
//       are checked against them.
//   tagnet_wasm_reference classify <model.tagnet> <picture.rgba> <width> <height>
//       Prints {"probs": [...]} for one picture: checks a model saved by the WASM build.
//
// Outputs come from tagnet::classify_images, the path the WASM module's classify() takes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/kernels/engine.h"
#include "tagnet/train/finetune.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"
#include "tagnet/io/onnx.h"
#include "tagnet/nn/optim.h"

namespace {

using tagnet::Head;
using tagnet::Model;

struct Network {
  const char* name;
  const char* architecture;
  int outputs;
  Head head;
};

const Network kNetworks[] = {
    {"smallervggnet", "smallervggnet", 6, Head::kSigmoid},
    {"fashionnet", "fashionnet", 10, Head::kSoftmax},
    {"fashionnet_logit", "fashionnet", 2, Head::kLogit},
};

struct Picture {
  const char* name;
  int width, height;
};

// Larger than every model input (area shrinking), smaller (bilinear enlarging), and one that
// shrinks one axis while enlarging the other.
const Picture kPictures[] = {{"large", 131, 117}, {"small", 41, 29}, {"mixed", 150, 70}};

std::vector<uint8_t> make_rgba(const Picture& p, uint64_t seed) {
  tagnet::Rng rng(seed);
  std::vector<uint8_t> rgba(size_t(p.width) * p.height * 4);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) {
      uint8_t* px = &rgba[(size_t(y) * p.width + x) * 4];
      const float u = float(x) / p.width, v = float(y) / p.height;
      const float noise = rng.uniform(-40.f, 40.f);
      px[0] = uint8_t(std::clamp(255.f * u + noise, 0.f, 255.f));
      px[1] = uint8_t(std::clamp(127.5f + 127.5f * std::sin(9.f * u + 5.f * v) + noise, 0.f, 255.f));
      px[2] = uint8_t(std::clamp(255.f * v * v - noise, 0.f, 255.f));
      px[3] = uint8_t(rng.below(256));   // dropped by image_from_rgba; must not matter
    }
  return rgba;
}

// Random moving statistics, scales and biases: Glorot init leaves BN at the identity and
// biases at zero, where an error in applying them would go unnoticed.
void perturb(Model& m, uint64_t seed) {
  tagnet::Rng rng(seed);
  for (size_t i = 0; i < m.num_layers(); ++i)
    for (auto& p : m.layer(i).params()) {
      float lo = 0, hi = 0;
      if (p.name == "moving_mean") lo = -0.2f, hi = 0.2f;
      else if (p.name == "moving_variance") lo = 0.5f, hi = 2.f;
      else if (p.name == "gamma") lo = 0.8f, hi = 1.25f;
      else if (p.name == "beta" || p.name == "bias") lo = -0.1f, hi = 0.1f;
      else continue;
      for (size_t k = 0; k < p.value.size(); ++k) p.value.at(k) = rng.uniform(lo, hi);
    }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

std::vector<float> classify(Model& m, const tagnet::Image& im, const tagnet::Engine& engine) {
  const tagnet::Context ctx{&engine, false, nullptr};
  return tagnet::classify_images(m, {im}, ctx).at(0);
}

// One exported model: its ONNX file, the pictures as it takes them and its raw outputs.
nlohmann::json onnx_reference(const std::string& dir, const std::string& name, Model& m,
                              const std::vector<tagnet::Image>& images, const tagnet::Engine& engine) {
  const auto bytes = tagnet::export_onnx(m);
  write_file(dir + "/onnx-" + name + ".onnx", bytes.data(), bytes.size());
  const tagnet::Shape& in = m.input_shape();
  tagnet::Tensor x(in.batched(static_cast<int>(images.size())));
  for (size_t b = 0; b < images.size(); ++b) tagnet::image_to_input(images[b], in[0], in[1], in[2], x.data() + b * in.numel());
  write_file(dir + "/onnx-" + name + ".f32", x.data(), x.size() * sizeof(float));
  const tagnet::Context ctx{&engine, false, nullptr};
  const tagnet::Tensor& y = m.forward(x, ctx);
  const size_t F = y.size() / images.size();
  nlohmann::json pictures = nlohmann::json::array(), outputs = nlohmann::json::array();   // in the input's order
  for (size_t b = 0; b < images.size(); ++b) {
    pictures.push_back(kPictures[b].name);
    outputs.push_back(std::vector<float>(y.data() + b * F, y.data() + (b + 1) * F));
  }
  return {{"name", name}, {"onnx", "onnx-" + name + ".onnx"}, {"input", "onnx-" + name + ".f32"},
          {"inputShape", in.dims()}, {"labels", m.card().labels}, {"pictures", pictures}, {"outputs", outputs}};
}

// ONNX files of two networks: fashionnet after a few Adam steps on the pictures (a trained
// model: weights and BatchNorm-free layers moved by training) and smallervggnet (BatchNorm
// statistics perturbed; its Flatten -> Dense is where the NCHW feature order matters).
nlohmann::json onnx_references(const std::string& dir, const std::vector<tagnet::Image>& images,
                               const tagnet::Engine& engine) {
  nlohmann::json out = nlohmann::json::array();
  Model trained = tagnet::make_architecture("fashionnet", {4, Head::kSoftmax, {}, -1.f});
  trained.build(3);
  perturb(trained, 5);
  trained.card().labels = {"shirt", "dress", "bag", "boot"};
  const tagnet::Shape& in = trained.input_shape();
  const int B = static_cast<int>(images.size());
  tagnet::Tensor x(in.batched(B)), t({B, 4});
  for (int b = 0; b < B; ++b) {
    tagnet::image_to_input(images[b], in[0], in[1], in[2], x.data() + size_t(b) * in.numel());
    t.at(size_t(b) * 4 + b % 4) = 1.f;
  }
  tagnet::Adam adam(3e-3f);
  tagnet::Rng rng(1);
  const tagnet::Context train_ctx{&engine, true, &rng};
  for (int step = 0; step < 20; ++step)
    trained.train_step(x, t, tagnet::LossKind::kCategoricalCrossentropy, adam, train_ctx);
  out.push_back(onnx_reference(dir, "trained-fashionnet", trained, images, engine));

  Model vgg = tagnet::make_architecture("smallervggnet", {6, Head::kSigmoid, {}, -1.f});
  vgg.build(7);
  perturb(vgg, 11);
  vgg.card().labels = {"red", "blue", "black", "dress", "jeans", "shirt"};
  out.push_back(onnx_reference(dir, "smallervggnet", vgg, images, engine));
  return out;
}

int make(const std::string& dir, const tagnet::Engine& engine) {
  nlohmann::json ref;
  ref["engine"] = engine.describe();
  ref["pictures"] = nlohmann::json::array();
  std::vector<tagnet::Image> images;
  uint64_t seed = 100;
  for (const auto& p : kPictures) {
    const auto rgba = make_rgba(p, seed++);
    write_file(dir + "/" + p.name + ".rgba", rgba.data(), rgba.size());
    images.push_back(tagnet::image_from_rgba(rgba.data(), p.width, p.height));
    ref["pictures"].push_back({{"name", p.name}, {"file", std::string(p.name) + ".rgba"},
                               {"width", p.width}, {"height", p.height}});
  }
  ref["models"] = nlohmann::json::array();
  for (const auto& n : kNetworks) {
    Model m = tagnet::make_architecture(n.architecture, {n.outputs, n.head, {}, -1.f});
    m.build(7);
    perturb(m, 11);
    std::vector<std::string> labels;
    for (int i = 0; i < n.outputs; ++i) labels.push_back(std::string("label") + char('a' + i));
    m.card().labels = labels;
    m.card().label_mode = label_mode_of(n.head);
    const std::string file = std::string(n.name) + ".tagnet";
    m.save(dir + "/" + file);
    nlohmann::json outputs = nlohmann::json::object();
    for (size_t i = 0; i < images.size(); ++i)
      outputs[kPictures[i].name] = classify(m, images[i], engine);
    ref["models"].push_back({{"name", n.name},
                             {"file", file},
                             {"architecture", n.architecture},
                             {"head", tagnet::head_name(n.head)},
                             {"labels", labels},
                             {"inputShape", m.input_shape().dims()},
                             {"params", m.param_count()},
                             {"trainableFrom", {{"head", tagnet::trainable_from(m, "head")},
                                                {"last-block", tagnet::trainable_from(m, "last-block")},
                                                {"all", tagnet::trainable_from(m, "all")}}},
                             {"outputs", outputs}});
  }
  ref["onnx"] = onnx_references(dir, images, engine);
  std::ofstream(dir + "/reference.json") << ref.dump(1) << "\n";
  return 0;
}

int classify_one(const std::string& model_path, const std::string& picture, int width, int height,
                 const tagnet::Engine& engine) {
  Model m = Model::load(model_path);
  const auto rgba = read_file(picture);
  if (rgba.size() != size_t(width) * height * 4)
    throw std::runtime_error(picture + ": expected " + std::to_string(width) + "x" +
                             std::to_string(height) + " RGBA bytes");
  const nlohmann::json out = {{"probs", classify(m, tagnet::image_from_rgba(rgba.data(), width, height), engine)}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> a(argv + 1, argv + argc);
    // The project's own kernels: the code the WASM build runs, compiled natively.
    tagnet::Engine engine({0, "hwy"});
    if (a.size() == 2 && a[0] == "make") return make(a[1], engine);
    if (a.size() == 5 && a[0] == "classify")
      return classify_one(a[1], a[2], std::stoi(a[3]), std::stoi(a[4]), engine);
    std::cerr << "usage: tagnet_wasm_reference make <dir>\n"
                 "       tagnet_wasm_reference classify <model.tagnet> <picture.rgba> <width> <height>\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tagnet_wasm_reference: " << e.what() << "\n";
    return 1;
  }
}
