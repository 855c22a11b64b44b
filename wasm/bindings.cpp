// Embind bindings of tagnet's application layer (app/classifier.h) for tagnet.js.
//
// Values cross as JavaScript values (emscripten::val), as Squoosh's codecs pass them: pictures
// and model files come in as typed arrays and are copied into the heap once; probabilities and
// files go out as typed arrays of their own (copies, so heap growth cannot detach them); info,
// answers and reports as plain objects.
//
// Every entry point that can fail returns its result or a JavaScript Error holding the core's
// message, which tagnet.js throws as a TagnetError. The Error is returned rather than thrown:
// a JS throw unwinding through Embind's invokers would skip the destructors of the converted
// arguments and leak heap.
#include <emscripten/bind.h>
#include <emscripten/val.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "tagnet/app/classifier.h"
#include "tagnet/train/teach.h"

namespace {

using emscripten::val;
using tagnet::Classifier;

std::unique_ptr<tagnet::Engine> g_engine;

template <typename F>
val guarded(F&& f) {
  std::string message;
  try {
    return f();
  } catch (const std::bad_alloc&) {
    message = "out of memory (the WebAssembly heap is limited to 2 GB)";
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown error";
  }
  return val::global("Error").new_(val(message));
}

const tagnet::Engine& engine() {
  if (!g_engine) throw std::logic_error("the tagnet module is not initialised (call init first)");
  return *g_engine;
}

tagnet::Context context(bool training = false) { return tagnet::Context{&engine(), training, nullptr}; }

val init(int threads) {
  return guarded([&] {
#ifndef __EMSCRIPTEN_PTHREADS__
    threads = 1;
#endif
    g_engine.reset();
    g_engine = std::make_unique<tagnet::Engine>(tagnet::Engine::Options{std::max(1, threads), "hwy"});
    return val::undefined();
  });
}

std::string engine_description() { return g_engine ? g_engine->describe() : std::string(); }

// The linear memory, in bytes: grows when the allocator needs more, never shrinks.
double heap_bytes() { return static_cast<double>(__builtin_wasm_memory_size(0)) * 65536.0; }

// Bytes the allocator has handed out and not taken back: exact, unlike heap_bytes().
double heap_in_use() { return static_cast<double>(mallinfo().uordblks); }

// ---- values in and out ----

// A typed array's bytes, copied into the heap.
std::vector<uint8_t> bytes_of(const val& array) {
  std::vector<uint8_t> out(array["length"].as<size_t>());
  val(emscripten::typed_memory_view(out.size(), out.data())).call<void>("set", array);
  return out;
}

std::vector<float> floats_of(const val& array) {
  std::vector<float> out(array["length"].as<size_t>());
  val(emscripten::typed_memory_view(out.size(), out.data())).call<void>("set", array);
  return out;
}

template <typename T>
val typed_copy(const T* data, size_t n) {
  return val(emscripten::typed_memory_view(n, data)).call<val>("slice");
}

std::vector<std::string> strings_of(const val& list, const std::string& what) {
  if (!list.isArray()) throw std::invalid_argument(what + ": labels must be an array of strings");
  std::vector<std::string> out;
  const size_t n = list["length"].as<size_t>();
  for (size_t i = 0; i < n; ++i) {
    const val s = list[i];
    if (!s.isString()) throw std::invalid_argument(what + ": labels must be an array of strings");
    out.push_back(s.as<std::string>());
  }
  return out;
}

val string_list(const std::vector<std::string>& names) {
  val out = val::array();
  for (const auto& n : names) out.call<void>("push", val(n));
  return out;
}

val js_value(const nlohmann::json& j) { return val::global("JSON").call<val>("parse", val(j.dump())); }

nlohmann::json json_of(const val& v) {
  return nlohmann::json::parse(val::global("JSON").call<std::string>("stringify", v));
}

tagnet::Image picture(const val& rgba, int width, int height) {
  if (width < 1 || height < 1 || width > tagnet::kMaxImageSide || height > tagnet::kMaxImageSide)
    throw std::invalid_argument("image size " + std::to_string(width) + "x" + std::to_string(height) +
                                " is out of range (1.." + std::to_string(tagnet::kMaxImageSide) + " per side)");
  const size_t expected = size_t(width) * size_t(height) * 4;
  const size_t bytes = rgba["length"].as<size_t>();
  if (bytes != expected)
    throw std::invalid_argument("RGBA data of a " + std::to_string(width) + "x" + std::to_string(height) +
                                " image must be " + std::to_string(expected) + " bytes, got " + std::to_string(bytes));
  return tagnet::image_from_rgba(bytes_of(rgba).data(), width, height);
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

struct TeachOptions {
  int copies = 8;
  int steps = 300;
  float lr = 3e-3f;
  double heldOut = 0.2;
  bool keepLabels = true;
  double seed = 1;
  AugmentOptions augment = to_options(tagnet::tutorial_augment());
};

// ---- model ----

class WasmModel {
 public:
  val load(const val& bytes, const std::string& origin) {
    return guarded([&] {
      const std::vector<uint8_t> b = bytes_of(bytes);
      adopt(Classifier::open(b.data(), b.size(), origin));
      return val::undefined();
    });
  }

  // An ONNX network (tagnet/io/onnx.h). `options`: {name, labels, inputSize, head}; errors name
  // `name` (the file's name on the page), else "ONNX bytes".
  val import_onnx(const val& bytes, const val& options) {
    return guarded([&] {
      tagnet::OnnxImportOptions o;
      if (!options["labels"].isUndefined()) o.labels = strings_of(options["labels"], "importOnnx");
      if (!options["inputSize"].isUndefined()) o.input_size = options["inputSize"].as<int>();
      if (!options["head"].isUndefined()) o.head = options["head"].as<std::string>();
      const std::string origin = options["name"].isString() ? options["name"].as<std::string>() : "ONNX bytes";
      const std::vector<uint8_t> b = bytes_of(bytes);
      adopt(Classifier::import_onnx(b.data(), b.size(), origin, o));
      return val::undefined();
    });
  }

  // A new network of a known architecture, Glorot-initialised, one output per label (a "logit"
  // head takes two labels and has one output).
  val create(const std::string& architecture, const val& labels, const std::string& head, double seed) {
    return guarded([&] {
      adopt(Classifier::create(architecture, strings_of(labels, "createModel"), tagnet::head_from_name(head),
                               static_cast<uint64_t>(seed)));
      return val::undefined();
    });
  }

  // {labels, inputShape, architecture, head, labelMode, params, trainableParams, layers, metadata}.
  val info() const {
    return guarded([&] {
      const Classifier& c = classifier();
      const tagnet::Model& m = c.model();
      nlohmann::json j;
      j["labels"] = c.labels();
      j["inputShape"] = m.input_shape().dims();
      j["architecture"] = c.card().architecture;
      j["head"] = tagnet::head_name(c.head());
      j["labelMode"] = tagnet::label_mode_name(c.mode());
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
      j["metadata"] = c.card().to_json();
      return js_value(j);
    });
  }

  // `items`: [{rgba, width, height}]. {probabilities: Float32Array (N x labels), novelty:
  // Float32Array (N; -1 without statistics), answers: [{predicted: [label index],
  // unseenCombination}]}.
  val classify(const val& items) {
    return guarded([&] {
      if (!items.isArray() || items["length"].as<size_t>() == 0)
        throw std::invalid_argument("classifyBatch: the batch is empty");
      const size_t n = items["length"].as<size_t>();
      std::vector<tagnet::Image> pictures;
      for (size_t i = 0; i < n; ++i) {
        const val it = items[i];
        pictures.push_back(picture(it["rgba"], it["width"].as<int>(), it["height"].as<int>()));
      }
      const std::vector<tagnet::Answer> answers = classifier().classify(pictures, context());
      std::vector<float> probs, novelty;
      val out = val::object(), list = val::array();
      for (const auto& a : answers) {
        probs.insert(probs.end(), a.probabilities.begin(), a.probabilities.end());
        novelty.push_back(a.novelty);
        val predicted = val::array();
        for (size_t k : a.predicted) predicted.call<void>("push", val(int(k)));
        val answer = val::object();
        answer.set("predicted", predicted);
        answer.set("unseenCombination", val(a.unseen_combination));
        list.call<void>("push", answer);
      }
      out.set("probabilities", typed_copy(probs.data(), probs.size()));
      out.set("novelty", typed_copy(novelty.data(), novelty.size()));
      out.set("answers", list);
      return out;
    });
  }

  val save() const {
    return guarded([&] {
      const std::vector<uint8_t> b = classifier().save_bytes();
      return typed_copy(b.data(), b.size());
    });
  }

  val export_onnx(int opset) const {
    return guarded([&] {
      const std::vector<uint8_t> b = tagnet::export_onnx(classifier().model(), opset);
      return typed_copy(b.data(), b.size());
    });
  }

  // The one policy for new labels (Classifier::give_new_labels): a new head at the model's
  // head, the layers below kept trainable for setTrainable to decide.
  val give_new_labels(const val& labels, const std::string& head, double seed) {
    return guarded([&] {
      tagnet::NewLabels n;
      n.names = strings_of(labels, "replaceHead");
      n.head = tagnet::head_from_name(head);
      n.seed = static_cast<uint64_t>(seed);
      n.freeze_base = false;
      classifier().give_new_labels(n);
      return val::undefined();
    });
  }

  val freeze(int up_to_layer) {
    return guarded([&] {
      tagnet::Model& m = classifier().model();
      if (up_to_layer < 0 || size_t(up_to_layer) > m.num_layers())
        throw std::invalid_argument("freeze: layer index " + std::to_string(up_to_layer) + " is outside 0.." +
                                    std::to_string(m.num_layers()));
      m.freeze_below(size_t(up_to_layer));
      return val::undefined();
    });
  }

  // The first layer that trains for `part` ("head", "last-block", "all" or a layer index or
  // name), by tagnet's fine-tuning policy (tagnet/train/finetune.h).
  val trainable_from(const std::string& part) const {
    return guarded([&] { return val(int(tagnet::trainable_from(classifier().model(), part))); });
  }

  // Freezes the layers below trainable_from(part); returns that index.
  val set_trainable(const std::string& part) {
    return guarded([&] { return val(int(tagnet::set_trainable(classifier().model(), part))); });
  }

  // After training in the page: the card forgets the earlier training's results and keeps
  // `record` with the date; `combinations` (label sets, or null) are those the examples showed.
  val record_fine_tuning(const val& record, const val& combinations) {
    return guarded([&] {
      tagnet::ModelCard& card = classifier().card();
      card.record_fine_tuning(json_of(record));
      if (combinations.isArray()) {
        card.combinations.emplace();
        const size_t n = combinations["length"].as<size_t>();
        for (size_t i = 0; i < n; ++i) {
          std::vector<std::string> set = strings_of(combinations[i], "recordFineTuning");
          std::sort(set.begin(), set.end());
          card.combinations->insert(std::move(set));
        }
      }
      return val::undefined();
    });
  }

  // What the model knows, in a sentence for people ("clothing colours and kinds").
  val set_description(const std::string& text) {
    return guarded([&] {
      classifier().card().description = text;
      return val::undefined();
    });
  }

  Classifier& classifier() const {
    if (!classifier_) throw std::logic_error("no model is loaded");
    return *classifier_;
  }
  const std::shared_ptr<Classifier>& shared() const { return classifier_; }
  void adopt(Classifier&& c) {
    c.check_takes_pictures();
    classifier_ = std::make_shared<Classifier>(std::move(c));
  }

 private:
  std::shared_ptr<Classifier> classifier_;
};

// ---- fine-tuning ----

// tagnet::Trainer one batch at a time, so JS can report progress and stop between batches.
class WasmTrainer {
 public:
  val init(const WasmModel& source, const TrainerOptions& o) {
    return guarded([&] {
      auto classifier = source.shared();
      if (!classifier) throw std::logic_error("no model is loaded");
      if (!(o.lr > 0)) throw std::invalid_argument("createTrainer: lr must be positive");
      if (o.epochs < 1) throw std::invalid_argument("createTrainer: epochs must be at least 1");
      if (o.batchSize < 1) throw std::invalid_argument("createTrainer: batchSize must be at least 1");
      if (!(o.seed >= 0)) throw std::invalid_argument("createTrainer: seed must be non-negative");
      tagnet::Model& model = classifier->model();
      const tagnet::Augment a = from_options(o.augment);
      const int outputs = int(model.output_shape().numel());
      auto set = std::make_unique<tagnet::ImageSet>(model.input_shape(), outputs);
      set->set_augment(a);
      auto adam = std::make_unique<tagnet::Adam>(o.lr, o.decay);
      tagnet::TrainOptions to;
      to.epochs = o.epochs;
      to.batch_size = o.batchSize;
      to.seed = static_cast<uint64_t>(o.seed);
      to.augment = a.active();
      const tagnet::Engine* e = &engine();
      trainer_ = std::make_unique<tagnet::Trainer>(model, *set, *adam, tagnet::loss_for(classifier->head()), to,
                                                   context(true));
      engine_ = e;
      classifier_ = std::move(classifier);
      set_ = std::move(set);
      adam_ = std::move(adam);
      outputs_ = outputs;
      epochs_ = o.epochs;
      return val::undefined();
    });
  }

  val add_example(const val& rgba, int width, int height, const val& target) {
    return guarded([&] {
      check();
      const std::vector<float> t = floats_of(target);
      if (int(t.size()) != outputs_)
        throw std::invalid_argument("addExample: the label vector has " + std::to_string(t.size()) +
                                    " values, the model has " + std::to_string(outputs_) + " outputs");
      set_->add(picture(rgba, width, height), t);
      return val::undefined();
    });
  }

  size_t size() const { return set_ ? set_->size() : 0; }

  // {loss, accuracy (running means over the epoch so far), batchLoss, epoch, step, steps,
  // epochEnd, done}.
  val step() {
    return guarded([&] {
      check();
      if (int(classifier_->model().output_shape().numel()) != outputs_)
        throw std::logic_error("the model's head changed after the trainer was created; create a new trainer");
      if (&engine() != engine_) throw std::logic_error("the module was initialised again; create a new trainer");
      if (set_->size() == 0) throw std::invalid_argument("the trainer has no examples");
      const tagnet::Progress& p = trainer_->step();
      val r = val::object();
      r.set("loss", p.loss);
      r.set("accuracy", p.accuracy);
      r.set("batchLoss", p.batch_loss);
      r.set("epoch", p.epoch);
      r.set("step", int(p.step));
      r.set("steps", int(p.steps));
      r.set("epochEnd", p.epoch_end);
      r.set("done", p.epoch_end && p.epoch >= epochs_);
      return r;
    });
  }

 private:
  void check() const {
    if (!trainer_) throw std::logic_error("the trainer is not initialised");
  }

  // Declared before trainer_, which borrows them, so they outlive it.
  std::shared_ptr<Classifier> classifier_;   // shared: the trainer stays valid after model.delete()
  std::unique_ptr<tagnet::ImageSet> set_;
  std::unique_ptr<tagnet::Adam> adam_;
  std::unique_ptr<tagnet::Trainer> trainer_;
  const tagnet::Engine* engine_ = nullptr;
  int outputs_ = 0;
  int epochs_ = 1;
};

// ---- teaching new labels ----

// tagnet::Teacher a piece at a time, so JS can report progress between pieces.
class WasmTeacher {
 public:
  val init(const WasmModel& source, const val& labels, bool one_per_picture, const TeachOptions& o) {
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
      teacher_ = std::make_unique<tagnet::Teacher>(source.classifier().model(), strings_of(labels, "createTeacher"),
                                                   one_per_picture, to, context());
      return val::undefined();
    });
  }

