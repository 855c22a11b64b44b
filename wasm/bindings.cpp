// Embind bindings of the tagnet core: load, classify, fine-tune and save models from JS.
//
// The JS side (tagnet.js) is the public API; this layer stays low-level on purpose:
//  - Bytes cross the boundary as (pointer, length) pairs into the wasm heap, which the wrapper
//    fills from typed arrays with one copy; results stay in buffers owned by the C++ objects
//    until the wrapper copies them out.
//  - No C++ exception and no JS exception crosses a bound function. A JS throw unwinding
//    through Embind's invokers would skip the destructors of converted arguments (leaking
//    heap), so every entry point catches std::exception, keeps the message, and returns false;
//    the wrapper then throws a JS Error with takeError().
#include <emscripten/bind.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "tagnet/nn/architectures.h"
#include "tagnet/data/dataset.h"
#include "tagnet/kernels/engine.h"
#include "tagnet/train/finetune.h"
#include "tagnet/train/novelty.h"
#include "tagnet/train/teach.h"
#include "tagnet/io/image.h"
#include "tagnet/nn/model.h"
#include "tagnet/io/onnx.h"
#include "tagnet/nn/optim.h"
#include "tagnet/train/train.h"

namespace {

using tagnet::Model;

std::string g_error;
std::unique_ptr<tagnet::Engine> g_engine;

template <typename F>
bool guarded(F&& f) {
  try {
    f();
    return true;
  } catch (const std::bad_alloc&) {
    g_error = "out of memory (the WebAssembly heap is limited to 2 GB)";
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown error";
  }
  return false;
}

std::string take_error() {
  std::string e;
  e.swap(g_error);
  return e;
}

const tagnet::Engine& engine() {
  if (!g_engine) throw std::logic_error("the tagnet module is not initialised (call init first)");
  return *g_engine;
}

bool init(int threads) {
  return guarded([&] {
#ifndef __EMSCRIPTEN_PTHREADS__
    threads = 1;
#endif
    g_engine.reset();
    g_engine = std::make_unique<tagnet::Engine>(tagnet::Engine::Options{std::max(1, threads), "hwy"});
  });
}

std::string engine_description() { return g_engine ? g_engine->describe() : std::string(); }

bool threads_supported() {
#ifdef __EMSCRIPTEN_PTHREADS__
  return true;
#else
  return false;
#endif
}

// The linear memory, in bytes: grows when the allocator needs more, never shrinks.
double heap_bytes() { return static_cast<double>(__builtin_wasm_memory_size(0)) * 65536.0; }

// Bytes the allocator has handed out and not taken back: exact, unlike heap_bytes().
double heap_in_use() { return static_cast<double>(mallinfo().uordblks); }

const uint8_t* heap_bytes_at(uintptr_t p) { return reinterpret_cast<const uint8_t*>(p); }

tagnet::Image checked_rgba(uintptr_t rgba, size_t bytes, int width, int height) {
  if (width < 1 || height < 1 || width > tagnet::kMaxImageSide || height > tagnet::kMaxImageSide)
    throw std::invalid_argument("image size " + std::to_string(width) + "x" +
                                std::to_string(height) + " is out of range (1.." +
                                std::to_string(tagnet::kMaxImageSide) + " per side)");
  const size_t expected = size_t(width) * size_t(height) * 4;
  if (bytes != expected)
    throw std::invalid_argument("RGBA data of a " + std::to_string(width) + "x" +
                                std::to_string(height) + " image must be " +
                                std::to_string(expected) + " bytes, got " + std::to_string(bytes));
  return tagnet::image_from_rgba(heap_bytes_at(rgba), width, height);
}

std::vector<std::string> parse_labels(const std::string& labels_json, const char* what) {
  const auto parsed = nlohmann::json::parse(labels_json);
  if (!parsed.is_array()) throw std::invalid_argument(std::string(what) + ": labels must be an array");
  std::vector<std::string> names;
  for (const auto& l : parsed) {
    if (!l.is_string()) throw std::invalid_argument(std::string(what) + ": labels must be strings");
    names.push_back(l.get<std::string>());
  }
  return names;
}

// ---- value objects ----

struct AugmentOptions {
  float rotation = 0, widthShift = 0, heightShift = 0, shear = 0, zoom = 0;
  bool hflip = false;
  std::string fill = "nearest";
  float cval = 0;
};

AugmentOptions to_options(const tagnet::Augment& a) {
  return {a.rotation_deg, a.width_shift, a.height_shift, a.shear_deg, a.zoom, a.hflip,
          tagnet::fill_mode_name(a.fill), a.cval};
}

tagnet::Augment from_options(const AugmentOptions& o) {
  tagnet::Augment a;
  a.rotation_deg = o.rotation;
  a.width_shift = o.widthShift;
  a.height_shift = o.heightShift;
  a.shear_deg = o.shear;
  a.zoom = o.zoom;
  a.hflip = o.hflip;
  a.fill = tagnet::fill_mode_from_name(o.fill);
  a.cval = o.cval;
  return a;
}

// The multi-label tutorial's augmentation, the default when the page teaches new labels.
AugmentOptions tutorial_augment() { return to_options(tagnet::tutorial_augment()); }

struct TrainerOptions {
  float lr = 1e-3f;
  float decay = 0;
  int epochs = 1;
  int batchSize = 32;
  double seed = 0;   // a JS number: integers up to 2^53 are exact
  AugmentOptions augment;
};

struct StepResult {
  double loss = 0, accuracy = 0;   // running means over the epoch so far
  double batchLoss = 0;
  int epoch = 0;                   // 1-based epoch of this step
  int step = 0, steps = 0;         // 1-based step within the epoch, steps per epoch
  bool epochEnd = false;
  bool done = false;               // the requested number of epochs is complete
};

// ---- model ----

class WasmModel {
 public:
  bool load(uintptr_t data, size_t size) {
    return guarded([&] { adopt(Model::load_bytes(heap_bytes_at(data), size, "model bytes"), "model bytes"); });
  }

