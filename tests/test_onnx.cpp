// ONNX import and export in the core: tagnet's own protobuf reader and writer against libonnx
// and libprotobuf on the same bytes, the round trip tagnet -> ONNX -> tagnet, and bad bytes.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tagnet/nn/architectures.h"
#include "tagnet/io/onnx.h"

#include "onnx_proto.h"

namespace tagnet {
namespace {

// Random weights everywhere, BatchNorm statistics included, so that a parameter in the wrong
// place changes the outputs.
Model random_model(const std::string& arch, const ArchOptions& o, uint64_t seed) {
  Model m = make_architecture(arch, o);
  m.build(seed);
  Rng rng(seed + 1);
  for (size_t i = 0; i < m.num_layers(); ++i)
    for (auto& p : m.layer(i).params())
      if (m.layer(i).kind() == LayerKind::kBatchNorm || p.name == "bias")
        for (size_t k = 0; k < p.value.size(); ++k)
          p.value.at(k) = p.name == "moving_variance" || p.name == "gamma" ? rng.uniform(0.5f, 1.5f) : rng.uniform(-0.3f, 0.3f);
  std::vector<std::string> labels;
  for (int i = 0; i < o.outputs; ++i) labels.push_back("label" + std::to_string(i));
  m.card().labels = labels;
  return m;
}

Tensor random_input(const Shape& in, int n, uint64_t seed) {
  Tensor x(in.batched(n));
  Rng rng(seed);
  for (size_t i = 0; i < x.size(); ++i) x.at(i) = rng.uniform(0.f, 1.f);
  return x;
}

float max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a.at(i) - b.at(i)));
  return d;
}

struct Arch {
  const char* name;
  ArchOptions options;
};
const Arch kArchs[] = {
    {"fashionnet", {10, Head::kSoftmax, {28, 28, 1}, -1}},
    {"smallervggnet", {5, Head::kSigmoid, {36, 36, 3}, -1}},
    {"smallervggnet-gap", {4, Head::kSoftmax, {36, 36, 3}, -1}},
    {"catsdogs", {2, Head::kLogit, {24, 24, 3}, 0.2f}},
};

TEST(Onnx, RoundTripGivesTheSameOutputs) {
  Engine engine;
  const Context ctx{&engine, false, nullptr, 0};
  for (const Arch& a : kArchs) {
    Model m = random_model(a.name, a.options, 7);
    const auto bytes = export_onnx(m);
    Model back = import_onnx(bytes.data(), bytes.size(), "model bytes", {});
    size_t fused = 0;   // a Conv or Dense with a fused ReLU comes back as two layers
    for (size_t i = 0; i < m.num_layers(); ++i) fused += m.layer(i).config().value("activation", "") == "relu";
    ASSERT_EQ(back.num_layers(), m.num_layers() + fused) << a.name;
    EXPECT_EQ(back.card().labels, m.card().labels);
    EXPECT_EQ(back.card().head, a.options.head);
    EXPECT_EQ(back.card().architecture, a.name);
    EXPECT_EQ(back.param_count(), m.param_count());
    const Tensor x = random_input(m.input_shape(), 3, 11);
    const Tensor y = m.forward(x, ctx);
    const float d = max_diff(back.forward(x, ctx), y);
    std::printf("round trip %s: largest difference %.3g\n", a.name, d);
    EXPECT_LT(d, 1e-5f) << a.name;
  }
}

