// ONNX graph -> tagnet Sequential model: see tagnet/io/onnx.h and docs/onnx.md.
//
// The nodes are walked in their (topological) order as one chain from the graph input to its
// output. `Value` is what the chain carries, in tagnet's terms: a per-sample shape, which tagnet
// dimension each ONNX axis is, and after a Flatten which tagnet feature each ONNX feature is.
// Layers are collected as (type, config, parameter values) and made at the end, so folding a
// BatchNormalization into the Conv before it only edits numbers.
#include <array>
#include <deque>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>

#include "tagnet/nn/architectures.h"
#include "tagnet/io/onnx.h"

#include "file_io.h"
#include "onnx_proto.h"

namespace tagnet {

namespace {

using onnx::NodeProto;
using onnx::TensorProto;

enum Dim { kN = 0, kH = 1, kW = 2, kC = 3 };
constexpr std::array<int, 4> kNCHW = {kN, kC, kH, kW};
constexpr std::array<int, 4> kNHWC = {kN, kH, kW, kC};

struct Value {
  std::string name;              // the ONNX value the next node must read
  Shape shape;                   // per sample, tagnet's: (H, W, C) or (F,)
  int onnx_rank = 4;             // 4 for (N, C, 1, 1) after a global pooling, though shape is (C,)
  std::array<int, 4> axes = kNCHW;   // rank 4: the tagnet Dim at each ONNX axis
  std::vector<size_t> order;     // rank 2: tagnet feature of each ONNX feature (empty: the same)
};

struct Pending {
  Pending(std::string t, nlohmann::json c = nlohmann::json::object(), std::vector<std::vector<float>> v = {})
      : type(std::move(t)), config(std::move(c)), values(std::move(v)) {}
  std::string type;
  nlohmann::json config;
  std::vector<std::vector<float>> values;   // in the layer's parameter order
};

std::string describe(const NodeProto& n) {
  std::string name = n.name.empty() && !n.outputs.empty() ? n.outputs[0] : n.name;
  return n.op_type + " node '" + name + "'";
}

constexpr const char* kSupported =
    "tagnet imports Conv, Relu, Sigmoid, Softmax, BatchNormalization, MaxPool, AveragePool (global), "
    "GlobalAveragePool, ReduceMean (spatial), Gemm, MatMul+Add, Flatten, Reshape, Squeeze, Transpose, "
    "Dropout, Identity, Pad (before Conv), Clip (as Relu), Constant";

class Importer {
 public:
  Importer(const onnx::ModelProto& m, const std::string& origin, const OnnxImportOptions& o)
      : m_(m), origin_(origin), o_(o) {}

  Model run();

 private:
  [[noreturn]] void fail(const std::string& what) const { throw OnnxError(origin_ + ": " + one_line(what)); }
  [[noreturn]] void fail(const NodeProto& n, const std::string& what) const { fail(describe(n) + ": " + what); }

  const TensorProto* constant(const std::string& name) const {
    auto it = consts_.find(name);
    return it == consts_.end() ? nullptr : it->second;
  }
  const TensorProto& const_input(const NodeProto& n, size_t i, const char* what) const {
    const TensorProto* t = i < n.inputs.size() ? constant(n.inputs[i]) : nullptr;
    if (!t) fail(n, std::string(what) + " must be a constant (an initializer or a Constant node)");
    if (!t->has_data)
      fail(n, std::string(what) + " '" + t->name + "' has data type " + std::to_string(t->data_type) +
                  (t->external ? " stored in another file" : "") + "; tagnet reads float32, float64, int32 and int64");
    return *t;
  }
  bool has_input(const NodeProto& n, size_t i) const { return i < n.inputs.size() && !n.inputs[i].empty(); }
  std::vector<float> floats(const NodeProto& n, size_t i, const char* what, size_t count) const {
    const TensorProto& t = const_input(n, i, what);
    if (t.floats.size() != count)
      fail(n, std::string(what) + " has " + std::to_string(t.floats.size()) + " values, expected " + std::to_string(count));
    return t.floats;
  }
  // An int list from an attribute or, in newer opsets, a constant input.
  std::vector<int64_t> ints(const NodeProto& n, const char* attr, size_t input, std::vector<int64_t> fallback) const {
    if (auto* a = n.attr(attr)) return a->ints;
    if (has_input(n, input)) return const_input(n, input, attr).ints;
    return fallback;
  }
  int64_t int_attr(const NodeProto& n, const char* name, int64_t fallback) const {
    auto* a = n.attr(name);
    return a ? a->i : fallback;
  }
  float float_attr(const NodeProto& n, const char* name, float fallback) const {
    auto* a = n.attr(name);
    return a ? a->f : fallback;
  }

  void need_spatial(const NodeProto& n) const {
    if (cur_.shape.rank() != 3) fail(n, "needs a 4-D input, got a flat one " + cur_.shape.str());
    if (cur_.axes != kNCHW) fail(n, "needs its input in NCHW order (a Transpose to NCHW is missing)");
  }
  // Adds a layer, computing its output shape the way Model::build will.
  void add(const NodeProto& n, Pending p) {
    for (const auto& v : p.values)
      for (float x : v)
        if (!std::isfinite(x)) fail(n, "has a weight of " + std::to_string(x) + "; every answer would be NaN");
    try {
      auto layer = Layer::from_config(p.type, p.config);
      layer->name = "import";
      cur_.shape = layer->setup(cur_.shape);
    } catch (const std::exception& e) {
      fail(n, e.what());
    }
    layers_.push_back(std::move(p));
  }

  void input();
  bool fold_constant(const NodeProto& n);
  void node(const NodeProto& n);
  void conv(const NodeProto& n);
  void batchnorm(const NodeProto& n);
  void maxpool(const NodeProto& n);
  void global_pool(const NodeProto& n, const std::vector<int64_t>& axes, bool keepdims);
  void flatten(const NodeProto& n);
  void dense(const NodeProto& n, const std::vector<float>& w, int64_t outputs, bool transposed, float alpha);
  void finish_metadata(Model& m) const;

