// The ONNX importer on graphs that are valid in form: the fuzzer's bytes choose the ops of a
// chain, their attributes, the shapes and values of their constants and the input's size, so
// that the search reaches the importer's arithmetic rather than the protobuf reader. Every
// graph either imports into a model that runs, exports and imports again, or is refused with
// one line naming the file. libFuzzer's -rss_limit_mb and -timeout (scripts/fuzz.sh) bound
// what a graph may cost.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <limits>

#include "fuzz_check.h"
#include "onnx_proto.h"
#include "tagnet/io/onnx.h"

namespace {

using namespace tagnet;

const char* const kOps[] = {"Conv", "Relu", "Sigmoid", "Softmax", "BatchNormalization", "MaxPool", "AveragePool",
                            "GlobalAveragePool", "ReduceMean", "Gemm", "MatMul", "Add", "Flatten", "Reshape",
                            "Squeeze", "Unsqueeze", "Transpose", "Dropout", "Identity", "Pad", "Clip", "Constant",
                            "ConstantOfShape", "Concat", "Slice", "Cast"};
const char* const kAttrs[] = {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "ceil_mode",
                              "count_include_pad", "axis", "axes", "keepdims", "perm", "transA", "transB",
                              "alpha", "beta", "epsilon", "to", "value", "mode", "allowzero"};

// Mostly the small numbers graphs hold, sometimes the ones that break arithmetic.
int64_t hostile_int(FuzzedDataProvider& p) {
  static const int64_t kEdges[] = {0, -1, -2, 1 << 16, 1 << 24, std::numeric_limits<int32_t>::max(),
                                   std::numeric_limits<int32_t>::min(), std::numeric_limits<int64_t>::max(),
                                   std::numeric_limits<int64_t>::min()};
  if (p.ConsumeIntegralInRange(0, 7) == 0) return p.PickValueInArray(kEdges);
  return p.ConsumeIntegralInRange<int64_t>(-2, 9);
}

float hostile_float(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange(0, 11)) {
    case 0: return std::numeric_limits<float>::quiet_NaN();
    case 1: return std::numeric_limits<float>::infinity();
    case 2: return 3e38f;
    default: return p.ConsumeFloatingPointInRange(-2.f, 2.f);
  }
}

std::vector<int64_t> hostile_ints(FuzzedDataProvider& p, size_t most = 6) {
  std::vector<int64_t> v(p.ConsumeIntegralInRange<size_t>(0, most));
  for (auto& x : v) x = hostile_int(p);
  return v;
}

// A constant: dims as the bytes say, values for as many of them as fit a small budget (a file
// may claim more values than it holds).
onnx::TensorProto constant(FuzzedDataProvider& p, const std::string& name) {
  onnx::TensorProto t;
  t.name = name;
  t.dims = hostile_ints(p, 4);
  uint64_t claimed = 1;
  for (int64_t d : t.dims) claimed = d > 0 && claimed < (1u << 20) ? claimed * uint64_t(d) : claimed;
  size_t n = size_t(std::min<uint64_t>(claimed, 4096));
  if (p.ConsumeBool()) n = p.ConsumeIntegralInRange<size_t>(0, 64);
  if (p.ConsumeBool()) {
    t.data_type = onnx::kInt64;
    for (size_t i = 0; i < n; ++i) t.ints.push_back(hostile_int(p));
  } else {
    t.data_type = onnx::kFloat;
    for (size_t i = 0; i < n; ++i) t.floats.push_back(hostile_float(p));
  }
  t.has_data = true;
  return t;
}