  // An ONNX network (tagnet/io/onnx.h). `options_json`: {name, labels, inputSize, head}; errors
  // name `name` (the file's name on the page), else "ONNX bytes".
  bool import_onnx(uintptr_t data, size_t size, const std::string& options_json) {
    return guarded([&] {
      const auto o = nlohmann::json::parse(options_json);
      tagnet::OnnxImportOptions options;
      options.labels = o.value("labels", std::vector<std::string>{});
      options.input_size = o.value("inputSize", 0);
      options.head = o.value("head", std::string());
      const std::string origin = o.value("name", std::string("ONNX bytes"));
      adopt(tagnet::import_onnx(heap_bytes_at(data), size, origin, options), origin);
    });
  }

  bool export_onnx(int opset) {
    return guarded([&] { bytes_ = tagnet::export_onnx(model(), opset); });
  }

  bool loaded() const { return model_ != nullptr; }

 private:
  void adopt(Model&& loaded, const std::string& origin) {
    auto m = std::make_shared<Model>(std::move(loaded));
    if (m->num_layers() == 0) throw tagnet::ModelFileError(origin + ": the model has no layers");
    if (m->input_shape().rank() != 3 || (m->input_shape()[2] != 1 && m->input_shape()[2] != 3))
      throw tagnet::ModelFileError(origin + ": input shape " + m->input_shape().str() +
                                   " is not a picture (H, W, 1) or (H, W, 3)");
    model_ = std::move(m);
  }

 public:

  // JSON: {labels, inputShape, architecture, head, params, trainableParams, layers, metadata}.
  std::string info() const {
    std::string out;
    guarded([&] {
      const Model& m = model();
      nlohmann::json j;
      j["labels"] = labels();
      j["inputShape"] = m.input_shape().dims();
      j["architecture"] = m.card().architecture;
      j["head"] = tagnet::head_name(tagnet::model_head(m));
      j["labelMode"] = tagnet::label_mode_name(m.card().mode(tagnet::model_head(m)));
      j["params"] = m.param_count();
      j["trainableParams"] = m.trainable_param_count();
      nlohmann::json layers = nlohmann::json::array();
      for (size_t i = 0; i < m.num_layers(); ++i) {
        const auto& l = m.layer(i);
        layers.push_back({{"name", l.name},
                          {"type", l.type()},
                          {"trainable", l.trainable},
                          {"params", l.param_count(false)},
                          {"outputShape", l.output_shape.dims()}});
      }
      j["layers"] = std::move(layers);
      j["metadata"] = m.card().to_json();
      out = j.dump();
    });
    return out;
  }