  const onnx::ModelProto& m_;
  std::string origin_;
  OnnxImportOptions o_;
  int64_t opset_ = 0;
  std::map<std::string, const TensorProto*> consts_;
  std::deque<TensorProto> constant_nodes_;   // values of Constant and folded nodes (stable addresses)
  Shape input_shape_;
  Value cur_;
  std::array<int64_t, 4> pad_ = {0, 0, 0, 0};   // a Pad node's (top, left, bottom, right) for the next Conv
  bool pad_pending_ = false;
  bool last_was_matmul_ = false;
  std::vector<Pending> layers_;
  uint64_t folded_ = 0;        // values made by folding constants so far
  uint64_t fold_budget_ = 0;   // the most they may be: run() sets it from the file's weights
};

void Importer::input() {
  const auto& g = m_.graph;
  const onnx::ValueInfoProto* in = nullptr;
  for (auto& v : g.inputs)
    if (!constant(v.name)) {
      if (in) fail("the graph has more than one input ('" + in->name + "', '" + v.name + "'); tagnet models have one picture input");
      in = &v;
    }
  if (!in) fail("the graph has no input");
  if (in->elem_type != onnx::kFloat) fail("input '" + in->name + "' is not float32 (type " + std::to_string(in->elem_type) + ")");
  if (in->dims.size() != 4) fail("input '" + in->name + "' has rank " + std::to_string(in->dims.size()) + "; tagnet reads pictures, (N, C, H, W) or (N, H, W, C)");
  auto is_channels = [](int64_t d) { return d == 1 || d == 3; };
  const auto& d = in->dims;
  std::string layout;
  for (auto& [k, v] : m_.metadata_props)
    if (k == "input_layout") layout = v;
  if (layout.empty()) layout = is_channels(d[1]) ? "NCHW" : is_channels(d[3]) ? "NHWC" : "";
  if (layout != "NCHW" && layout != "NHWC")
    fail("cannot tell whether input '" + in->name + "' is NCHW or NHWC (neither dimension 1 nor 3 is 1 or 3 channels)");
  cur_.axes = layout == "NCHW" ? kNCHW : kNHWC;
  int64_t hw[2], channels = 0;
  for (int i = 1; i < 4; ++i) {
    if (cur_.axes[i] == kC) channels = d[i];
    else hw[cur_.axes[i] - kH] = d[i];
  }
  for (int64_t& s : hw) {
    if (s < 0 && o_.input_size <= 0)
      fail("input '" + in->name + "' leaves its height or width open; give it with --input-size");
    if (s >= 0 && o_.input_size > 0 && s != o_.input_size)
      fail("input '" + in->name + "' is " + std::to_string(hw[0]) + "x" + std::to_string(hw[1]) + ", not --input-size " + std::to_string(o_.input_size));
    if (s < 0) s = o_.input_size;
    if (s < 1 || s > Model::kMaxPictureSide)
      fail("input '" + in->name + "' has a size of " + std::to_string(s) + " pixels; tagnet takes 1 to " +
           std::to_string(Model::kMaxPictureSide));
  }
  if (channels < 1 || channels > 4096) fail("input '" + in->name + "' has " + std::to_string(channels) + " channels");
  input_shape_ = Shape{static_cast<int>(hw[0]), static_cast<int>(hw[1]), static_cast<int>(channels)};
  cur_.name = in->name;
  cur_.shape = input_shape_;
}

Model Importer::run() {
  for (auto& [domain, version] : m_.opset_import)
    if (domain.empty() || domain == "ai.onnx") opset_ = version;
  if (opset_ == 0) fail("the model imports no opset of the default ONNX domain");
  uint64_t weights = 0;
  for (auto& t : m_.graph.initializers) {
    consts_[t.name] = &t;
    weights += t.floats.size() + t.ints.size();
  }
  fold_budget_ = std::max<uint64_t>(uint64_t{1} << 22, 4 * weights);
  input();
  if (m_.graph.outputs.size() != 1) fail("the graph has " + std::to_string(m_.graph.outputs.size()) + " outputs; tagnet models have one");
  for (auto& n : m_.graph.nodes) node(n);
  if (pad_pending_) fail("the graph ends in a Pad");
  if (cur_.name != m_.graph.outputs[0].name)
    fail("the graph's output '" + m_.graph.outputs[0].name + "' is not the end of its chain of nodes ('" + cur_.name + "')");
  if (cur_.shape.rank() != 1) fail("the graph's output is " + cur_.shape.str() + " per picture; tagnet classifiers end in a flat vector");
  if (!cur_.order.empty()) fail("the graph's output is a flattened picture, not a classifier's outputs");
  if (layers_.empty()) fail("the graph has no layers");

  const std::string& last = layers_.back().type;
  if (last != "Softmax" && last != "Sigmoid" && o_.head.empty() && cur_.shape[0] > 1)
    fail("the graph ends in " + std::to_string(cur_.shape[0]) +
         " raw outputs; tagnet classifiers end in Softmax, Sigmoid or one logit (give --head softmax or sigmoid)");
  if (!o_.head.empty()) {
    if (o_.head != "softmax" && o_.head != "sigmoid") fail("unknown head '" + o_.head + "' (softmax, sigmoid)");
    if (last == "Softmax" || last == "Sigmoid") fail("the graph already ends in " + last + "; leave out --head");
    layers_.emplace_back(o_.head == "softmax" ? "Softmax" : "Sigmoid");
  }

  Model model(input_shape_);
  for (auto& p : layers_) model.add(Layer::from_config(p.type, p.config));
  model.build(0);
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& params = model.layer(i).params();
    if (params.size() != layers_[i].values.size())
      throw std::logic_error("onnx import: parameter count mismatch in " + layers_[i].type);
    for (size_t k = 0; k < params.size(); ++k) {
      if (params[k].value.size() != layers_[i].values[k].size())
        throw std::logic_error("onnx import: parameter size mismatch in " + layers_[i].type);
      std::copy(layers_[i].values[k].begin(), layers_[i].values[k].end(), params[k].value.data());
    }
  }
  finish_metadata(model);
  return model;
}

void Importer::finish_metadata(Model& model) const {
  std::map<std::string, std::string> props(m_.metadata_props.begin(), m_.metadata_props.end());
  auto json_prop = [&](const char* key) {
    auto it = props.find(key);
    if (it == props.end()) return nlohmann::json();
    auto j = nlohmann::json::parse(it->second, nullptr, false);
    if (j.is_discarded()) fail(std::string("metadata '") + key + "' is not JSON");
    return j;
  };
  std::vector<std::string> labels = o_.labels;
  if (labels.empty()) {
    auto j = json_prop("labels");
    if (!j.is_null()) {
      if (!j.is_array()) fail("metadata 'labels' is not a list of names");
      for (auto& l : j) {
        if (!l.is_string()) fail("metadata 'labels' is not a list of names");
        labels.push_back(l.get<std::string>());
      }
    }
  }
  const Head head = model_head(model);
  const size_t outputs = model.output_shape().numel();
  const size_t want = head == Head::kLogit ? 2 : outputs;
  if (!labels.empty() && labels.size() != want)
    fail(std::to_string(labels.size()) + " label names for a model with " + std::to_string(outputs) + " output" +
         (outputs == 1 ? " (a logit: give two names)" : "s"));
  ModelCard& card = model.card();
  if (!labels.empty()) card.labels = labels;
  card.head = head;
  card.label_mode = label_mode_of(head);
  auto pre = json_prop("preprocessing");
  try {
    card.preprocessing = pre.is_object() ? Preprocessing::from_json(pre) : Preprocessing::for_channels(int(input_shape_[2]));
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  auto arch = props.find("architecture");
  if (arch != props.end()) card.architecture = arch->second;
  card.provenance.imported = {{"format", "onnx"}, {"producer", m_.producer_name + (m_.producer_version.empty() ? "" : " " + m_.producer_version)},
                    {"opset", opset_}, {"date", utc_now()}};
}

void Importer::node(const NodeProto& n) {
  const std::string& op = n.op_type;
  if (!n.domain.empty() && n.domain != "ai.onnx")
    fail(n, "is in domain '" + n.domain + "'; " + kSupported);
  if (op == "Constant") {
    auto* v = n.attr("value");
    if (!v || v->t.empty() || n.outputs.size() != 1) fail(n, "tagnet reads Constant nodes with a tensor 'value'");
    constant_nodes_.push_back(v->t[0]);
    constant_nodes_.back().name = n.outputs[0];
    consts_[n.outputs[0]] = &constant_nodes_.back();
    return;
  }
  if (n.inputs.empty() || n.outputs.empty()) fail(n, "has no input or no output");
  if (fold_constant(n)) return;
  if (n.inputs[0] != cur_.name)
    fail(n, "reads '" + n.inputs[0] + "', not '" + cur_.name + "' (the output of the node before it); tagnet imports sequential networks");
  if (pad_pending_ && op != "Conv") fail(n, "follows a Pad; tagnet folds a Pad only into the Conv right after it");
  const bool after_matmul = last_was_matmul_;
  last_was_matmul_ = false;
  const bool flat = cur_.shape.rank() == 1;

  if (op == "Identity") {
  } else if (op == "Relu") {
    add(n, {"ReLU"});
  } else if (op == "Sigmoid") {
    add(n, {"Sigmoid"});
  } else if (op == "Softmax") {
    const int64_t axis = int_attr(n, "axis", opset_ >= 13 ? -1 : 1);
    if (!flat || cur_.onnx_rank != 2 || (axis != 1 && axis != -1))
      fail(n, "tagnet's Softmax runs over the features of a flat (N, F) input");
    add(n, {"Softmax"});
  } else if (op == "Dropout") {
    float rate = float_attr(n, "ratio", 0.5f);
    if (has_input(n, 1)) rate = floats(n, 1, "ratio", 1)[0];
    if (!(rate >= 0.f && rate < 1.f)) fail(n, "ratio " + std::to_string(rate) + " outside [0, 1)");
    if (rate > 0.f) add(n, {"Dropout", {{"rate", rate}}});
  } else if (op == "Clip") {
    float lo = float_attr(n, "min", -std::numeric_limits<float>::infinity());
    float hi = float_attr(n, "max", std::numeric_limits<float>::infinity());
    if (has_input(n, 1)) lo = floats(n, 1, "min", 1)[0];
    if (has_input(n, 2)) hi = floats(n, 2, "max", 1)[0];
    if (lo != 0.f || !std::isinf(hi))
      fail(n, "clips to [" + std::to_string(lo) + ", " + std::to_string(hi) + "]; tagnet maps only Clip(min 0, no max) as Relu (no ReLU6 layer)");
    add(n, {"ReLU"});
  } else if (op == "Conv") {
    conv(n);
  } else if (op == "BatchNormalization") {
    batchnorm(n);
  } else if (op == "MaxPool") {
    maxpool(n);
  } else if (op == "GlobalAveragePool") {
    need_spatial(n);
    global_pool(n, {2, 3}, true);
  } else if (op == "AveragePool") {
    need_spatial(n);
    const auto k = ints(n, "kernel_shape", 99, {});
    const auto pads = ints(n, "pads", 99, {0, 0, 0, 0});
    if (k.size() != 2 || k[0] != cur_.shape[0] || k[1] != cur_.shape[1] || std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p; }))
      fail(n, "averages " + (k.size() == 2 ? std::to_string(k[0]) + "x" + std::to_string(k[1]) : std::string("?")) +
                  " windows; tagnet maps only an AveragePool over the whole " + std::to_string(cur_.shape[0]) + "x" +
                  std::to_string(cur_.shape[1]) + " picture (GlobalAveragePool)");
    global_pool(n, {2, 3}, true);
  } else if (op == "ReduceMean") {
    if (flat) fail(n, "tagnet maps ReduceMean over a picture's height and width only");
    global_pool(n, ints(n, "axes", 1, {}), int_attr(n, "keepdims", 1) != 0);
  } else if (op == "Flatten") {
    if (int_attr(n, "axis", 1) != 1) fail(n, "tagnet maps Flatten with axis 1 only");
    flatten(n);
  } else if (op == "Reshape") {
    const auto shape = const_input(n, 1, "shape").ints;
    const int64_t features = static_cast<int64_t>(cur_.shape.numel());
    if (shape.size() != 2 || !(shape[0] == 0 || shape[0] == -1 || shape[0] == 1) || !(shape[1] == -1 || shape[1] == features))
      fail(n, "tagnet maps Reshape to (N, " + std::to_string(features) + ") only, a Flatten");
    flatten(n);
  } else if (op == "Squeeze") {
    auto axes = ints(n, "axes", 1, {2, 3});
    for (auto& a : axes) a = a < 0 ? a + cur_.onnx_rank : a;
    std::sort(axes.begin(), axes.end());
    if (!(flat && cur_.onnx_rank == 4 && axes == std::vector<int64_t>{2, 3}))
      fail(n, "tagnet maps Squeeze only of the (N, C, 1, 1) output of a global pooling");
    cur_.onnx_rank = 2;
  } else if (op == "Transpose") {
    const auto perm = ints(n, "perm", 99, {});
    if (cur_.onnx_rank == 2 && (perm.empty() || perm == std::vector<int64_t>{0, 1})) {
    } else if (cur_.onnx_rank == 4 && !flat && perm.size() == 4 && perm[0] == 0) {
      std::array<int, 4> axes{};
      for (int i = 0; i < 4; ++i) {
        if (perm[i] < 0 || perm[i] > 3) fail(n, "has a bad perm");
        axes[i] = cur_.axes[perm[i]];
      }
      std::array<int, 4> sorted = axes;
      std::sort(sorted.begin(), sorted.end());
      if (sorted != std::array<int, 4>{0, 1, 2, 3}) fail(n, "has a bad perm");
      cur_.axes = axes;
    } else {
      fail(n, "tagnet maps Transpose of a picture's H, W and C axes only, never of the batch");
    }
  } else if (op == "Pad") {
    need_spatial(n);
    std::string mode = "constant";
    if (auto* a = n.attr("mode")) mode = a->s;
    float value = float_attr(n, "value", 0.f);
    if (has_input(n, 2)) value = floats(n, 2, "constant_value", 1)[0];
    const auto pads = ints(n, "pads", 1, {});
    if (mode != "constant" || value != 0.f || pads.size() != 8 || pads[0] || pads[1] || pads[4] || pads[5] ||
        std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; }))
      fail(n, "tagnet folds only zero padding of the height and width into the next Conv");
    pad_ = {pads[2], pads[3], pads[6], pads[7]};
    pad_pending_ = true;
  } else if (op == "Gemm") {
    if (!flat || cur_.onnx_rank != 2) fail(n, "needs a flat (N, F) input (a Flatten is missing)");
    if (int_attr(n, "transA", 0)) fail(n, "tagnet maps Gemm with transA 0 only");
    const TensorProto& b = const_input(n, 1, "B");
    const bool transB = int_attr(n, "transB", 0) != 0;
    if (b.dims.size() != 2) fail(n, "B is not a matrix");
    dense(n, b.floats, transB ? b.dims[0] : b.dims[1], transB, float_attr(n, "alpha", 1.f));
    if (has_input(n, 2)) {
      const float beta = float_attr(n, "beta", 1.f);
      const TensorProto& c = const_input(n, 2, "C");
      auto& bias = layers_.back().values[1];
      if (c.floats.size() != bias.size() && c.floats.size() != 1)
        fail(n, "C has " + std::to_string(c.floats.size()) + " values for " + std::to_string(bias.size()) + " outputs");
      for (size_t i = 0; i < bias.size(); ++i) bias[i] = beta * c.floats[c.floats.size() == 1 ? 0 : i];
    }
  } else if (op == "MatMul") {
    if (!flat || cur_.onnx_rank != 2) fail(n, "needs a flat (N, F) input (a Flatten is missing)");
    const TensorProto& b = const_input(n, 1, "B");
    if (b.dims.size() != 2) fail(n, "B is not a matrix");
    dense(n, b.floats, b.dims[1], false, 1.f);
    last_was_matmul_ = true;
  } else if (op == "Add") {
    const TensorProto* c = n.inputs.size() == 2 ? constant(n.inputs[1]) : nullptr;
    if (!after_matmul || !c || !c->has_data) fail(n, "tagnet maps Add only as the bias of the MatMul right before it");
    auto& bias = layers_.back().values[1];
    if (c->floats.size() != bias.size()) fail(n, "adds " + std::to_string(c->floats.size()) + " values to " + std::to_string(bias.size()) + " outputs");
    bias = c->floats;
  } else {
    fail(n, std::string("is not supported; ") + kSupported);
  }
  cur_.name = n.outputs[0];
}

