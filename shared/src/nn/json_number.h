// Integers from the JSON header of a file, checked before use: nlohmann's get<int>() of
// 4.55556e+21 is undefined behaviour and of 4294967301 quietly 5, and a negative size turns
// into an enormous one. Every size or count a reader takes from a file goes through these.
//
//   const int units = json_integer(c.at("units"), "Dense units", 1, 1 << 20);
//   const std::vector<int> dims = json_dims(h.at("feature_shape"), "feature_shape", 3, 1 << 20);
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace tagnet {

// `j` as an integer in [lo, hi] (both within +-2^53, where doubles are exact); a number
// written with a fraction part or exponent counts when its value is a whole number. Throws
// std::invalid_argument naming `what`, the range and what was found.
inline int64_t json_integer(const nlohmann::json& j, const std::string& what, int64_t lo, int64_t hi) {
  bool ok = false;
  int64_t v = 0;
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    ok = u <= uint64_t(INT64_MAX) && int64_t(u) >= lo && int64_t(u) <= hi;
    v = ok ? int64_t(u) : 0;
  } else if (j.is_number_integer()) {
    v = j.get<int64_t>();
    ok = v >= lo && v <= hi;
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    ok = std::isfinite(d) && d == std::floor(d) && d >= double(lo) && d <= double(hi);
    v = ok ? static_cast<int64_t>(d) : 0;
  }
  if (!ok) {
    std::string found = j.dump();
    if (found.size() > 40) found = found.substr(0, 37) + "...";
    throw std::invalid_argument(what + " must be an integer in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], found " + found);
  }
  return v;
}

// json_integer of key `key` of object `j`, or `fallback` when there is no such key.
inline int64_t json_integer_or(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& what,
                               int64_t lo, int64_t hi) {
  const auto it = j.find(key);
  return it == j.end() ? fallback : json_integer(*it, what, lo, hi);
}

// A shape: an array of 1 to max_rank integers, each in [1, max_dim].
inline std::vector<int> json_dims(const nlohmann::json& j, const std::string& what, size_t max_rank, int max_dim) {
  if (!j.is_array() || j.empty() || j.size() > max_rank)
    throw std::invalid_argument(what + " must be a list of 1 to " + std::to_string(max_rank) + " sizes");
  std::vector<int> dims;
  for (const auto& d : j) dims.push_back(static_cast<int>(json_integer(d, what + " sizes", 1, max_dim)));
  return dims;
}

}  // namespace tagnet