TEST(Onnx, FoldedBatchNormGivesTheSameOutputs) {
  // Conv -> BatchNormalization, as Keras writes it: folded into the Conv's weights and bias.
  Model m({12, 12, 3});
  m.add(std::make_unique<Conv2D>(6, 3, 1, Padding::kSame, Activation::kNone, false));
  m.add(std::make_unique<BatchNorm>());
  m.add(std::make_unique<ReLU>());
  m.add(std::make_unique<Flatten>());
  m.add(std::make_unique<Dense>(3));
  m.add(std::make_unique<Softmax>());
  m.build(3);
  for (auto& p : m.layer(1).params())
    for (size_t k = 0; k < p.value.size(); ++k) p.value.at(k) = 0.5f + 0.1f * static_cast<float>(k % 5);
  const auto bytes = export_onnx(m);
  OnnxImportOptions fold;
  fold.fold_batchnorm = true;
  Model plain = import_onnx(bytes.data(), bytes.size(), "model bytes", {});
  Model folded = import_onnx(bytes.data(), bytes.size(), "model bytes", fold);
  EXPECT_EQ(plain.num_layers(), 6u);
  EXPECT_EQ(folded.num_layers(), 5u);
  EXPECT_EQ(folded.layer(0).params().size(), 2u);   // the Conv gained a bias
  Engine engine;
  const Context ctx{&engine, false, nullptr, 0};
  const Tensor x = random_input(m.input_shape(), 2, 5);
  const Tensor y = m.forward(x, ctx);
  EXPECT_LT(max_diff(plain.forward(x, ctx), y), 1e-5f);
  EXPECT_LT(max_diff(folded.forward(x, ctx), y), 1e-5f);
}

TEST(Onnx, ImportedModelTrainsWithANewHead) {
  Model m = random_model("smallervggnet-gap-linear", {3, Head::kSigmoid, {24, 24, 3}, -1}, 2);
  const auto bytes = export_onnx(m);
  Model back = import_onnx(bytes.data(), bytes.size(), "model bytes", {});
  back.freeze_below(back.num_layers() - 2);
  Engine engine;
  Rng rng(1);
  const Context ctx{&engine, true, &rng, 0};
  const Tensor x = random_input(back.input_shape(), 8, 3);
  Tensor t({8, 3});
  for (size_t i = 0; i < t.size(); ++i) t.at(i) = static_cast<float>(i % 3 != 1);   // labels 0 and 2 on
  Adam adam(0.01f);
  const float first = back.train_step(x, t, LossKind::kBinaryCrossentropy, adam, ctx);
  float last = first;
  for (int i = 0; i < 30; ++i) last = back.train_step(x, t, LossKind::kBinaryCrossentropy, adam, ctx);
  EXPECT_LT(last, first * 0.5f);
  EXPECT_EQ(back.layer(0).params()[0].value.at(0), Model(import_onnx(bytes.data(), bytes.size(), "model bytes", {}))
                                                       .layer(0).params()[0].value.at(0));   // frozen
}