// Shape arithmetic on constants, as PyTorch writes it around a Pad (ConstantOfShape, Concat,
// Reshape, Slice, Transpose, Cast) or a Flatten: evaluated at import, its result a constant.
bool Importer::fold_constant(const NodeProto& n) {
  static const char* kFoldable[] = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast",
                                    "Unsqueeze", "Squeeze", "Identity"};
  if (std::none_of(std::begin(kFoldable), std::end(kFoldable), [&](const char* op) { return n.op_type == op; }))
    return false;
  if (n.inputs[0].empty()) return false;
  std::vector<const TensorProto*> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (n.inputs[i].empty()) { in.push_back(nullptr); continue; }
    const TensorProto* t = constant(n.inputs[i]);
    if (!t) return false;
    in.push_back(t);
  }
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i]) const_input(n, i, "an input");   // refuses data tagnet does not read
  TensorProto out;
  out.name = n.outputs[0];
  out.has_data = true;
  const TensorProto& a = *in[0];
  const bool is_float = a.data_type == onnx::kFloat || a.data_type == onnx::kDouble;
  out.data_type = is_float ? onnx::kFloat : onnx::kInt64;
  const size_t rank = a.dims.size();
  // Element i of `t` as an integer: int64 as it is, a float only when it is a whole number
  // within +-2^53 (a cast of a larger one is undefined).
  auto get_int = [&](const TensorProto& t, size_t i) -> int64_t {
    if (t.floats.empty()) return t.ints.at(i);
    const double v = t.floats.at(i);
    if (!(std::abs(v) <= 9007199254740992.0) || v != std::floor(v)) fail(n, "reads " + std::to_string(v) + " as an integer");
    return static_cast<int64_t>(v);
  };
  // Appends element i of `t` to `out`, in out's type.
  auto copy = [&](const TensorProto& t, size_t i) {
    if (out.data_type != onnx::kFloat) out.ints.push_back(get_int(t, i));
    else out.floats.push_back(t.floats.empty() ? static_cast<float>(t.ints.at(i)) : t.floats.at(i));
  };
  auto ints_of = [&](size_t i) {
    if (i >= in.size() || !in[i]) fail(n, "misses an input");
    std::vector<int64_t> v;
    for (size_t k = 0; k < in[i]->numel(); ++k) v.push_back(get_int(*in[i], k));
    return v;
  };
  // The values folding may make, in all: a few hundred bytes must not ask for gigabytes.
  auto spend = [&](uint64_t count) {
    folded_ += count;
    if (folded_ > fold_budget_)
      fail(n, "folding constants would make more than " + std::to_string(fold_budget_) +
                  " values (tagnet's budget: 4 times the file's weights, at least 2^22)");
  };
  const std::string& op = n.op_type;
  if (op == "ConstantOfShape") {
    const auto shape = ints_of(0);
    double value = 0;
    out.data_type = onnx::kFloat;
    if (auto* v = n.attr("value"); v && !v->t.empty() && v->t[0].has_data && v->t[0].numel() == 1) {
      if (v->t[0].ints.empty()) value = v->t[0].floats[0];
      else out.data_type = onnx::kInt64;
    }
    size_t count = 1;
    for (int64_t d : shape) {
      if (d < 0 || d > (1 << 24) || count * static_cast<size_t>(d) > (1u << 24)) fail(n, "makes too large a tensor");
      count *= static_cast<size_t>(d);
    }
    spend(count);
    out.dims = shape;
    if (out.data_type == onnx::kFloat) out.floats.assign(count, static_cast<float>(value));
    else out.ints.assign(count, get_int(n.attr("value")->t[0], 0));
  } else if (op == "Concat" || op == "Identity" || op == "Cast") {
    if (op == "Cast") {
      const int64_t to = int_attr(n, "to", 0);
      if (to != onnx::kFloat && to != onnx::kInt64 && to != onnx::kInt32 && to != onnx::kDouble) fail(n, "casts to a type tagnet does not read");
      out.data_type = to == onnx::kFloat || to == onnx::kDouble ? onnx::kFloat : onnx::kInt64;
    }
    if (op == "Concat")
      for (auto* t : in)
        if (!t || t->dims.size() != 1) fail(n, "tagnet folds Concat of 1-D constants only");
    out.dims = {0};
    const std::vector<const TensorProto*> from = op == "Concat" ? in : std::vector<const TensorProto*>{in[0]};
    uint64_t count = 0;
    for (auto* t : from) count += t->numel();
    spend(count);
    for (auto* t : from)
      for (size_t i = 0; i < t->numel(); ++i) copy(*t, i);
    out.dims = op == "Concat" ? std::vector<int64_t>{static_cast<int64_t>(out.floats.size() + out.ints.size())} : a.dims;
  } else if (op == "Reshape" || op == "Unsqueeze" || op == "Squeeze") {
    std::vector<int64_t> shape;
    if (op == "Reshape") {
      shape = ints_of(1);
      int64_t known = 1, open = -1;
      for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == 0 && i < rank) shape[i] = a.dims[i];
        if (shape[i] == -1) {
          if (open >= 0) fail(n, "has two -1 dimensions");
          open = static_cast<int64_t>(i);
        } else if (shape[i] < 0) {
          fail(n, "has a bad shape");
        } else if (shape[i] > 0 && known > (int64_t{1} << 40) / shape[i]) {
          fail(n, "reshapes " + std::to_string(a.numel()) + " values to more");
        } else {
          known *= std::max<int64_t>(shape[i], 1);
        }
      }
      if (open >= 0) shape[open] = static_cast<int64_t>(a.numel()) / std::max<int64_t>(known, 1);
    } else {
      const auto axes = ints(n, "axes", 1, {});
      shape = a.dims;
      if (op == "Unsqueeze") {
        for (int64_t ax : axes) {
          const int64_t r = static_cast<int64_t>(shape.size()) + 1;
          const int64_t i = ax < 0 ? ax + r : ax;
          if (i < 0 || i >= r) fail(n, "has a bad axis");
          shape.insert(shape.begin() + i, 1);
        }
      } else {
        std::vector<int64_t> kept;
        for (size_t i = 0; i < shape.size(); ++i)
          if (!(axes.empty() ? shape[i] == 1 : std::count(axes.begin(), axes.end(), int64_t(i)) + std::count(axes.begin(), axes.end(), int64_t(i) - int64_t(rank))))
            kept.push_back(shape[i]);
        shape = kept;
      }
    }
    out.dims = shape;
    out.data_type = a.data_type == onnx::kFloat || a.data_type == onnx::kDouble ? onnx::kFloat : onnx::kInt64;
    spend(a.numel());
    for (size_t i = 0; i < a.numel(); ++i) copy(a, i);
    if (out.numel() != a.numel()) fail(n, "reshapes " + std::to_string(a.numel()) + " values to " + std::to_string(out.numel()));
  } else if (op == "Transpose") {
    if (rank != 2) fail(n, "tagnet folds Transpose of 2-D constants only");
    const auto perm = ints(n, "perm", 99, {1, 0});
    spend(a.numel());
    out.dims = a.dims;
    if (perm == std::vector<int64_t>{1, 0}) {
      out.dims = {a.dims[1], a.dims[0]};
      for (int64_t c = 0; c < a.dims[1]; ++c)
        for (int64_t r = 0; r < a.dims[0]; ++r) copy(a, static_cast<size_t>(r * a.dims[1] + c));
    } else if (perm == std::vector<int64_t>{0, 1}) {
      for (size_t i = 0; i < a.numel(); ++i) copy(a, i);
    } else {
      fail(n, "has a bad perm");
    }
  } else {   // Slice (opset 10+: starts, ends, axes, steps as inputs) of a 1-D or 2-D constant
    if (rank < 1 || rank > 2 || in.size() < 3) fail(n, "tagnet folds Slice of 1-D or 2-D constants only");
    const auto starts = ints_of(1), ends = ints_of(2);
    std::vector<int64_t> axes(starts.size()), steps(starts.size(), 1);
    std::iota(axes.begin(), axes.end(), 0);
    if (in.size() > 3 && in[3]) axes = ints_of(3);
    if (in.size() > 4 && in[4]) steps = ints_of(4);
    if (axes.size() != starts.size() || ends.size() != starts.size() || steps.size() != starts.size()) fail(n, "has inputs of different lengths");
    std::vector<std::vector<int64_t>> pick(rank);
    for (size_t d = 0; d < rank; ++d)
      for (int64_t i = 0; i < a.dims[d]; ++i) pick[d].push_back(i);
    for (size_t k = 0; k < axes.size(); ++k) {
      const int64_t ax = axes[k] < 0 ? axes[k] + static_cast<int64_t>(rank) : axes[k];
      if (ax < 0 || ax >= static_cast<int64_t>(rank) || steps[k] == 0) fail(n, "has a bad axis or step");
      const int64_t dim = a.dims[ax], step = steps[k];
      auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
        if (v < 0) v = v < -dim ? lo : v + dim;   // -2^63 and the like: before the start
        return std::min(std::max(v, lo), hi);
      };
      const int64_t start = step > 0 ? clamp(starts[k], 0, dim) : clamp(starts[k], -1, dim - 1);
      const int64_t end = step > 0 ? clamp(ends[k], 0, dim) : clamp(ends[k], -1, dim - 1);
      // start and end lie within [-1, dim]: counting the picks cannot overflow, whatever the step.
      const uint64_t span = step > 0 ? uint64_t(std::max<int64_t>(end - start, 0)) : uint64_t(std::max<int64_t>(start - end, 0));
      const uint64_t stride = step > 0 ? uint64_t(step) : uint64_t(-(step + 1)) + 1;
      const uint64_t picks = span == 0 ? 0 : (span - 1) / stride + 1;
      pick[ax].clear();
      for (uint64_t p = 0; p < picks; ++p) pick[ax].push_back(step > 0 ? start + int64_t(p * stride) : start - int64_t(p * stride));
    }
    out.dims.clear();
    uint64_t count = 1;
    for (auto& p : pick) {
      out.dims.push_back(static_cast<int64_t>(p.size()));
      count *= p.size();
    }
    spend(count);
    const int64_t cols = rank == 2 ? a.dims[1] : 1;
    if (rank == 1)
      for (int64_t i : pick[0]) copy(a, static_cast<size_t>(i));
    else
      for (int64_t r : pick[0])
        for (int64_t c : pick[1]) copy(a, static_cast<size_t>(r * cols + c));
  }
  // A shape read from the file (Reshape, ConstantOfShape) must describe the values it holds:
  // later readers index weights by these dimensions.
  uint64_t count = 1;  // 64 bits on wasm32 too
  for (int64_t d : out.dims) {
    if (d < 0 || (d > 0 && count > (uint64_t{1} << 40) / static_cast<uint64_t>(d))) fail(n, "makes a tensor with bad dimensions");
    count *= static_cast<uint64_t>(d);
  }
  if (count != out.floats.size() + out.ints.size()) fail(n, "makes a tensor whose dimensions do not fit its values");
  constant_nodes_.push_back(std::move(out));
  consts_[n.outputs[0]] = &constant_nodes_.back();
  return true;
}