  bool classify(uintptr_t rgba, size_t bytes, int width, int height) {
    return guarded([&] {
      std::vector<tagnet::Image> pictures;
      pictures.push_back(checked_rgba(rgba, bytes, width, height));
      run(pictures);
    });
  }

  // `dims` holds count x (bytes, width, height) as uint32; the pictures follow one another
  // from `pixels`.
  bool classify_batch(uintptr_t pixels, uintptr_t dims, int count) {
    return guarded([&] {
      if (count < 1) throw std::invalid_argument("classifyBatch: the batch is empty");
      const auto* d = reinterpret_cast<const uint32_t*>(dims);
      std::vector<tagnet::Image> pictures;
      pictures.reserve(count);
      size_t offset = 0;
      for (int i = 0; i < count; ++i) {
        pictures.push_back(checked_rgba(pixels + offset, d[3 * i], int(d[3 * i + 1]), int(d[3 * i + 2])));
        offset += d[3 * i];
      }
      run(pictures);
    });
  }

  uintptr_t output_data() const { return reinterpret_cast<uintptr_t>(out_.data()); }
  size_t output_size() const { return out_.size(); }
  uintptr_t novelty_data() const { return reinterpret_cast<uintptr_t>(novelty_.data()); }
  size_t novelty_size() const { return novelty_.size(); }

  bool save() {
    return guarded([&] { bytes_ = model().save_bytes(); });
  }
  uintptr_t bytes_data() const { return reinterpret_cast<uintptr_t>(bytes_.data()); }
  size_t bytes_size() const { return bytes_.size(); }
  void release_bytes() { std::vector<uint8_t>().swap(bytes_); }

  // `labels_json` is a JSON array of strings.
  bool replace_head(const std::string& labels_json, bool multi_label, double seed) {
    return guarded([&] {
      Model& m = model();
      const auto names = parse_labels(labels_json, "replaceHead");
      const size_t min_labels = multi_label ? 1 : 2;
      if (names.size() < min_labels)
        throw std::invalid_argument(std::string("replaceHead: a ") +
                                    (multi_label ? "multi-label" : "single-label") +
                                    " head needs at least " + std::to_string(min_labels) +
                                    " labels, got " + std::to_string(names.size()));
      const auto head = multi_label ? tagnet::Head::kSigmoid : tagnet::Head::kSoftmax;
      tagnet::replace_head(m, static_cast<int>(names.size()), head, static_cast<uint64_t>(seed));
      m.card().labels = names;
      m.card().label_mode = tagnet::label_mode_of(head);
    });
  }

  bool freeze(int up_to_layer) {
    return guarded([&] {
      Model& m = model();
      if (up_to_layer < 0 || size_t(up_to_layer) > m.num_layers())
        throw std::invalid_argument("freeze: layer index " + std::to_string(up_to_layer) +
                                    " is outside 0.." + std::to_string(m.num_layers()));
      m.freeze_below(size_t(up_to_layer));
    });
  }

  // The first layer that trains for `part` ("head", "last-block", "all" or a layer index or
  // name), by tagnet's fine-tuning policy (tagnet/train/finetune.h); -1 on error.
  int trainable_from(const std::string& part) const {
    int from = -1;
    guarded([&] { from = int(tagnet::trainable_from(model(), part)); });
    return from;
  }

  // Freezes the layers below trainable_from(part); -1 on error.
  int set_trainable(const std::string& part) {
    int from = -1;
    guarded([&] { from = int(tagnet::set_trainable(model(), part)); });
    return from;
  }

