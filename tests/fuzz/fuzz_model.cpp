// The model file reader, tagnet::Model::load_bytes: every input either loads into a model that
// can be saved and read back, or is refused with a one-line ModelFileError naming the file.
#include "tagnet/nn/architectures.h"
#include "tagnet/nn/model.h"

#include "container_input.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tagnet;
  constexpr char kMagic[8] = {'T', 'A', 'G', 'N', 'E', 'T', '\0', '\0'};
  const std::vector<uint8_t> file = fuzz::container_input(data, size, kMagic);
  const std::string origin = "fuzz.tagnet";
  std::unique_ptr<Optimizer> opt;
  try {
    Model m = Model::load_bytes(file.data(), file.size(), origin, &opt);
    fuzz::expect(m.built() && m.num_layers() > 0, "a loaded model is built and has layers");
    // What `tagnet classify` and the module rely on: no more label names than probabilities.
    const size_t outputs = m.output_shape().numel();
    const size_t labels = m.card().labels.size();
    fuzz::expect(labels <= outputs || (model_head(m) == Head::kLogit && labels == 2),
                 "no more label names than probabilities");
    const std::vector<uint8_t> again = m.save_bytes(opt.get());
    Model::load_bytes(again.data(), again.size(), "saved again", nullptr);
  } catch (const ModelFileError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
  }
  return 0;
}