// Keras' 'same' padding of one axis (the odd pixel at the end), as Conv2D::setup computes it.
std::pair<int64_t, int64_t> same_pads(int64_t in, int64_t k, int64_t s) {
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>(0, (out - 1) * s + k - in);
  return {total / 2, total - total / 2};
}

void Importer::conv(const NodeProto& n) {
  need_spatial(n);
  const TensorProto& w = const_input(n, 1, "weight");
  const int H = cur_.shape[0], W = cur_.shape[1], C = cur_.shape[2];
  if (w.dims.size() != 4) fail(n, "has a weight of rank " + std::to_string(w.dims.size()) + "; tagnet maps 2-D convolutions");
  const int64_t K = w.dims[0], k = w.dims[2];
  if (w.floats.size() != w.numel()) fail(n, "has a weight that is not float");
  if (int_attr(n, "group", 1) != 1) fail(n, "has groups; tagnet maps Conv with group 1 only");
  if (w.dims[1] != C) fail(n, "weight has " + std::to_string(w.dims[1]) + " input channels for an input of " + std::to_string(C));
  if (w.dims[3] != k) fail(n, "has a " + std::to_string(k) + "x" + std::to_string(w.dims[3]) + " kernel; tagnet's kernels are square");
  const auto strides = ints(n, "strides", 99, {1, 1});
  const auto dil = ints(n, "dilations", 99, {1, 1});
  if (strides.size() != 2 || strides[0] != strides[1]) fail(n, "has unequal strides; tagnet's are the same both ways");
  if (dil != std::vector<int64_t>{1, 1}) fail(n, "has dilations; tagnet maps Conv without dilation only");
  const int64_t s = strides[0];
  if (s < 1) fail(n, "has stride " + std::to_string(s) + "; a stride is at least 1");
  if (k < 1) fail(n, "has an empty " + std::to_string(k) + "x" + std::to_string(k) + " kernel");
  if (const auto ks = ints(n, "kernel_shape", 99, {}); !ks.empty() && ks != std::vector<int64_t>{k, k})
    fail(n, "has kernel_shape [" + std::to_string(ks[0]) + (ks.size() > 1 ? ", " + std::to_string(ks[1]) : "") +
                (ks.size() > 2 ? ", ..." : "") + "] for a " + std::to_string(k) + "x" + std::to_string(k) + " weight");
  std::string auto_pad = "NOTSET";
  if (auto* a = n.attr("auto_pad")) auto_pad = a->s;
  auto [st, sb] = same_pads(H, k, s);
  auto [sl, sr] = same_pads(W, k, s);
  const std::array<int64_t, 4> same = {st, sl, sb, sr};
  std::array<int64_t, 4> pads = {0, 0, 0, 0};
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    pads = auto_pad == "SAME_UPPER" ? same : std::array<int64_t, 4>{sb, sr, st, sl};
  } else if (auto_pad == "NOTSET") {
    const auto p = ints(n, "pads", 99, {0, 0, 0, 0});
    if (p.size() != 4) fail(n, "has " + std::to_string(p.size()) + " pads, expected 4");
    std::copy(p.begin(), p.end(), pads.begin());
  } else if (auto_pad != "VALID") {
    fail(n, "has auto_pad '" + auto_pad + "'");
  }
  for (int i = 0; i < 4; ++i) pads[i] += pad_[i];
  pad_ = {0, 0, 0, 0};
  pad_pending_ = false;
  const bool valid = pads == std::array<int64_t, 4>{0, 0, 0, 0};
  if (!valid && pads != same) {
    auto list = [](const std::array<int64_t, 4>& a) {
      return "[" + std::to_string(a[0]) + ", " + std::to_string(a[1]) + ", " + std::to_string(a[2]) + ", " + std::to_string(a[3]) + "]";
    };
    fail(n, "pads (top, left, bottom, right) " + list(pads) + " are neither none nor tagnet's 'same' padding " + list(same) +
                " for this " + std::to_string(H) + "x" + std::to_string(W) + " input");
  }
  const bool bias = has_input(n, 2);
  Pending p{"Conv2D", {{"filters", K}, {"kernel_size", k}, {"strides", s}, {"padding", valid ? "valid" : "same"}, {"use_bias", bias}}, {}};
  // OIHW -> OHWI
  std::vector<float> ohwi(w.floats.size());
  for (int64_t o = 0; o < K; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < k; ++y)
        for (int64_t x = 0; x < k; ++x) ohwi[((o * k + y) * k + x) * C + c] = w.floats[((o * C + c) * k + y) * k + x];
  p.values.push_back(std::move(ohwi));
  if (bias) p.values.push_back(floats(n, 2, "bias", static_cast<size_t>(K)));
  add(n, std::move(p));
  cur_.onnx_rank = 4;
}

