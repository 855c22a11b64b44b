// The model file reader on files that are valid in form: a few small models of every layer
// kind are saved, and the fuzzer's bytes replace numbers of their JSON header (input shape,
// layer configs, tensor shapes and offsets, the card's thresholds and statistics) with the
// values that break arithmetic, or with values of another JSON type; the file is sealed again
// with correct lengths and checksums. Every file either loads into a model that classifies a
// picture and saves and loads again, or is refused with one line naming the file.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <limits>
#include <memory>

#include "container_edit.h"
#include "fuzz_check.h"
#include "small_models.h"
#include "tagnet/app/classifier.h"
#include "tagnet/nn/layers.h"

namespace {

using namespace tagnet;

std::vector<std::vector<uint8_t>> base_models() {
  std::vector<std::vector<uint8_t>> out;
  {
    Model m = small_vgg_like();
    ModelCard& c = m.card();
    c.threshold = 0.5;
    c.thresholds = {0.4, 0.5, 0.6, 0.5, 0.5};
    c.preprocessing = Preprocessing::for_channels(3);
    c.combinations = std::set<std::vector<std::string>>{{"a", "b"}, {"c"}};
    // Statistics of the 64 features below the head.
    c.novelty = {{"means", {std::vector<float>(64, 0.5f)}}, {"spread", std::vector<float>(64, 1.f)}, {"threshold", 2.0}};
    out.push_back(m.save_bytes());
  }
  {
    Model m({6, 6, 1});
    m.add(std::make_unique<Conv2D>(2, 2, 2, Padding::kValid, Activation::kRelu));
    m.add(std::make_unique<GlobalAvgPool2D>());
    m.add(std::make_unique<Dense>(2, Activation::kRelu));
    m.add(std::make_unique<Dense>(2));
    m.add(std::make_unique<Softmax>());
    m.build(2);
    m.card().labels = {"cat", "dog"};
    out.push_back(m.save_bytes());
  }
  return out;
}

// Every number in `j`, depth first.
void numbers(nlohmann::json& j, std::vector<nlohmann::json*>& out) {
  if (j.is_number()) out.push_back(&j);
  else if (j.is_structured())
    for (auto& v : j) numbers(v, out);
}

nlohmann::json hostile(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange(0, 13)) {
    case 0: return 0;
    case 1: return -1;
    case 2: return std::numeric_limits<int64_t>::max();
    case 3: return std::numeric_limits<int64_t>::min();
    case 4: return std::numeric_limits<uint64_t>::max();
    case 5: return 4.5e109;
    case 6: return -1e-300;
    case 7: return 0.5;
    case 8: return uint64_t(1) << 31;
    case 9: return "7";
    case 10: return nlohmann::json::array({1, 2});
    case 11: return nullptr;
    default: return p.ConsumeIntegralInRange<int64_t>(-3, 70000);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::vector<uint8_t>> bases = base_models();
  static Engine engine(Engine::Options{1, "hwy"});
  FuzzedDataProvider p(data, size);
  const std::vector<uint8_t>& base = bases[p.ConsumeIntegralInRange<size_t>(0, bases.size() - 1)];
  nlohmann::json h = header_of(base);
  std::vector<nlohmann::json*> slots;
  numbers(h, slots);
  const int edits = p.ConsumeIntegralInRange(1, 6);
  for (int i = 0; i < edits && !slots.empty(); ++i) *slots[p.ConsumeIntegralInRange<size_t>(0, slots.size() - 1)] = hostile(p);
  const std::vector<uint8_t> file = with_header_text(base, h.dump());
  const std::string origin = "fuzz.tagnet";
  try {
    Classifier c = Classifier::open(file.data(), file.size(), origin);
    const Model& m = c.model();
    fuzz::expect(m.built() && m.num_layers() > 0, "a loaded model is built and has layers");
    fuzz::expect(c.card().labels.size() <= std::max<size_t>(m.output_shape().numel(), 2),
                 "no more label names than probabilities");
    if (m.input_shape().rank() == 3 && m.input_shape().numel() <= 64 * 64 * 3 && m.param_count() <= (1u << 20)) {
      Image picture;
      picture.width = picture.height = 5;
      picture.rgb.assign(75, 128);
      c.check_takes_pictures();
      c.classify({picture}, Context{&engine});
    }
    const std::vector<uint8_t> again = c.save_bytes();
    Model::load_bytes(again.data(), again.size(), "saved again", nullptr);
  } catch (const ModelFileError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
  }
  return 0;
}
