// tagnet model -> ONNX graph (NCHW, dynamic batch): see tagnet/io/onnx.h and docs/onnx.md.
#include <algorithm>

#include "tagnet/nn/architectures.h"
#include "tagnet/io/onnx.h"

#include "file_io.h"
#include "onnx_proto.h"

namespace tagnet {

namespace {

using onnx::AttributeProto;
using onnx::NodeProto;
using onnx::TensorProto;

AttributeProto attr(const std::string& name, int32_t type) {
  AttributeProto a;
  a.name = name;
  a.type = type;
  return a;
}
AttributeProto ints_attr(const std::string& name, std::vector<int64_t> v) {
  AttributeProto a = attr(name, 7);
  a.ints = std::move(v);
  return a;
}
AttributeProto int_attr(const std::string& name, int64_t v) {
  AttributeProto a = attr(name, 2);
  a.i = v;
  return a;
}
AttributeProto float_attr(const std::string& name, float v) {
  AttributeProto a = attr(name, 1);
  a.f = v;
  return a;
}

class Exporter {
 public:
  Exporter(const Model& m, int opset) : m_(m), opset_(opset) {}
  onnx::ModelProto run();

 private:
  // A node reading the current value (and `extra` inputs), writing a new one.
  NodeProto& node(const std::string& op, const std::string& name, std::vector<std::string> extra = {}) {
    NodeProto n;
    n.op_type = op;
    n.name = name;
    n.inputs.push_back(cur_);
    for (auto& e : extra) n.inputs.push_back(e);
    cur_ = name + "/" + op + "_out";
    n.outputs.push_back(cur_);
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back();
  }
  std::string initializer(const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
    TensorProto t;
    t.name = name;
    t.dims = std::move(dims);
    t.data_type = onnx::kFloat;
    t.floats = std::move(values);
    g_.initializers.push_back(std::move(t));
    return name;
  }
  // Per-feature parameters in ONNX's feature order (after a Flatten of an NCHW tensor).
  std::vector<float> onnx_order(const float* p, size_t n) const {
    std::vector<float> v(p, p + n);
    if (!order_.empty())
      for (size_t f = 0; f < n; ++f) v[f] = p[order_[f]];
    return v;
  }

