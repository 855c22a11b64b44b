// What the core's binary files (models, feature caches, pictures) share: their checksum,
// little-endian integers, and writing beside the target then renaming, so that a reader never
// sees a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "round_up.h"

namespace tagnet {

// CRC-32 (IEEE 802.3, as zlib's crc32). Written here because the WASM build has no zlib.
uint32_t crc32(const uint8_t* p, size_t n);

template <typename T>
void put_le(std::vector<uint8_t>& out, size_t at, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[at + i] = static_cast<uint8_t>(uint64_t(v) >> (8 * i));
}

template <typename T>
T get_le(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t(p[i]) << (8 * i);
  return static_cast<T>(v);
}

// The container model files and feature files share (little-endian): 8-byte magic, u32 version,
// u32 CRC-32 of the JSON header, u64 header bytes, u64 data bytes, u32 CRC-32 of the data, u32
// zero; then the JSON header, zero padding to a multiple of 32 bytes, and the data section.
constexpr size_t kContainerHeader = 40;
constexpr size_t kContainerAlign = 32;

// A zeroed container with its magic and JSON header in place, room for `data_bytes`; the data
// section starts at the returned offset. Seal it once the data is written.
std::vector<uint8_t> container_begin(const char magic[8], const std::string& json, size_t data_bytes,
                                     size_t& data_start);
void container_seal(std::vector<uint8_t>& out, uint32_t version, size_t json_bytes, size_t data_start);

struct ContainerView {
  const uint8_t* json;
  size_t json_bytes;
  const uint8_t* data;   // 32-byte aligned within the file
  size_t data_bytes;
};

// Checks everything after the magic (which the caller checks, to name what the file is):
// version, sizes, zero fields and padding, both checksums. Returns the problem ("" when none)
// in the words of `file_kind` ("model file") and `data_kind` ("tensor data").
std::string container_check(const uint8_t* bytes, size_t size, uint32_t version, const char* file_kind,
                            const char* data_kind, ContainerView& view);

// The JSON header of a checked container, parsed with at most kMaxJsonDepth levels of nesting:
// copying or printing JSON recurses once per level, so a header nested 200,000 deep would
// overflow the stack after it had parsed. Returns the problem ("" when none); JSON that does not
// parse throws nlohmann's parse_error.
constexpr int kMaxJsonDepth = 64;
std::string container_json(const ContainerView& view, nlohmann::json& header);

// A reader's error message as one line of bounded length: the parts a message quotes from the
// file (a name, nlohmann's "last read" of a parse error) can hold line breaks and run to megabytes.
// Control characters become '?', and more than kMaxErrorBytes bytes end in "...".
constexpr size_t kMaxErrorBytes = 512;
std::string one_line(const std::string& message);

// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it into
// place. Throws std::runtime_error naming `path` and the reason; leaves no temporary behind.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The whole file. Returns false with the reason (e.g. "cannot open (No such file or
// directory)") in `error`.
bool read_file(const std::string& path, std::vector<uint8_t>& bytes, std::string& error);

}  // namespace tagnet