// A Keras network as tf2onnx writes it: NHWC input, Transposes around the Conv, MatMul + Add for
// Dense, and either a Flatten of the NHWC tensor (whose order is tagnet's) or a ReduceMean over
// height and width for global pooling.
TEST(Onnx, ImportsNhwcGraphsWithTransposesAndMatMul) {
  Engine engine;
  const Context ctx{&engine, false, nullptr, 0};
  for (bool pooled : {false, true}) {
    Model m({5, 6, 3});
    m.add(std::make_unique<Conv2D>(4, 3, 1, Padding::kSame, Activation::kRelu));
    if (pooled) m.add(std::make_unique<GlobalAvgPool2D>());
    else m.add(std::make_unique<Flatten>());
    m.add(std::make_unique<Dense>(3));
    m.add(std::make_unique<Sigmoid>());
    m.build(4);
    for (auto& p : m.layer(2).params())
      for (size_t k = 0; k < p.value.size(); ++k) p.value.at(k) += 0.05f * static_cast<float>(k % 3);

    onnx::ModelProto g;
    g.ir_version = 7;
    g.opset_import = {{"", 13}};
    g.has_graph = true;
    g.graph.inputs.push_back({"pixels", onnx::kFloat, true, {-1, 5, 6, 3}, {"n", "", "", ""}});
    g.graph.outputs.push_back({"probs", onnx::kFloat, true, {-1, 3}, {"n", ""}});
    auto tensor = [&](const std::string& name, std::vector<int64_t> dims, std::vector<float> v, std::vector<int64_t> ints = {}) {
      onnx::TensorProto t;
      t.name = name;
      t.dims = std::move(dims);
      t.data_type = ints.empty() ? onnx::kFloat : onnx::kInt64;
      t.floats = std::move(v);
      t.ints = std::move(ints);
      g.graph.initializers.push_back(t);
    };
    auto ints_attr = [](const char* name, std::vector<int64_t> v) {
      onnx::AttributeProto a;
      a.name = name;
      a.type = 7;
      a.ints = std::move(v);
      return a;
    };
    auto node = [&](const char* op, std::vector<std::string> in, const std::string& out, std::vector<onnx::AttributeProto> attrs = {}) {
      onnx::NodeProto n;
      n.op_type = op;
      n.name = out;
      n.inputs = std::move(in);
      n.outputs = {out};
      n.attributes = std::move(attrs);
      g.graph.nodes.push_back(n);
    };
    const Tensor& k = m.layer(0).params()[0].value;   // OHWI
    std::vector<float> oihw(k.size());
    for (int o = 0; o < 4; ++o)
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 3; ++y)
          for (int x = 0; x < 3; ++x) oihw[((o * 3 + c) * 3 + y) * 3 + x] = k.at(((o * 3 + y) * 3 + x) * 3 + c);
    tensor("k", {4, 3, 3, 3}, oihw);
    tensor("kb", {4}, std::vector<float>(m.layer(0).params()[1].value.data(), m.layer(0).params()[1].value.data() + 4));
    const Tensor& d = m.layer(2).params()[0].value;   // (O, F)
    const int F = d.dim(1);
    std::vector<float> fo(d.size());
    for (int o = 0; o < 3; ++o)
      for (int f = 0; f < F; ++f) fo[size_t(f) * 3 + o] = d.at(size_t(o) * F + f);
    tensor("w", {F, 3}, fo);
    tensor("b", {3}, std::vector<float>(m.layer(2).params()[1].value.data(), m.layer(2).params()[1].value.data() + 3));
    tensor("axes", {2}, {}, {1, 2});
    node("Transpose", {"pixels"}, "nchw", {ints_attr("perm", {0, 3, 1, 2})});
    node("Conv", {"nchw", "k", "kb"}, "conv", {ints_attr("pads", {1, 1, 1, 1})});
    node("Relu", {"conv"}, "relu");
    node("Transpose", {"relu"}, "nhwc", {ints_attr("perm", {0, 2, 3, 1})});
    if (pooled) {
      onnx::AttributeProto keep;
      keep.name = "keepdims";
      keep.type = 2;
      keep.i = 0;
      node("ReduceMean", {"nhwc"}, "flat", {ints_attr("axes", {1, 2}), keep});
    } else {
      node("Flatten", {"nhwc"}, "flat");
    }
    node("MatMul", {"flat", "w"}, "mm");
    node("Add", {"mm", "b"}, "logits");
    node("Sigmoid", {"logits"}, "probs");
    const auto bytes = onnx::serialize_model(g);
    Model back = import_onnx(bytes.data(), bytes.size(), "model bytes", {});
    EXPECT_EQ(back.input_shape(), Shape({5, 6, 3}));
    const Tensor x = random_input(m.input_shape(), 2, 8);
    const float diff = max_diff(back.forward(x, ctx), m.forward(x, ctx));
    EXPECT_LT(diff, 1e-5f) << (pooled ? "ReduceMean" : "Flatten");
  }
}

