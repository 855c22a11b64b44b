// What every fuzz target asks of a refusal: one line that starts with the name of the input.
// Anything else (another exception type, a crash, a sanitizer report) is a finding.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tagnet::fuzz {

inline void expect_one_line_error(const char* message, const std::string& origin) {
  const std::string m = message;
  if (m.compare(0, origin.size() + 2, origin + ": ") != 0 || m.find('\n') != std::string::npos ||
      m.size() > 4096) {
    std::fprintf(stderr, "error message is not one line naming '%s': %s\n", origin.c_str(), message);
    std::abort();
  }
}

inline void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace tagnet::fuzz