onnx::ModelProto graph(FuzzedDataProvider& p) {
  onnx::ModelProto g;
  g.ir_version = 7;
  g.opset_import = {{"", p.ConsumeIntegralInRange<int64_t>(7, 18)}};
  g.has_graph = true;
  const bool nhwc = p.ConsumeIntegralInRange(0, 5) == 0;
  const int64_t c = p.ConsumeBool() ? 3 : p.ConsumeBool() ? 1 : hostile_int(p);
  const int64_t h = p.ConsumeBool() ? p.ConsumeIntegralInRange<int64_t>(1, 32) : hostile_int(p);
  const int64_t w = p.ConsumeBool() ? h : hostile_int(p);
  g.graph.inputs.push_back({"x", onnx::kFloat, true, nhwc ? std::vector<int64_t>{-1, h, w, c} : std::vector<int64_t>{-1, c, h, w},
                            {"n", "", "", ""}});
  std::string cur = "x";
  const int nodes = p.ConsumeIntegralInRange(1, 10);
  for (int i = 0; i < nodes && p.remaining_bytes() > 0; ++i) {
    onnx::NodeProto n;
    n.op_type = p.PickValueInArray(kOps);
    n.name = "n" + std::to_string(i);
    n.outputs = {i + 1 == nodes ? std::string("y") : "v" + std::to_string(i)};
    // The chain's value first (most ops read it), or a constant; then constant inputs.
    if (n.op_type != "Constant") n.inputs.push_back(p.ConsumeIntegralInRange(0, 5) ? cur : "k" + std::to_string(i) + "_0");
    const int extra = p.ConsumeIntegralInRange(0, 4);
    for (int k = 0; k < extra; ++k) {
      const std::string name = "k" + std::to_string(i) + "_" + std::to_string(k + 1);
      g.graph.initializers.push_back(constant(p, name));
      n.inputs.push_back(p.ConsumeIntegralInRange(0, 7) ? name : "");
    }
    if (n.inputs.size() && n.inputs[0] != cur) g.graph.initializers.push_back(constant(p, n.inputs[0]));
    const int attrs = p.ConsumeIntegralInRange(0, 4);
    for (int k = 0; k < attrs; ++k) {
      onnx::AttributeProto a;
      a.name = p.PickValueInArray(kAttrs);
      switch (p.ConsumeIntegralInRange(0, 4)) {
        case 0: a.type = 1; a.f = hostile_float(p); break;
        case 1: a.type = 2; a.i = hostile_int(p); break;
        case 2: a.type = 3; a.s = p.PickValueInArray({"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "constant", "x"}); break;
        case 3: a.type = 4; a.t = {constant(p, "")}; break;
        default: a.type = 7; a.ints = hostile_ints(p); break;
      }
      n.attributes.push_back(std::move(a));
    }
    cur = n.outputs[0];
    g.graph.nodes.push_back(std::move(n));
  }
  g.graph.outputs.push_back({cur, onnx::kFloat, true, {-1, hostile_int(p)}, {"n", ""}});
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);
  const std::vector<uint8_t> bytes = onnx::serialize_model(graph(p));
  const std::string origin = "fuzz.onnx";
  OnnxImportOptions o;
  if (p.ConsumeBool()) o.input_size = int(p.ConsumeIntegralInRange<int>(-1, 40));
  if (p.ConsumeBool()) o.head = p.ConsumeBool() ? "softmax" : "sigmoid";
  o.fold_batchnorm = p.ConsumeBool();
  try {
    Model m = import_onnx(bytes.data(), bytes.size(), origin, o);
    fuzz::expect(m.built() && m.num_layers() > 0, "an imported model is built and has layers");
    static Engine engine(Engine::Options{1, "hwy"});
    if (m.input_shape().numel() <= 64 * 64 * 3) {
      Tensor x(m.input_shape().batched(1));
      x.fill(0.5f);
      m.forward(x, Context{&engine});
    }
  } catch (const OnnxError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
    return 0;
  }
  // Export may refuse a model it cannot write (one ending in a Flatten, say), in one line.
  try {
    Model m = import_onnx(bytes.data(), bytes.size(), origin, o);
    const std::vector<uint8_t> again = export_onnx(m);
    Model back = import_onnx(again.data(), again.size(), "exported again", {});
    fuzz::expect(back.param_count() == m.param_count(), "export and import keep every parameter");
  } catch (const OnnxError& e) {
    fuzz::expect(std::string(e.what()).find('\n') == std::string::npos, "export errors are one line");
  }
  return 0;
}
