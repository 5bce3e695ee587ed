// Numerically stable softmax over one row.
#pragma once

#include <cstdint>

namespace pybert::kernels {

// x (n) <- softmax(scale * x)
void softmax(float* x, int64_t n, float scale);

}  // namespace pybert::kernels