void Importer::batchnorm(const NodeProto& n) {
  if (cur_.shape.rank() == 3 && cur_.axes[1] != kC) fail(n, "normalises an axis that is not the channels");
  if (cur_.onnx_rank == 4 && cur_.shape.rank() == 1) fail(n, "follows a global pooling without a Flatten");
  const size_t C = static_cast<size_t>(cur_.shape[cur_.shape.rank() - 1]);
  const float eps = float_attr(n, "epsilon", 1e-5f);
  const float momentum = float_attr(n, "momentum", 0.9f);
  std::vector<std::vector<float>> v;
  const char* names[4] = {"scale", "B", "mean", "var"};
  for (size_t i = 0; i < 4; ++i) {
    auto onnx_order = floats(n, i + 1, names[i], C);
    std::vector<float> t(C);
    // After a Flatten the features are in ONNX order; tagnet's BatchNorm sees its own.
    for (size_t f = 0; f < C; ++f) t[cur_.order.empty() ? f : cur_.order[f]] = onnx_order[f];
    v.push_back(std::move(t));
  }
  Pending* conv = !layers_.empty() && layers_.back().type == "Conv2D" ? &layers_.back() : nullptr;
  if (o_.fold_batchnorm && conv && cur_.shape.rank() == 3) {
    if (conv->values.size() == 1) {
      conv->values.emplace_back(C, 0.f);
      conv->config["use_bias"] = true;
    }
    auto& w = conv->values[0];
    auto& b = conv->values[1];
    const size_t per = w.size() / C;
    for (size_t k = 0; k < C; ++k) {
      const float scale = v[0][k] / std::sqrt(v[3][k] + eps);
      for (size_t i = 0; i < per; ++i) w[k * per + i] *= scale;
      b[k] = (b[k] - v[2][k]) * scale + v[1][k];
    }
    return;
  }
  if (!(momentum >= 0.f && momentum <= 1.f) || !(eps > 0.f && std::isfinite(eps))) fail(n, "has a bad momentum or epsilon");
  add(n, {"BatchNormalization", {{"momentum", momentum}, {"epsilon", eps}}, std::move(v)});
}