  // A new network of a known architecture (tagnet::make_architecture), Glorot-initialised,
  // with one output per label (a "logit" head takes two labels and has one output).
  bool create(const std::string& architecture, const std::string& labels_json,
              const std::string& head, double seed) {
    return guarded([&] {
      const auto names = parse_labels(labels_json, "createModel");
      const auto h = tagnet::head_from_name(head);
      if (h == tagnet::Head::kLogit && names.size() != 2)
        throw std::invalid_argument("createModel: a logit head takes exactly 2 labels");
      if (names.empty()) throw std::invalid_argument("createModel: no labels");
      auto m = std::make_shared<Model>(tagnet::make_architecture(
          architecture, {static_cast<int>(names.size()), h, {}, -1.f}));
      m->build(static_cast<uint64_t>(seed));
      m->card().labels = names;
      m->card().label_mode = tagnet::label_mode_of(h);
      model_ = std::move(m);
    });
  }

  Model& model() const {
    if (!model_) throw std::logic_error("no model is loaded");
    return *model_;
  }
  const std::shared_ptr<Model>& shared() const { return model_; }
  void adopt(Model&& m) { model_ = std::make_shared<Model>(std::move(m)); }

 private:
  std::vector<std::string> labels() const {
    const Model& m = model();
    const int count = m.output_shape().numel() == 1 ? 2 : int(m.output_shape().numel());
    if (int(m.card().labels.size()) == count) return m.card().labels;
    std::vector<std::string> names;
    for (int i = 0; i < count; ++i) names.push_back(std::to_string(i));
    return names;
  }

  void run(const std::vector<tagnet::Image>& pictures) {
    const tagnet::Context ctx{&engine(), false, nullptr};
    const auto probs = tagnet::classify_images(model(), pictures, ctx);
    novelty_ = tagnet::novelty_of_last_forward(model(), pictures.size());
    const size_t F = probs.empty() ? 0 : probs[0].size();
    out_.resize(probs.size() * F);
    for (size_t i = 0; i < probs.size(); ++i)
      std::copy(probs[i].begin(), probs[i].end(), out_.begin() + i * F);
  }

  std::shared_ptr<Model> model_;
  std::vector<float> out_;
  std::vector<float> novelty_;   // per picture of the last classification; -1: no statistics
  std::vector<uint8_t> bytes_;
};

// ---- fine-tuning ----

// tagnet::Trainer one batch at a time, so JS can report progress and stop between batches.
class WasmTrainer {
 public:
  bool init(const WasmModel& source, const TrainerOptions& o) {
    return guarded([&] {
      auto model = source.shared();
      if (!model) throw std::logic_error("no model is loaded");
      if (!(o.lr > 0)) throw std::invalid_argument("createTrainer: lr must be positive");
      if (o.epochs < 1) throw std::invalid_argument("createTrainer: epochs must be at least 1");
      if (o.batchSize < 1) throw std::invalid_argument("createTrainer: batchSize must be at least 1");
      if (!(o.seed >= 0)) throw std::invalid_argument("createTrainer: seed must be non-negative");
      const tagnet::Augment a = from_options(o.augment);
      const int outputs = int(model->output_shape().numel());
      auto set = std::make_unique<tagnet::ImageSet>(model->input_shape(), outputs);
      set->set_augment(a);
      auto adam = std::make_unique<tagnet::Adam>(o.lr, o.decay);
      tagnet::TrainOptions to;
      to.epochs = o.epochs;
      to.batch_size = o.batchSize;
      to.seed = static_cast<uint64_t>(o.seed);
      to.augment = a.active();
      const tagnet::Engine* e = &engine();
      trainer_ = std::make_unique<tagnet::Trainer>(*model, *set, *adam,
                                                   tagnet::loss_for(tagnet::model_head(*model)), to,
                                                   tagnet::Context{e, true, nullptr});
      engine_ = e;
      model_ = std::move(model);
      set_ = std::move(set);
      adam_ = std::move(adam);
      outputs_ = outputs;
      epochs_ = o.epochs;
    });
  }

  bool add_example(uintptr_t rgba, size_t bytes, int width, int height, uintptr_t target,
                   int count) {
    return guarded([&] {
      check();
      if (count != outputs_)
        throw std::invalid_argument("addExample: the label vector has " + std::to_string(count) +
                                    " values, the model has " + std::to_string(outputs_) +
                                    " outputs");
      const auto* t = reinterpret_cast<const float*>(target);
      set_->add(checked_rgba(rgba, bytes, width, height), std::vector<float>(t, t + count));
    });
  }