  // `labels`: the taught labels this picture shows.
  val add(const val& rgba, int width, int height, const val& labels) {
    return guarded([&] {
      teacher().add(picture(rgba, width, height), strings_of(labels, "addPicture"));
      return val::undefined();
    });
  }

  size_t size() const { return teacher_ ? teacher_->size() : 0; }

  // One piece of work: {phase, done, total}.
  val step() {
    return guarded([&] {
      teacher().step();
      const auto p = teacher_->progress();
      return js_value({{"phase", p.phase}, {"done", p.done}, {"total", p.total}});
    });
  }

  val report() const {
    return guarded([&] { return js_value(teacher().report().to_json()); });
  }

  // Puts the taught model into `into` (a new Model object; the one taught stays as it was).
  val result(WasmModel& into) const {
    return guarded([&] {
      into.adopt(Classifier(teacher().result(), "taught model"));
      return val::undefined();
    });
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
  em::function("engineDescription", &engine_description);
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

  em::class_<WasmModel>("Model")
      .constructor<>()
      .function("load", &WasmModel::load)
      .function("importOnnx", &WasmModel::import_onnx)
      .function("create", &WasmModel::create)
      .function("info", &WasmModel::info)
      .function("classify", &WasmModel::classify)
      .function("save", &WasmModel::save)
      .function("exportOnnx", &WasmModel::export_onnx)
      .function("giveNewLabels", &WasmModel::give_new_labels)
      .function("freeze", &WasmModel::freeze)
      .function("trainableFrom", &WasmModel::trainable_from)
      .function("setTrainable", &WasmModel::set_trainable)
      .function("recordFineTuning", &WasmModel::record_fine_tuning)
      .function("setDescription", &WasmModel::set_description);

  em::class_<WasmTrainer>("Trainer")
      .constructor<>()
      .function("init", &WasmTrainer::init)
      .function("addExample", &WasmTrainer::add_example)
      .function("size", &WasmTrainer::size)
      .function("step", &WasmTrainer::step);

  em::class_<WasmTeacher>("Teacher")
      .constructor<>()
      .function("init", &WasmTeacher::init)
      .function("add", &WasmTeacher::add)
      .function("size", &WasmTeacher::size)
      .function("step", &WasmTeacher::step)
      .function("report", &WasmTeacher::report)
      .function("result", &WasmTeacher::result);
}