  const Model& m_;
  int opset_;
  onnx::GraphProto g_;
  std::string cur_ = "input";
  std::vector<size_t> order_;   // after a Flatten: the tagnet feature of each ONNX feature
};

onnx::ModelProto Exporter::run() {
  for (size_t li = 0; li < m_.num_layers(); ++li) {
    const Layer& l = m_.layer(li);
    const auto& params = l.params();
    const nlohmann::json cfg = l.config();
    const Shape& in = l.input_shape;
    const std::string& name = l.name;
    switch (l.kind()) {
      case LayerKind::kConv2D: {
        const int K = cfg["filters"], k = cfg["kernel_size"], s = cfg["strides"];
        const int H = in[0], W = in[1], C = in[2];
        std::vector<int64_t> pads = {0, 0, 0, 0};
        if (cfg["padding"] == "same") {
          // Keras' 'same': the odd pixel at the bottom and right (Conv2D::setup).
          const int64_t ph = std::max(0, (l.output_shape[0] - 1) * s + k - H);
          const int64_t pw = std::max(0, (l.output_shape[1] - 1) * s + k - W);
          pads = {ph / 2, pw / 2, ph - ph / 2, pw - pw / 2};
        }
        const float* w = params[0].value.data();   // OHWI
        std::vector<float> oihw(params[0].value.size());
        for (int o = 0; o < K; ++o)
          for (int c = 0; c < C; ++c)
            for (int y = 0; y < k; ++y)
              for (int x = 0; x < k; ++x) oihw[((o * C + c) * k + y) * k + x] = w[((o * k + y) * k + x) * C + c];
        std::vector<std::string> inputs = {initializer(name + ".weight", {K, C, k, k}, std::move(oihw))};
        if (params.size() > 1) inputs.push_back(initializer(name + ".bias", {K}, std::vector<float>(params[1].value.data(), params[1].value.data() + K)));
        auto& n = node("Conv", name, inputs);
        n.attributes = {ints_attr("kernel_shape", {k, k}), ints_attr("strides", {s, s}), ints_attr("pads", pads)};
        if (cfg["activation"] == "relu") node("Relu", name + "/relu");
        break;
      }
      case LayerKind::kDense: {
        const int O = cfg["units"], F = in[0];
        const float* w = params[0].value.data();   // (O, I) in tagnet's feature order
        std::vector<float> wt(static_cast<size_t>(O) * F);
        for (int o = 0; o < O; ++o)
          for (int f = 0; f < F; ++f) wt[size_t(o) * F + f] = w[size_t(o) * F + (order_.empty() ? f : order_[f])];
        std::vector<std::string> inputs = {initializer(name + ".weight", {O, F}, std::move(wt))};
        if (params.size() > 1)
          inputs.push_back(initializer(name + ".bias", {O}, std::vector<float>(params[1].value.data(), params[1].value.data() + O)));
        node("Gemm", name, inputs).attributes = {int_attr("transB", 1)};
        order_.clear();
        if (cfg["activation"] == "relu") node("Relu", name + "/relu");
        break;
      }
      case LayerKind::kBatchNorm: {
        const size_t C = static_cast<size_t>(in[in.rank() - 1]);
        const char* names[4] = {".scale", ".bias", ".mean", ".var"};
        std::vector<std::string> inputs;
        for (size_t i = 0; i < 4; ++i)
          inputs.push_back(initializer(name + names[i], {static_cast<int64_t>(C)}, onnx_order(params[i].value.data(), C)));
        node("BatchNormalization", name, inputs).attributes = {float_attr("epsilon", cfg["epsilon"].get<float>()),
                                                               float_attr("momentum", cfg["momentum"].get<float>())};
        break;
      }
      case LayerKind::kReLU: node("Relu", name); break;
      case LayerKind::kSigmoid: node("Sigmoid", name); break;
      case LayerKind::kSoftmax: node("Softmax", name).attributes = {int_attr("axis", -1)}; break;
      case LayerKind::kMaxPool2D: {
        const int p = cfg["pool_size"], s = cfg["strides"];
        node("MaxPool", name).attributes = {ints_attr("kernel_shape", {p, p}), ints_attr("strides", {s, s})};
        break;
      }
      case LayerKind::kGlobalAvgPool2D:
        node("GlobalAveragePool", name);
        node("Flatten", name + "/flatten").attributes = {int_attr("axis", 1)};
        break;
      case LayerKind::kDropout: {
        // Identity in inference; kept so that a re-imported model trains with the same rate.
        const std::string ratio = name + ".ratio";
        TensorProto t;
        t.name = ratio;
        t.data_type = onnx::kFloat;
        t.floats = {cfg["rate"].get<float>()};
        g_.initializers.push_back(std::move(t));
        node("Dropout", name, {ratio});
        break;
      }
      case LayerKind::kFlatten: {
        const int H = in[0], W = in[1], C = in[2];
        order_.clear();
        if (H * W > 1)
          for (int c = 0; c < C; ++c)
            for (int h = 0; h < H; ++h)
              for (int w = 0; w < W; ++w) order_.push_back((size_t(h) * W + w) * C + c);
        node("Flatten", name).attributes = {int_attr("axis", 1)};
        break;
      }
    }
  }
  if (!order_.empty()) throw OnnxError("cannot export a model that ends in a Flatten");
  // The last node writes the graph's output.
  g_.nodes.back().outputs[0] = "output";
  g_.name = "tagnet";

  const Shape& is = m_.input_shape();
  onnx::ValueInfoProto input{"input", onnx::kFloat, true, {-1, is[2], is[0], is[1]}, {"N", "", "", ""}};
  onnx::ValueInfoProto output{"output", onnx::kFloat, true, {-1, static_cast<int64_t>(m_.output_shape().numel())}, {"N", ""}};
  g_.inputs.push_back(input);
  g_.outputs.push_back(output);

  onnx::ModelProto mp;
  mp.ir_version = opset_ >= 14 ? 8 : 7;
  mp.opset_import = {{"", opset_}};
  mp.producer_name = "tagnet";
  mp.graph = std::move(g_);
  mp.has_graph = true;

  const ModelCard& card = m_.card();
  const Preprocessing pre = card.preprocessing.value_or(Preprocessing::for_channels(int(is[2])));
  mp.doc_string = "Input 'input': float32 (N, " + std::to_string(is[2]) + ", " + std::to_string(is[0]) + ", " +
                  std::to_string(is[1]) + "), NCHW, " + pre.color + " pixels resized to " +
                  std::to_string(is[0]) + "x" + std::to_string(is[1]) + " (" + pre.resize +
                  ") and multiplied by " + nlohmann::json(pre.scale).dump() + " (0..255 -> 0..1). Output 'output': one " +
                  head_name(model_head(m_)) + " score per label, in the order of metadata 'labels'.";
  mp.metadata_props.push_back({"preprocessing", pre.to_json().dump()});
  mp.metadata_props.push_back({"input_layout", "NCHW"});
  mp.metadata_props.push_back({"head", head_name(model_head(m_))});
  if (!card.labels.empty()) mp.metadata_props.push_back({"labels", nlohmann::json(card.labels).dump()});
  if (!card.architecture.empty()) mp.metadata_props.push_back({"architecture", card.architecture});
  return mp;
}

}  // namespace

std::vector<uint8_t> export_onnx(const Model& model, int opset) {
  if (opset < 13 || opset > 17) throw OnnxError("opset " + std::to_string(opset) + " is not one tagnet writes (13 to 17)");
  if (!model.built()) throw OnnxError("cannot export a model that is not built");
  return onnx::serialize_model(Exporter(model, opset).run());
}

void export_onnx_file(const Model& model, const std::string& path, int opset) {
  write_file_atomic(path, export_onnx(model, opset));
}

}  // namespace tagnet
