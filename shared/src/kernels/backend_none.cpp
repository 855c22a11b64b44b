#include "kernels.h"

#ifndef TAGNET_USE_XNNPACK
namespace tagnet::kern {
const Backend* backend_xnnpack() { return nullptr; }
}  // namespace tagnet::kern
#endif