// Attributes and weights valid in form but meaningless in value: a one-line error naming the
// node, never a division by zero, a layer that cannot be built or NaN answers.
TEST(Onnx, MeaninglessAttributesAndWeightsGiveOneLineErrors) {
  struct Case {
    const char* op;
    std::vector<std::pair<const char*, std::vector<int64_t>>> ints;
    std::string auto_pad;
    const char* says;
    float weight = 0.1f;
  };
  const std::vector<Case> cases = {
      {"Conv", {{"strides", {0, 0}}, {"pads", {1, 1, 1, 1}}}, "", "has stride 0"},
      {"Conv", {{"strides", {0, 0}}}, "VALID", "has stride 0"},
      {"Conv", {{"strides", {0, 0}}}, "SAME_UPPER", "has stride 0"},
      {"Conv", {{"strides", {-2, -2}}}, "", "has stride -2"},
      {"Conv", {{"kernel_shape", {0, 0}}}, "", "has kernel_shape [0, 0] for a 3x3 weight"},
      {"MaxPool", {{"kernel_shape", {2, 2}}, {"strides", {0, 0}}, {"ceil_mode", {1}}}, "", "has stride 0"},
      {"MaxPool", {{"kernel_shape", {2, 2}}, {"strides", {0, 0}}}, "", "has stride 0"},
      {"MaxPool", {{"kernel_shape", {0, 0}}}, "", "has an empty 0x0 window"},
      {"Conv", {}, "", "has a weight of nan", std::nanf("")},
      {"Conv", {}, "", "has a weight of inf", INFINITY},
  };
  for (const Case& c : cases) {
    onnx::ModelProto g;
    g.ir_version = 7;
    g.opset_import = {{"", 13}};
    g.has_graph = true;
    g.graph.inputs.push_back({"x", onnx::kFloat, true, {1, 3, 6, 6}, {"", "", "", ""}});
    g.graph.outputs.push_back({"y", onnx::kFloat, true, {}, {}});
    onnx::NodeProto n;
    n.op_type = c.op;
    n.name = "hostile";
    n.inputs = {"x"};
    n.outputs = {"y"};
    if (std::string(c.op) == "Conv") {
      onnx::TensorProto w;
      w.name = "w";
      w.dims = {2, 3, 3, 3};
      w.data_type = onnx::kFloat;
      w.floats.assign(54, 0.1f);
      w.floats[7] = c.weight;
      g.graph.initializers.push_back(w);
      n.inputs.push_back("w");
    }
    for (const auto& [name, v] : c.ints) {
      onnx::AttributeProto a;
      a.name = name;
      a.type = v.size() == 1 && std::string(name) == "ceil_mode" ? 2 : 7;
      if (a.type == 2) a.i = v[0];
      else a.ints = v;
      n.attributes.push_back(a);
    }
    if (!c.auto_pad.empty()) {
      onnx::AttributeProto a;
      a.name = "auto_pad";
      a.type = 3;
      a.s = c.auto_pad;
      n.attributes.push_back(a);
    }
    g.graph.nodes.push_back(n);
    const auto bytes = onnx::serialize_model(g);
    try {
      import_onnx(bytes.data(), bytes.size(), "hostile.onnx", {});
      ADD_FAILURE() << c.op << " " << c.says << ": imported";
    } catch (const OnnxError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(what.rfind("hostile.onnx: ", 0), 0u) << what;
      EXPECT_NE(what.find(c.says), std::string::npos) << what;
    }
  }
}

