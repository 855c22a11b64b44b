// What `tagnet serve` answers for a request, as pure functions of the request's text and the
// served folder: which file (if any), its content type, and which bytes of it. The server
// calls them for every request; nothing here touches a socket, so each can be tested and
// fuzzed alone.
//
//   const auto path = decode_request_target("/models/m.tagnet?v=2");   // "/models/m.tagnet"
//   const auto file = resolve_request_path("web/dist", *path);          // canonical path inside
//   mime_type(*file);                                                   // "application/octet-stream"
//   byte_range("bytes=0-99", fs::file_size(*file));                     // {Part, 0, 99}
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace tagnet::native {

// The path of a request target ("/a/b.js?x=1"), percent-decoded once; nothing when the target
// is not an absolute path, has a broken escape, or encodes a separator or NUL (%2f, %5c, %00),
// which no page of ours needs and which only serve to smuggle "../" past a check.
std::optional<std::string> decode_request_target(std::string_view target);

// The regular file under `root` that a decoded path names ("/" and "/dir/" name index.html), as
// its canonical path; nothing when the path is not absolute, holds a NUL or a backslash, has an
// empty, "." or ".." segment, does not exist, is not a regular file, or leads (through a
// symbolic link) out of `root`. Symbolic links that stay inside `root` are followed.
std::optional<std::filesystem::path> resolve_request_path(const std::filesystem::path& root,
                                                          const std::string& decoded_path);

// The Content-Type for a file, from its extension (any case); application/octet-stream when
// the extension is unknown (the server also sends nosniff, so a browser does not guess).
std::string_view mime_type(const std::filesystem::path& file);

// The bytes of a `size`-byte file that a Range header asks for. One range at most: a header
// with several (the 500-range trick that multiplies a response) or one we do not read gets the
// whole file once, which RFC 9110 allows a server to do with any Range header.
struct ByteRange {
  enum Kind { Whole, Part, Unsatisfiable } kind = Whole;
  uint64_t first = 0, last = 0;   // inclusive, for Part
};
ByteRange byte_range(std::string_view header, uint64_t size);

}  // namespace tagnet::native