void Importer::maxpool(const NodeProto& n) {
  need_spatial(n);
  const auto k = ints(n, "kernel_shape", 99, {});
  const auto strides = ints(n, "strides", 99, {1, 1});
  const auto pads = ints(n, "pads", 99, {0, 0, 0, 0});
  const auto dil = ints(n, "dilations", 99, {1, 1});
  if (k.size() != 2 || k[0] != k[1]) fail(n, "has a non-square window; tagnet's pools are square");
  if (strides.size() != 2 || strides[0] != strides[1]) fail(n, "has unequal strides");
  if (k[0] < 1) fail(n, "has an empty " + std::to_string(k[0]) + "x" + std::to_string(k[0]) + " window");
  if (strides[0] < 1) fail(n, "has stride " + std::to_string(strides[0]) + "; a stride is at least 1");
  if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p; })) fail(n, "has pads; tagnet's MaxPool pads none");
  if (dil != std::vector<int64_t>{1, 1}) fail(n, "has dilations");
  if (auto* a = n.attr("auto_pad"); a && a->s != "NOTSET" && a->s != "VALID") fail(n, "has auto_pad '" + a->s + "'");
  if (int_attr(n, "ceil_mode", 0) && ((cur_.shape[0] - k[0]) % strides[0] || (cur_.shape[1] - k[0]) % strides[0]))
    fail(n, "rounds its output size up (ceil_mode); tagnet's MaxPool rounds down");
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) fail(n, "outputs its indices");
  add(n, {"MaxPooling2D", {{"pool_size", k[0]}, {"strides", strides[0]}}});
}

