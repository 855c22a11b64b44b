// Fuzz inputs for the container that model and feature files share (file_io.h). A random
// mutation almost never keeps the CRC-32s right, so the reader would refuse nearly everything
// at the checksum; an input is made into a file the way a writer would have made it:
//   - starting with the magic: the container as is, with both checksums recomputed wherever the
//     declared lengths make that possible, so lengths, padding and reserved fields stay fuzzed;
//   - anything else: JSON header text, then optionally a 0 byte and the data section, sealed
//     into a container with correct lengths, padding and checksums.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "file_io.h"

namespace tagnet::fuzz {

inline std::vector<uint8_t> container_input(const uint8_t* data, size_t size, const char magic[8]) {
  if (size >= kContainerHeader && std::memcmp(data, magic, 8) == 0) {
    std::vector<uint8_t> out(data, data + size);
    const uint64_t json_bytes = get_le<uint64_t>(data + 16), data_bytes = get_le<uint64_t>(data + 24);
    if (json_bytes <= size - kContainerHeader) {
      put_le<uint32_t>(out, 12, crc32(out.data() + kContainerHeader, json_bytes));
      const size_t data_start = round_up(kContainerHeader + json_bytes, kContainerAlign);
      if (data_start <= size && data_bytes <= size - data_start)
        put_le<uint32_t>(out, 32, crc32(out.data() + data_start, data_bytes));
    }
    return out;
  }
  const auto* end = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t json_bytes = end ? size_t(end - data) : size;
  const size_t data_bytes = end ? size - json_bytes - 1 : 0;
  size_t data_start = 0;
  std::vector<uint8_t> out =
      container_begin(magic, std::string(reinterpret_cast<const char*>(data), json_bytes), data_bytes, data_start);
  if (data_bytes) std::memcpy(out.data() + data_start, end + 1, data_bytes);
  container_seal(out, 1, json_bytes, data_start);
  return out;
}

}  // namespace tagnet::fuzz
