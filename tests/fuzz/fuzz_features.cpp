// The feature file reader, tagnet::FeatureSet::load_bytes: every input either loads into a
// consistent feature set that can be saved and read back, or is refused with a one-line
// FeatureFileError naming the file.
#include "tagnet/train/features.h"

#include "container_input.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tagnet;
  constexpr char kMagic[8] = {'T', 'A', 'G', 'F', 'E', 'A', 'T', '\0'};
  const std::vector<uint8_t> file = fuzz::container_input(data, size, kMagic);
  const std::string origin = "fuzz.features";
  try {
    const FeatureSet s = FeatureSet::load_bytes(file.data(), file.size(), origin);
    fuzz::expect(s.size() > 0 && s.outputs() > 0, "a loaded feature set has examples and outputs");
    fuzz::expect(s.features.shape() == s.feature_shape.batched(static_cast<int>(s.size())),
                 "features are (N, ...feature_shape)");
    fuzz::expect(s.targets.rank() == 2 && static_cast<size_t>(s.targets.dim(0)) == s.size(),
                 "targets are (N, F)");
    const FeatureSet last = s.subset({s.size() - 1});
    const std::vector<uint8_t> again = last.save_bytes();
    FeatureSet::load_bytes(again.data(), again.size(), "saved again");
  } catch (const FeatureFileError& e) {
    fuzz::expect_one_line_error(e.what(), origin);
  }
  return 0;
}
