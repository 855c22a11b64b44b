#include "file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#define TAGNET_GETPID _getpid
#define TAGNET_FSYNC(fd) _commit(fd)
#define TAGNET_FILENO _fileno
#else
#include <signal.h>
#include <unistd.h>
#define TAGNET_GETPID getpid
#define TAGNET_FSYNC(fd) fsync(fd)
#define TAGNET_FILENO fileno
#endif

namespace tagnet {

uint32_t crc32(const uint8_t* p, size_t n) {
  static uint32_t table[256];
  static const bool ready = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)ready;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> container_begin(const char magic[8], const std::string& json, size_t data_bytes,
                                     size_t& data_start) {
  data_start = round_up(kContainerHeader + json.size(), kContainerAlign);
  std::vector<uint8_t> out(data_start + data_bytes, 0);
  std::memcpy(out.data(), magic, 8);
  std::memcpy(out.data() + kContainerHeader, json.data(), json.size());
  return out;
}

void container_seal(std::vector<uint8_t>& out, uint32_t version, size_t json_bytes, size_t data_start) {
  const size_t data_bytes = out.size() - data_start;
  put_le<uint32_t>(out, 8, version);
  put_le<uint32_t>(out, 12, crc32(out.data() + kContainerHeader, json_bytes));
  put_le<uint64_t>(out, 16, json_bytes);
  put_le<uint64_t>(out, 24, data_bytes);
  put_le<uint32_t>(out, 32, crc32(out.data() + data_start, data_bytes));
  put_le<uint32_t>(out, 36, 0);
}

std::string container_check(const uint8_t* data, size_t size, uint32_t expected_version, const char* file_kind,
                            const char* data_kind, ContainerView& view) {
  constexpr uint64_t kMaxJson = 64ull << 20;
  const uint32_t version = get_le<uint32_t>(data + 8);
  if (version != expected_version)
    return std::string("unsupported ") + file_kind + " version " + std::to_string(version) +
           " (this tagnet reads version " + std::to_string(expected_version) + ")";
  const uint64_t json_bytes = get_le<uint64_t>(data + 16);
  const uint64_t data_bytes = get_le<uint64_t>(data + 24);
  if (json_bytes == 0 || json_bytes > kMaxJson || kContainerHeader + json_bytes > size)
    return "truncated or corrupt header (header length " + std::to_string(json_bytes) + ", file " +
           std::to_string(size) + " bytes)";
  const size_t data_start = round_up(kContainerHeader + json_bytes, kContainerAlign);
  if (data_start > size || data_bytes != size - data_start)
    return "truncated or corrupt file: expected " + std::to_string(data_start) + " + " +
           std::to_string(data_bytes) + " bytes, found " + std::to_string(size);
  if (get_le<uint32_t>(data + 36) != 0) return "corrupt header (reserved field is not zero)";
  for (size_t i = kContainerHeader + json_bytes; i < data_start; ++i)
    if (data[i] != 0) return "corrupt header (padding is not zero)";
  const uint8_t* jp = data + kContainerHeader;
  if (crc32(jp, json_bytes) != get_le<uint32_t>(data + 12)) return "corrupt header (checksum mismatch)";
  if (crc32(data + data_start, data_bytes) != get_le<uint32_t>(data + 32))
    return std::string("corrupt ") + data_kind + " (checksum mismatch)";
  view = ContainerView{jp, static_cast<size_t>(json_bytes), data + data_start, static_cast<size_t>(data_bytes)};
  return "";
}

std::string container_json(const ContainerView& view, nlohmann::json& header) {
  // The nesting is measured on the text first: nlohmann's parser recurses per level, and its
  // callback parser, which could stop it, is quadratic in the length of an array.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < view.json_bytes; ++i) {
    const char c = view.json[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  header = nlohmann::json::parse(view.json, view.json + view.json_bytes);
  return "";
}

std::string one_line(const std::string& message) {
  std::string out = message;
  if (out.size() > kMaxErrorBytes) {
    size_t cut = kMaxErrorBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    out = out.substr(0, cut) + "...";
  }
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return out;
}

// A process killed while saving leaves its temporary file behind; the next save removes it.
static void remove_stale_temporaries(const std::string& path) {
#if !defined(_WIN32)
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp-";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
#else
  (void)path;
#endif
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  remove_stale_temporaries(path);
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long>(TAGNET_GETPID()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
            TAGNET_FSYNC(TAGNET_FILENO(f)) == 0;
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": write failed (" + std::strerror(err) + ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename into place (" + std::strerror(err) + ")");
  }
}

bool read_file(const std::string& path, std::vector<uint8_t>& bytes, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = std::string("cannot open (") + std::strerror(errno) + ")";
    return false;
  }
  bytes.clear();
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    error = std::string("cannot read (") + std::strerror(err) + ")";  // e.g. a directory
    return false;
  }
  return true;
}

}  // namespace tagnet
