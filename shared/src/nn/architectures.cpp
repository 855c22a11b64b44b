#include "tagnet/nn/architectures.h"

#include <stdexcept>

namespace tagnet {

namespace {

template <typename L, typename... A>
void add(Model& m, A&&... a) {
  m.add(std::make_unique<L>(std::forward<A>(a)...));
}

void add_head(Model& m, const ArchOptions& o) {
  add<Dense>(m, o.head == Head::kLogit ? 1 : o.outputs);
  if (o.head == Head::kSoftmax) add<Softmax>(m);
  if (o.head == Head::kSigmoid) add<Sigmoid>(m);
}

Model fashionnet(const ArchOptions& o) {
  Model m(o.input.rank() ? o.input : Shape{56, 56, 1});
  const float drop = o.dropout < 0 ? 0.3f : o.dropout;
  add<Conv2D>(m, 16, 2, 1, Padding::kSame, Activation::kRelu);
  add<MaxPool2D>(m, 2);
  if (drop > 0) add<Dropout>(m, drop);
  add<Conv2D>(m, 32, 2, 1, Padding::kSame, Activation::kRelu);
  add<MaxPool2D>(m, 2);
  if (drop > 0) add<Dropout>(m, drop);
  add<Conv2D>(m, 64, 2, 1, Padding::kSame, Activation::kRelu);
  add<MaxPool2D>(m, 2);
  add<Flatten>(m);
  add_head(m, o);
  return m;
}

// SmallerVGGNet's five conv blocks (conv -> ReLU -> BN), pooled and dropped out as the tutorial.
void smallervggnet_features(Model& m) {
  auto conv_block = [&](int filters) {
    add<Conv2D>(m, filters, 3, 1, Padding::kSame);
    add<ReLU>(m);
    add<BatchNorm>(m);
  };
  conv_block(32);
  add<MaxPool2D>(m, 3);
  add<Dropout>(m, 0.25f);
  conv_block(64);
  conv_block(64);
  add<MaxPool2D>(m, 2);
  add<Dropout>(m, 0.25f);
  conv_block(128);
  conv_block(128);
  add<MaxPool2D>(m, 2);
  add<Dropout>(m, 0.25f);
}

Model smallervggnet(const ArchOptions& o) {
  Model m(o.input.rank() ? o.input : Shape{96, 96, 3});
  smallervggnet_features(m);
  add<Flatten>(m);
  add<Dense>(m, 1024);
  add<ReLU>(m);
  add<BatchNorm>(m);
  add<Dropout>(m, o.dropout < 0 ? 0.5f : o.dropout);
  add_head(m, o);
  return m;
}

// SmallerVGGNet's conv blocks under a global-average-pooling head: the Flatten -> Dense 1024
// classifier holds 97% of SmallerVGGNet's 8.7M parameters, which is what a web page must
// download; averaging the last block's 128 channels leaves about 0.3M parameters.
Model smallervggnet_gap(const ArchOptions& o) {
  Model m(o.input.rank() ? o.input : Shape{96, 96, 3});
  smallervggnet_features(m);
  add<GlobalAvgPool2D>(m);
  add<Dense>(m, 256);
  add<ReLU>(m);
  add<BatchNorm>(m);
  add<Dropout>(m, o.dropout < 0 ? 0.5f : o.dropout);
  add_head(m, o);
  return m;
}

// The web page's network: the classifier sits right on the averaged channels of the last
// block. New labels are then taught on features the convolutions learnt, which carry over to
// garments and objects the network was not trained to name better than a hidden Dense layer
// fitted to its own labels (sandal vs bag from 15 pictures each: 94% against 88%).
Model smallervggnet_gap_linear(const ArchOptions& o) {
  Model m(o.input.rank() ? o.input : Shape{96, 96, 3});
  smallervggnet_features(m);
  add<GlobalAvgPool2D>(m);
  add<Dropout>(m, o.dropout < 0 ? 0.5f : o.dropout);
  add_head(m, o);
  return m;
}

Model catsdogs(const ArchOptions& o) {
  Model m(o.input.rank() ? o.input : Shape{150, 150, 3});
  for (int filters : {16, 32, 64}) {
    add<Conv2D>(m, filters, 3, 1, Padding::kSame, Activation::kRelu);
    add<MaxPool2D>(m, 2);
  }
  // The tutorial's overfitting fix puts Dropout(0.2) after the last block.
  if (o.dropout > 0) add<Dropout>(m, o.dropout);
  add<Flatten>(m);
  add<Dense>(m, 512, Activation::kRelu);
  add_head(m, o);
  return m;
}

}  // namespace

Model make_architecture(const std::string& name, const ArchOptions& o) {
  if (o.head != Head::kLogit && o.outputs < 1)
    throw std::invalid_argument("an architecture needs at least one output");
  Model m = name == "fashionnet"          ? fashionnet(o)
            : name == "smallervggnet"     ? smallervggnet(o)
            : name == "smallervggnet-gap" ? smallervggnet_gap(o)
            : name == "smallervggnet-gap-linear" ? smallervggnet_gap_linear(o)
            : name == "catsdogs"          ? catsdogs(o)
                                          : throw std::invalid_argument(
                                                "unknown architecture '" + name +
                                                "' (known: fashionnet, smallervggnet, smallervggnet-gap, "
                                                "smallervggnet-gap-linear, catsdogs)");
  m.card().architecture = name;
  m.card().head = o.head;
  return m;
}

Shape default_input_shape(const std::string& name) {
  if (name == "fashionnet") return {56, 56, 1};
  if (name == "smallervggnet" || name == "smallervggnet-gap" || name == "smallervggnet-gap-linear") return {96, 96, 3};
  if (name == "catsdogs") return {150, 150, 3};
  throw std::invalid_argument("unknown architecture '" + name + "'");
}

Head model_head(const Model& m) {
  switch (m.layer(m.num_layers() - 1).kind()) {
    case LayerKind::kSoftmax: return Head::kSoftmax;
    case LayerKind::kSigmoid: return Head::kSigmoid;
    default: return Head::kLogit;
  }
}

LossKind loss_for(Head h) {
  switch (h) {
    case Head::kSoftmax: return LossKind::kCategoricalCrossentropy;
    case Head::kSigmoid: return LossKind::kBinaryCrossentropy;
    case Head::kLogit: return LossKind::kBinaryCrossentropyFromLogits;
  }
  return LossKind::kCategoricalCrossentropy;
}


}  // namespace tagnet