void Importer::global_pool(const NodeProto& n, const std::vector<int64_t>& axes, bool keepdims) {
  std::vector<int> dims;
  for (int64_t a : axes) {
    const int64_t i = a < 0 ? a + 4 : a;
    if (i < 0 || i > 3) fail(n, "has a bad axis");
    dims.push_back(cur_.axes[i]);
  }
  std::sort(dims.begin(), dims.end());
  if (dims != std::vector<int>{kH, kW}) fail(n, "tagnet maps averages over a picture's height and width only");
  add(n, {"GlobalAveragePooling2D"});
  cur_.onnx_rank = keepdims ? 4 : 2;
}

void Importer::flatten(const NodeProto& n) {
  if (cur_.shape.rank() == 1) {   // (N, F) or the (N, C, 1, 1) of a global pooling
    cur_.onnx_rank = 2;
    return;
  }
  const int H = cur_.shape[0], W = cur_.shape[1], C = cur_.shape[2];
  // The Dense after it holds features x outputs weights from the file: a larger Flatten is no
  // network tagnet runs, only a way to make the permutation below exhaust memory.
  if (cur_.shape.numel() > (size_t{1} << 22)) fail(n, "flattens " + std::to_string(cur_.shape.numel()) + " features");
  const int size[4] = {1, H, W, C};
  std::vector<size_t> order;
  order.reserve(cur_.shape.numel());
  // ONNX flattens its axes 1, 2, 3 in their order; tagnet flattens (H, W, C).
  const int a1 = cur_.axes[1], a2 = cur_.axes[2], a3 = cur_.axes[3];
  int idx[4] = {0, 0, 0, 0};
  for (idx[a1] = 0; idx[a1] < size[a1]; ++idx[a1])
    for (idx[a2] = 0; idx[a2] < size[a2]; ++idx[a2])
      for (idx[a3] = 0; idx[a3] < size[a3]; ++idx[a3])
        order.push_back((static_cast<size_t>(idx[kH]) * W + idx[kW]) * C + idx[kC]);
  bool identity = true;
  for (size_t i = 0; i < order.size(); ++i) identity = identity && order[i] == i;
  add(n, {"Flatten"});
  cur_.order = identity ? std::vector<size_t>{} : std::move(order);
  cur_.onnx_rank = 2;
}

