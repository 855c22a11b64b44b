// `tagnet import`: an ONNX network (PyTorch, Keras through tf2onnx) as a tagnet model file.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.h"
#include "tagnet/io/onnx.h"

namespace tagnet::native {

namespace {

struct ImportArgs {
  std::string onnx, out, labels, head;
  int input_size = 0;
  bool fold_batchnorm = false;
};

int import_command(const ImportArgs& a) {
  require_writable(a.out);
  OnnxImportOptions o;
  o.labels = split_list(a.labels);
  o.input_size = a.input_size;
  o.fold_batchnorm = a.fold_batchnorm;
  o.head = a.head;
  Model m = import_onnx_file(a.onnx, o);
  m.save(a.out);
  std::printf("%s", m.summary().c_str());
  const auto& labels = m.card().labels;
  std::printf("imported %s (%zu layers, %s head%s); saved %s\n", a.onnx.c_str(), m.num_layers(),
              head_name(model_head(m)).c_str(),
              labels.empty() ? ", no label names: give --labels to classify with it" : "", a.out.c_str());
  return 0;
}

}  // namespace

Command add_import(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  auto* c = app.add_subcommand("import", "Read an ONNX network into a tagnet model (ops: docs/onnx.md)");
  c->add_option("onnx", a->onnx, "ONNX file")->required();
  c->add_option("--out", a->out, "Where to write the tagnet model")->required();
  c->add_option("--labels", a->labels, "Label names, comma-separated, one per output (default: the file's metadata)");
  c->add_option("--input-size", a->input_size, "Height and width, when the graph leaves them open");
  c->add_option("--head", a->head, "softmax or sigmoid: add it to a graph that ends in raw scores");
  c->add_flag("--fold-batchnorm", a->fold_batchnorm,
              "Fold each BatchNormalization right after a Conv into the Conv (for inference; it then no longer learns "
              "batch statistics)");
  return {c, [a] { return import_command(*a); }};
}

}  // namespace tagnet::native
