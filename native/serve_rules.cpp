#include "serve_rules.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace fs = std::filesystem;

namespace tagnet::native {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A run of decimal digits as a number; nothing when empty, not all digits, or above 2^53 (no
// file we serve is that large, and it keeps the arithmetic below far from overflow).
std::optional<uint64_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> decode_request_target(std::string_view target) {
  target = target.substr(0, target.find('?'));
  if (target.empty() || target.front() != '/') return std::nullopt;
  std::string out;
  out.reserve(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      out += target[i];
      continue;
    }
    const int hi = i + 2 < target.size() ? hex_value(target[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(target[i + 2]) : -1;
    if (lo < 0) return std::nullopt;
    const char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0' || c == '/' || c == '\\') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

std::optional<fs::path> resolve_request_path(const fs::path& root, const std::string& decoded_path) {
  if (decoded_path.empty() || decoded_path.front() != '/') return std::nullopt;
  if (decoded_path.find_first_of(std::string_view("\0\\", 2)) != std::string::npos) return std::nullopt;
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  fs::path p = base;
  size_t start = 1;
  for (;;) {
    const size_t slash = decoded_path.find('/', start);
    const std::string_view seg = std::string_view(decoded_path).substr(start, slash - start);
    if (slash == std::string::npos && seg.empty()) {   // a folder: its index page
      p /= "index.html";
      break;
    }
    if (seg.empty() || seg == "." || seg == "..") return std::nullopt;
    p /= seg;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  // The real file, with every link resolved, must still lie below the folder: a link inside
  // that points out (to /etc, to a home folder) is refused like "..".
  const fs::path real = fs::canonical(p, ec);
  if (ec || !fs::is_regular_file(real, ec)) return std::nullopt;
  const auto [b, r] = std::mismatch(base.begin(), base.end(), real.begin(), real.end());
  if (b != base.end() || r == real.end()) return std::nullopt;
  return real;
}

std::string_view mime_type(const fs::path& file) {
  // The page's files (Vite's output, the wasm builds, models, pictures) and a few common
  // neighbours; charset on text so a browser never guesses one.
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".wasm", "application/wasm"},
      {".tagnet", "application/octet-stream"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& [e, type] : kTypes)
    if (e == ext) return type;
  return "application/octet-stream";
}

ByteRange byte_range(std::string_view header, uint64_t size) {
  constexpr std::string_view unit = "bytes=";
  if (header.substr(0, unit.size()) != unit) return {};
  const std::string_view spec = trim(header.substr(unit.size()));
  const size_t dash = spec.find('-');
  if (spec.find(',') != std::string_view::npos || dash == std::string_view::npos) return {};
  const std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
  if (a.empty()) {   // "-N": the last N bytes
    const auto n = parse_count(b);
    if (!n) return {};
    if (*n == 0 || size == 0) return {ByteRange::Unsatisfiable};
    return {ByteRange::Part, size - std::min(*n, size), size - 1};
  }
  const auto first = parse_count(a);
  const auto last = b.empty() ? std::optional<uint64_t>(UINT64_MAX) : parse_count(b);
  if (!first || !last || *last < *first) return {};
  if (*first >= size) return {ByteRange::Unsatisfiable};
  return {ByteRange::Part, *first, std::min(*last, size - 1)};
}

}  // namespace tagnet::native
