// ONNX in and out: networks trained elsewhere (PyTorch, Keras through tf2onnx) become tagnet
// models, and tagnet models become ONNX graphs other runtimes run.
//
//   tagnet::OnnxImportOptions o;
//   o.labels = {"red", "blue", "dress"};
//   tagnet::Model m = tagnet::import_onnx_file("net.onnx", o);   // trains like any tagnet model
//   m.save("net.tagnet");
//   tagnet::export_onnx_file(m, "again.onnx");                   // opset 13, dynamic batch
//
// Import reads a sequential graph of the ops listed in docs/onnx.md, NCHW or NHWC, and converts
// the layout once: convolution weights OIHW -> OHWI, and the rows of the first Dense after a
// Flatten of an NCHW tensor permuted from PyTorch's (C, H, W) order to tagnet's (H, W, C). Every
// failure, a node tagnet cannot map included, is an OnnxError naming the file (or "model bytes")
// and the problem in one line. Export writes an NCHW graph (input "input", (N, C, H, W) with a
// symbolic N; output "output"), the labels, head and preprocessing in the metadata.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tagnet/nn/model.h"

namespace tagnet {

class OnnxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OnnxImportOptions {
  std::vector<std::string> labels;   // empty: the labels in the file's metadata, if any
  int input_size = 0;                // H = W when the graph's input leaves them open; 0: from the graph
  bool fold_batchnorm = false;       // fold a BatchNormalization right after a Conv into it (inference only)
  std::string head;                  // "softmax" or "sigmoid": appended to a graph that ends in raw scores
};

Model import_onnx(const uint8_t* data, size_t size, const std::string& origin, const OnnxImportOptions& options);
Model import_onnx_file(const std::string& path, const OnnxImportOptions& options);

// opset 13 to 17; throws OnnxError for others or for a model that is not built.
std::vector<uint8_t> export_onnx(const Model& model, int opset = 13);
// Atomic, like Model::save: a temporary file renamed into place.
void export_onnx_file(const Model& model, const std::string& path, int opset = 13);

}  // namespace tagnet