  size_t size() const { return set_ ? set_->size() : 0; }

  bool step() {
    return guarded([&] {
      check();
      if (int(model_->output_shape().numel()) != outputs_)
        throw std::logic_error("the model's head changed after the trainer was created; "
                               "create a new trainer");
      if (&engine() != engine_)
        throw std::logic_error("the module was initialised again; create a new trainer");
      if (set_->size() == 0) throw std::invalid_argument("the trainer has no examples");
      const tagnet::Progress& p = trainer_->step();
      last_ = StepResult{};
      last_.batchLoss = p.batch_loss;
      last_.loss = p.loss;
      last_.accuracy = p.accuracy;
      last_.epoch = p.epoch;
      last_.step = int(p.step);
      last_.steps = int(p.steps);
      last_.epochEnd = p.epoch_end;
      last_.done = p.epoch_end && p.epoch >= epochs_;
    });
  }

  StepResult result() const { return last_; }

 private:
  void check() const {
    if (!trainer_) throw std::logic_error("the trainer is not initialised");
  }

  // Declared before trainer_, which borrows them, so they outlive it.
  std::shared_ptr<Model> model_;   // shared: the trainer stays valid after model.delete()
  std::unique_ptr<tagnet::ImageSet> set_;
  std::unique_ptr<tagnet::Adam> adam_;
  std::unique_ptr<tagnet::Trainer> trainer_;
  const tagnet::Engine* engine_ = nullptr;
  int outputs_ = 0;
  int epochs_ = 1;
  StepResult last_;
};


// ---- teaching new labels ----

struct TeachOptions {
  int copies = 8;
  int steps = 300;
  float lr = 3e-3f;
  double heldOut = 0.2;
  bool keepLabels = true;
  double seed = 1;
  AugmentOptions augment = to_options(tagnet::tutorial_augment());
};

// tagnet::Teacher a piece at a time, so JS can report progress between pieces.
class WasmTeacher {
 public:
  bool init(const WasmModel& source, const std::string& labels_json, bool one_per_picture,
            const TeachOptions& o) {
    return guarded([&] {
      if (!(o.seed >= 0)) throw std::invalid_argument("createTeacher: seed must be non-negative");
      tagnet::TeachOptions to;
      to.copies = o.copies;
      to.steps = o.steps;
      to.lr = o.lr;
      to.held_out = o.heldOut;
      to.keep_labels = o.keepLabels;
      to.seed = static_cast<uint64_t>(o.seed);
      to.augment = from_options(o.augment);
      teacher_ = std::make_unique<tagnet::Teacher>(source.model(), parse_labels(labels_json, "createTeacher"),
                                                   one_per_picture, to, tagnet::Context{&engine(), false, nullptr});
    });
  }

  // `labels_json`: the taught labels this picture shows.
  bool add(uintptr_t rgba, size_t bytes, int width, int height, const std::string& labels_json) {
    return guarded([&] {
      teacher().add(checked_rgba(rgba, bytes, width, height), parse_labels(labels_json, "addPicture"));
    });
  }

  size_t size() const { return teacher_ ? teacher_->size() : 0; }

  // 1: more to do, 0: done, -1: error.
  int step() {
    int more = -1;
    guarded([&] { more = teacher().step() ? 1 : 0; });
    return more;
  }

  // JSON {phase, done, total}.
  std::string progress() const {
    if (!teacher_) return "{}";
    const auto p = teacher_->progress();
    return nlohmann::json{{"phase", p.phase}, {"done", p.done}, {"total", p.total}}.dump();
  }

  std::string report() const { return teacher_ ? teacher_->report().to_json().dump() : "{}"; }

  // Puts the taught model into `into` (a new Model object; the one taught stays as it was).
  bool result(WasmModel& into) const {
    return guarded([&] { into.adopt(teacher().result()); });
  }

