// Row kernels for heads: sigmoid, argmax and top-k over one row of scores.
#pragma once

#include <cstdint>

namespace pybert::kernels {

// x (n) <- 1 / (1 + exp(-x))
void sigmoid(float* x, int64_t n);

// x (n) -> index of the largest value (the first on ties; a NaN counts as largest, as in torch)
int64_t argmax(const float* x, int64_t n);

// x (n) -> the k largest values in descending order, ties by lower index: index (k), value (k)
void top_k(const float* x, int64_t n, int64_t k, int64_t* index, float* value);

}  // namespace pybert::kernels
