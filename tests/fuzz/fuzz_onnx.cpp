// The ONNX reader, tagnet::import_onnx: every input either imports into a model that exports
// and imports again (or that export refuses in one line), or is refused with a one-line
// OnnxError naming the file.
#include <memory>

#include "tagnet/io/onnx.h"

#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tagnet;
  const std::string origin = "fuzz.onnx";
  std::unique_ptr<Model> m;
  try {
    m = std::make_unique<Model>(import_onnx(data, size, origin, {}));
    fuzz::expect(m->built() && m->num_layers() > 0, "an imported model is built and has layers");
  } catch (const OnnxError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
    return 0;
  }
  // Export may refuse a model it cannot write (one whose head follows a Flatten, say), in one line.
  try {
    const std::vector<uint8_t> again = export_onnx(*m);
    Model back = import_onnx(again.data(), again.size(), "exported again", {});
    fuzz::expect(back.param_count() == m->param_count(), "export and import keep every parameter");
  } catch (const OnnxError& e) {
    fuzz::expect(std::string(e.what()).find('\n') == std::string::npos, "export errors are one line");
  }
  return 0;
}
