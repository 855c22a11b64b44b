// What the core's binary files (models, feature caches, pictures) share: their checksum,
// little-endian integers, and writing beside the target then renaming, so that a reader never
// sees a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tagnet {

// CRC-32 (IEEE 802.3, as zlib's crc32). Written here because the WASM build has no zlib.
uint32_t crc32(const uint8_t* p, size_t n);

inline size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

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

// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it into
// place. Throws std::runtime_error naming `path` and the reason; leaves no temporary behind.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The whole file. Returns false with the reason (e.g. "cannot open (No such file or
// directory)") in `error`.
bool read_file(const std::string& path, std::vector<uint8_t>& bytes, std::string& error);

}  // namespace tagnet