void Importer::dense(const NodeProto& n, const std::vector<float>& b, int64_t outputs, bool transposed, float alpha) {
  const size_t F = static_cast<size_t>(cur_.shape[0]);
  if (outputs < 1 || b.size() != F * static_cast<size_t>(outputs))
    fail(n, "B has " + std::to_string(b.size()) + " values, not " + std::to_string(F) + " inputs x " + std::to_string(outputs) + " outputs");
  const size_t O = static_cast<size_t>(outputs);
  std::vector<float> w(O * F);   // (O, I), tagnet's input order
  for (size_t o = 0; o < O; ++o)
    for (size_t f = 0; f < F; ++f) {
      const size_t t = cur_.order.empty() ? f : cur_.order[f];
      w[o * F + t] = alpha * (transposed ? b[o * F + f] : b[f * O + o]);
    }
  add(n, {"Dense", {{"units", outputs}, {"use_bias", true}}, {std::move(w), std::vector<float>(O, 0.f)}});
  cur_.order.clear();
}

}  // namespace

Model import_onnx(const uint8_t* data, size_t size, const std::string& origin, const OnnxImportOptions& options) {
  onnx::ModelProto proto;
  try {
    proto = onnx::parse_model(data, size);
  } catch (const std::runtime_error& e) {
    throw OnnxError(origin + ": " + one_line(e.what()));
  }
  return Importer(proto, origin, options).run();
}

Model import_onnx_file(const std::string& path, const OnnxImportOptions& options) {
  std::vector<uint8_t> bytes;
  std::string error;
  if (!read_file(path, bytes, error)) throw OnnxError(path + ": " + error);
  return import_onnx(bytes.data(), bytes.size(), path, options);
}

}  // namespace tagnet
