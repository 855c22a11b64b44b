// `tagnet export`: a tagnet model as an ONNX graph for other runtimes.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.h"
#include "tagnet/io/onnx.h"

namespace tagnet::native {

namespace {

struct ExportArgs {
  std::string model, onnx;
  int opset = 13;
};

int export_command(const ExportArgs& a) {
  require_writable(a.onnx);
  const Model m = Model::load(a.model);
  export_onnx_file(m, a.onnx, a.opset);
  const Shape& in = m.input_shape();
  std::printf("exported %s as ONNX opset %d: input 'input' (N, %d, %d, %d) NCHW, output 'output' (N, %zu); saved %s\n",
              a.model.c_str(), a.opset, in[2], in[0], in[1], m.output_shape().numel(), a.onnx.c_str());
  return 0;
}

}  // namespace

Command add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* c = app.add_subcommand("export", "Write a tagnet model as an ONNX graph (dynamic batch, labels in the metadata)");
  c->add_option("--model", a->model, "Model file")->required();
  c->add_option("--onnx", a->onnx, "Where to write the ONNX file")->required();
  c->add_option("--opset", a->opset, "ONNX opset, 13 to 17")->capture_default_str();
  return {c, [a] { return export_command(*a); }};
}

}  // namespace tagnet::native