// Constant folding is bounded by the file's weights: ConstantOfShape and doubling Concats of a
// few hundred bytes stop at the budget before allocating, and a Slice with the extreme int64
// steps and ends that exporters write folds without overflow.
TEST(Onnx, ConstantFoldingStaysWithinItsBudget) {
  auto graph = [](std::vector<onnx::NodeProto> folded, std::vector<onnx::TensorProto> consts) {
    onnx::ModelProto g;
    g.ir_version = 7;
    g.opset_import = {{"", 13}};
    g.has_graph = true;
    g.graph.inputs.push_back({"x", onnx::kFloat, true, {1, 1, 8, 8}, {"", "", "", ""}});
    g.graph.outputs.push_back({"y", onnx::kFloat, true, {1, 64}, {"", ""}});
    g.graph.initializers = std::move(consts);
    g.graph.nodes = std::move(folded);
    auto node = [&](const char* op, const std::string& in, const std::string& out) {
      onnx::NodeProto n;
      n.op_type = op;
      n.name = out;
      n.inputs = {in};
      n.outputs = {out};
      g.graph.nodes.push_back(n);
    };
    node("Relu", "x", "r");
    node("Flatten", "r", "f");
    node("Softmax", "f", "y");
    return onnx::serialize_model(g);
  };
  auto ints = [](const std::string& name, std::vector<int64_t> v) {
    onnx::TensorProto t;
    t.name = name;
    t.dims = {int64_t(v.size())};
    t.data_type = onnx::kInt64;
    t.ints = std::move(v);
    return t;
  };
  auto op = [](const char* type, std::vector<std::string> in, const std::string& out) {
    onnx::NodeProto n;
    n.op_type = type;
    n.name = out;
    n.inputs = std::move(in);
    n.outputs = {out};
    return n;
  };
  std::vector<onnx::NodeProto> doubling = {op("ConstantOfShape", {"shape"}, "c0")};
  for (int i = 0; i < 20; ++i)
    doubling.push_back(op("Concat", {"c" + std::to_string(i), "c" + std::to_string(i)}, "c" + std::to_string(i + 1)));
  for (auto& n : doubling)
    if (n.op_type == "Concat") {
      onnx::AttributeProto axis;
      axis.name = "axis";
      axis.type = 2;
      axis.i = 0;
      n.attributes.push_back(axis);
    }
  const auto amplifier = graph(doubling, {ints("shape", {1 << 21})});
  try {
    import_onnx(amplifier.data(), amplifier.size(), "amplifier.onnx", {});
    ADD_FAILURE() << "imported";
  } catch (const OnnxError& e) {
    EXPECT_STREQ(e.what(), "amplifier.onnx: Concat node 'c1': folding constants would make more than 4194304 values "
                           "(tagnet's budget: 4 times the file's weights, at least 2^22)");
  }

  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  const auto slices = graph({op("Slice", {"v", "zero", "hi", "axis", "hi"}, "s1"),
                             op("Slice", {"v", "minus1", "lo", "axis", "lo"}, "s2")},
                            {ints("v", {1, 2, 3, 4, 5, 6, 7, 8}), ints("zero", {0}), ints("minus1", {-1}),
                             ints("hi", {hi}), ints("lo", {lo}), ints("axis", {0})});
  EXPECT_EQ(import_onnx(slices.data(), slices.size(), "slices.onnx", {}).num_layers(), 3u);
}

// ---- the wire format, against libonnx / libprotobuf ----

TEST(OnnxProto, LibonnxReadsWhatTagnetWrites) {
  Model m = random_model("smallervggnet-gap", {4, Head::kSoftmax, {24, 24, 3}, -1}, 5);
  for (int opset : {13, 17}) {
    const auto bytes = export_onnx(m, opset);
    ::onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    ::onnx::checker::check_model(proto);   // throws ValidationError on a malformed graph
    const onnx::ModelProto ours = onnx::parse_model(bytes.data(), bytes.size());
    EXPECT_EQ(proto.opset_import(0).version(), opset);
    ASSERT_EQ(proto.graph().node_size(), static_cast<int>(ours.graph.nodes.size()));
    for (int i = 0; i < proto.graph().node_size(); ++i) {
      EXPECT_EQ(proto.graph().node(i).op_type(), ours.graph.nodes[i].op_type);
      EXPECT_EQ(proto.graph().node(i).attribute_size(), static_cast<int>(ours.graph.nodes[i].attributes.size()));
    }
    ASSERT_EQ(proto.graph().initializer_size(), static_cast<int>(ours.graph.initializers.size()));
    for (int i = 0; i < proto.graph().initializer_size(); ++i) {
      const auto& t = proto.graph().initializer(i);
      const auto& o = ours.graph.initializers[i];
      EXPECT_EQ(t.name(), o.name);
      EXPECT_EQ(std::vector<int64_t>(t.dims().begin(), t.dims().end()), o.dims);
      ASSERT_EQ(t.raw_data().size(), o.floats.size() * 4);
      EXPECT_EQ(std::memcmp(t.raw_data().data(), o.floats.data(), t.raw_data().size()), 0);
    }
    const auto& in = proto.graph().input(0).type().tensor_type().shape();
    EXPECT_EQ(in.dim(0).dim_param(), "N");
    EXPECT_EQ(in.dim(1).dim_value(), 3);
    bool labels = false;
    for (auto& p : proto.metadata_props()) labels |= p.key() == "labels" && p.value() == nlohmann::json(m.card().labels).dump();
    EXPECT_TRUE(labels);
  }
}