 private:
  tagnet::Teacher& teacher() const {
    if (!teacher_) throw std::logic_error("the teacher is not initialised");
    return *teacher_;
  }
  std::unique_ptr<tagnet::Teacher> teacher_;
};

}  // namespace

EMSCRIPTEN_BINDINGS(tagnet) {
  namespace em = emscripten;
  em::function("init", &init);
  em::function("takeError", &take_error);
  em::function("engineDescription", &engine_description);
  em::function("threadsSupported", &threads_supported);
  em::function("heapBytes", &heap_bytes);
  em::function("heapInUse", &heap_in_use);
  em::function("tutorialAugment", &tutorial_augment);

  em::value_object<AugmentOptions>("AugmentOptions")
      .field("rotation", &AugmentOptions::rotation)
      .field("widthShift", &AugmentOptions::widthShift)
      .field("heightShift", &AugmentOptions::heightShift)
      .field("shear", &AugmentOptions::shear)
      .field("zoom", &AugmentOptions::zoom)
      .field("hflip", &AugmentOptions::hflip)
      .field("fill", &AugmentOptions::fill)
      .field("cval", &AugmentOptions::cval);
  em::value_object<TrainerOptions>("TrainerOptions")
      .field("lr", &TrainerOptions::lr)
      .field("decay", &TrainerOptions::decay)
      .field("epochs", &TrainerOptions::epochs)
      .field("batchSize", &TrainerOptions::batchSize)
      .field("seed", &TrainerOptions::seed)
      .field("augment", &TrainerOptions::augment);
  em::value_object<TeachOptions>("TeachOptions")
      .field("copies", &TeachOptions::copies)
      .field("steps", &TeachOptions::steps)
      .field("lr", &TeachOptions::lr)
      .field("heldOut", &TeachOptions::heldOut)
      .field("keepLabels", &TeachOptions::keepLabels)
      .field("seed", &TeachOptions::seed)
      .field("augment", &TeachOptions::augment);
  em::value_object<StepResult>("StepResult")
      .field("loss", &StepResult::loss)
      .field("accuracy", &StepResult::accuracy)
      .field("batchLoss", &StepResult::batchLoss)
      .field("epoch", &StepResult::epoch)
      .field("step", &StepResult::step)
      .field("steps", &StepResult::steps)
      .field("epochEnd", &StepResult::epochEnd)
      .field("done", &StepResult::done);

  em::class_<WasmModel>("Model")
      .constructor<>()
      .function("load", &WasmModel::load)
      .function("importOnnx", &WasmModel::import_onnx)
      .function("exportOnnx", &WasmModel::export_onnx)
      .function("create", &WasmModel::create)
      .function("loaded", &WasmModel::loaded)
      .function("info", &WasmModel::info)
      .function("classify", &WasmModel::classify)
      .function("classifyBatch", &WasmModel::classify_batch)
      .function("outputData", &WasmModel::output_data)
      .function("outputSize", &WasmModel::output_size)
      .function("noveltyData", &WasmModel::novelty_data)
      .function("noveltySize", &WasmModel::novelty_size)
      .function("save", &WasmModel::save)
      .function("bytesData", &WasmModel::bytes_data)
      .function("bytesSize", &WasmModel::bytes_size)
      .function("releaseBytes", &WasmModel::release_bytes)
      .function("replaceHead", &WasmModel::replace_head)
      .function("freeze", &WasmModel::freeze)
      .function("trainableFrom", &WasmModel::trainable_from)
      .function("setTrainable", &WasmModel::set_trainable);

  em::class_<WasmTrainer>("Trainer")
      .constructor<>()
      .function("init", &WasmTrainer::init)
      .function("addExample", &WasmTrainer::add_example)
      .function("size", &WasmTrainer::size)
      .function("step", &WasmTrainer::step)
      .function("result", &WasmTrainer::result);

  em::class_<WasmTeacher>("Teacher")
      .constructor<>()
      .function("init", &WasmTeacher::init)
      .function("add", &WasmTeacher::add)
      .function("size", &WasmTeacher::size)
      .function("step", &WasmTeacher::step)
      .function("progress", &WasmTeacher::progress)
      .function("report", &WasmTeacher::report)
      .function("result", &WasmTeacher::result);
}
