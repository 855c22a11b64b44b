// Damaged model and feature files for the readers' tests: the JSON header of a container
// (file_io.h) rewritten and the file sealed again with correct lengths and checksums, so the
// reader gets past them to the header's numbers.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "file_io.h"

namespace tagnet {

// The file with its header replaced by `json` (text, so it may be any JSON at all).
inline std::vector<uint8_t> with_header_text(const std::vector<uint8_t>& file, const std::string& json) {
  const size_t json_bytes = get_le<uint64_t>(file.data() + 16);
  const size_t data_start = round_up(kContainerHeader + json_bytes, kContainerAlign);
  size_t start = 0;
  std::vector<uint8_t> out = container_begin(reinterpret_cast<const char*>(file.data()), json,
                                             file.size() - data_start, start);
  std::copy(file.begin() + data_start, file.end(), out.begin() + start);
  container_seal(out, get_le<uint32_t>(file.data() + 8), json.size(), start);
  return out;
}

inline nlohmann::json header_of(const std::vector<uint8_t>& file) {
  const auto* json = reinterpret_cast<const char*>(file.data() + kContainerHeader);
  return nlohmann::json::parse(json, json + get_le<uint64_t>(file.data() + 16));
}

// The file with its header changed by `edit`.
inline std::vector<uint8_t> with_header(const std::vector<uint8_t>& file,
                                        const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json h = header_of(file);
  edit(h);
  return with_header_text(file, h.dump());
}

// `levels` arrays, one inside the other.
inline std::string nested_arrays(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

}  // namespace tagnet