// libprotobuf writes repeated numbers unpacked where onnx.proto (proto2) does not ask for
// packing, and tensors in float_data, int64_data, int32_data or double_data instead of raw_data:
// tagnet's reader takes every form.
TEST(OnnxProto, TagnetReadsWhatLibonnxWrites) {
  ::onnx::ModelProto p;
  p.set_ir_version(7);
  p.set_producer_name("libonnx");
  auto* op = p.add_opset_import();
  op->set_version(11);
  auto* kv = p.add_metadata_props();
  kv->set_key("labels");
  kv->set_value("[\"a\",\"b\"]");
  auto* g = p.mutable_graph();
  g->set_name("g");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  auto* shape = in->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int d : {1, 4, 4}) shape->add_dim()->set_dim_value(d);
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param("batch");
  out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(2);
  // Conv weight in float_data, bias in double_data; Gemm weight raw, bias as float_data.
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(1);
  for (int d : {2, 1, 3, 3}) w->add_dims(d);
  for (int i = 0; i < 18; ++i) w->add_float_data(0.1f * static_cast<float>(i % 7) - 0.3f);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(11);
  b->add_dims(2);
  b->add_double_data(0.25);
  b->add_double_data(-0.5);
  auto* shape_t = g->add_initializer();
  shape_t->set_name("shape");
  shape_t->set_data_type(7);
  shape_t->add_dims(2);
  shape_t->add_int64_data(0);
  shape_t->add_int64_data(-1);
  auto* gw = g->add_initializer();
  gw->set_name("gw");
  gw->set_data_type(1);
  gw->add_dims(32);
  gw->add_dims(2);
  std::vector<float> gwv(64);
  for (int i = 0; i < 64; ++i) gwv[i] = 0.01f * static_cast<float>(i);
  gw->set_raw_data(gwv.data(), gwv.size() * 4);
  auto node = [&](const char* type, std::vector<std::string> ins, const char* outp) {
    auto* n = g->add_node();
    n->set_op_type(type);
    n->set_name(std::string(type) + "_node");
    for (auto& i : ins) n->add_input(i);
    n->add_output(outp);
    return n;
  };
  auto* conv = node("Conv", {"x", "w", "b"}, "c");
  auto* pads = conv->add_attribute();
  pads->set_name("pads");
  pads->set_type(::onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  node("Relu", {"c"}, "r");
  node("Reshape", {"r", "shape"}, "f");
  auto* gemm = node("Gemm", {"f", "gw"}, "z");
  auto* alpha = gemm->add_attribute();
  alpha->set_name("alpha");
  alpha->set_type(::onnx::AttributeProto::FLOAT);
  alpha->set_f(2.f);
  node("Softmax", {"z"}, "y");
  ::onnx::checker::check_model(p);
  std::string bytes;
  ASSERT_TRUE(p.SerializeToString(&bytes));
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());

  const onnx::ModelProto ours = onnx::parse_model(data, bytes.size());
  EXPECT_EQ(ours.producer_name, "libonnx");
  EXPECT_EQ(ours.opset_import[0].second, 11);
  ASSERT_EQ(ours.graph.initializers.size(), 4u);
  EXPECT_EQ(ours.graph.initializers[0].dims, (std::vector<int64_t>{2, 1, 3, 3}));
  for (int i = 0; i < 18; ++i) EXPECT_EQ(ours.graph.initializers[0].floats[i], w->float_data(i));
  EXPECT_EQ(ours.graph.initializers[1].floats, (std::vector<float>{0.25f, -0.5f}));
  EXPECT_EQ(ours.graph.initializers[2].ints, (std::vector<int64_t>{0, -1}));
  EXPECT_EQ(ours.graph.initializers[3].floats, gwv);
  EXPECT_EQ(ours.graph.inputs[0].dims, (std::vector<int64_t>{-1, 1, 4, 4}));
  EXPECT_EQ(ours.graph.inputs[0].dim_params[0], "batch");
  EXPECT_EQ(ours.graph.nodes[0].attr("pads")->ints, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(ours.graph.nodes[3].attr("alpha")->f, 2.f);

  // And the network it describes: the Conv as tagnet's 'same', the Gemm's alpha in the weights.
  Model m = import_onnx(data, bytes.size(), "model bytes", {});
  ASSERT_EQ(m.num_layers(), 5u);
  EXPECT_EQ(m.layer(0).config()["padding"], "same");
  EXPECT_EQ(m.card().labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(m.layer(0).params()[1].value.at(1), -0.5f);
  // Gemm weight (F=32, O=2) -> tagnet (O, F) in (H, W, C) order, times alpha: feature f = c*16 + h*4 + w
  // of the NCHW flatten is tagnet feature (h*4 + w)*2 + c.
  const Tensor& k = m.layer(3).params()[0].value;
  EXPECT_FLOAT_EQ(k.at(0 * 32 + (1 * 4 + 2) * 2 + 1), 2.f * gwv[(1 * 16 + 1 * 4 + 2) * 2 + 0]);
}

// ---- bad bytes ----

void expect_one_line_error(const std::vector<uint8_t>& bytes, const std::string& what) {
  try {
    import_onnx(bytes.data(), bytes.size(), "model bytes", {});
    ADD_FAILURE() << what << ": imported";
  } catch (const OnnxError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("model bytes: ", 0), 0u) << what << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
  }
}

