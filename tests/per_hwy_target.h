// Suites whose tests run once per instruction set the `hwy` kernels are built for and this
// CPU runs (kern::hwy_targets()): on an AVX-512 machine AVX3, AVX2, SSE4 and SCALAR.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "kernels.h"

namespace tagnet {
namespace kern {

// The table of the target the current test runs on, for helpers outside the fixture.
inline const Backend* test_hwy = nullptr;

class PerHwyTarget : public ::testing::TestWithParam<HwyTarget> {
 protected:
  void SetUp() override { test_hwy = GetParam().backend; }
  void TearDown() override { test_hwy = nullptr; }
  const Backend* hwy() const { return GetParam().backend; }
};

inline void PrintTo(const HwyTarget& t, std::ostream* os) { *os << t.name; }

inline std::string HwyTargetName(const ::testing::TestParamInfo<HwyTarget>& info) {
  return info.param.name;
}

// The test name of a backend table: its name, and for a hwy table its target (hwy_AVX2).
inline std::string BackendLabel(const Backend* be) {
  for (const HwyTarget& t : hwy_targets()) {
    if (t.backend == be) return std::string("hwy_") + t.name;
  }
  return be->name;
}

}  // namespace kern
}  // namespace tagnet

#define TAGNET_PER_HWY_TARGET(Suite)                                                    \
  INSTANTIATE_TEST_SUITE_P(Hwy, Suite, ::testing::ValuesIn(::tagnet::kern::hwy_targets()), \
                           ::tagnet::kern::HwyTargetName)
