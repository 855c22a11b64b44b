// Sizes rounded up to an alignment: tensors in the parameter arena, tensors in files.
#pragma once

#include <cstddef>

namespace tagnet {

inline size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace tagnet