TEST(Onnx, TruncatedAndRandomBytesGiveOneLineErrors) {
  Model m = random_model("fashionnet", {3, Head::kSoftmax, {8, 8, 1}, -1}, 1);
  const auto bytes = export_onnx(m);
  // Every prefix of a whole file: none reads past the end, none imports.
  for (size_t n = 0; n < bytes.size(); ++n)
    expect_one_line_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(n)), "prefix " + std::to_string(n));
  // Random bytes, and the file with random bytes flipped: errors or (rarely) a model, never a crash.
  Rng rng(99);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> b(1 + rng.next() % 400);
    for (auto& c : b) c = static_cast<uint8_t>(rng.next());
    expect_one_line_error(b, "random " + std::to_string(i));
  }
  int flipped_ok = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> b = bytes;
    for (int k = 0; k < 3; ++k) b[rng.next() % b.size()] = static_cast<uint8_t>(rng.next());
    try {
      import_onnx(b.data(), b.size(), "model bytes", {});
      ++flipped_ok;   // a flipped weight byte is still a model
    } catch (const OnnxError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(flipped_ok, 0);
}

TEST(Onnx, ExportRefusesWhatItCannotWrite) {
  Model m = random_model("fashionnet", {3, Head::kSoftmax, {8, 8, 1}, -1}, 1);
  EXPECT_THROW(export_onnx(m, 9), OnnxError);
  Model unbuilt({8, 8, 1});
  EXPECT_THROW(export_onnx(unbuilt), OnnxError);
}

}  // namespace
}  // namespace tagnet
