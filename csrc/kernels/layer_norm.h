// Row-wise LayerNorm, optionally fused with the residual add before it.
#pragma once

#include <cstdint>

namespace pybert::kernels {

// y[r] = (x[r] + residual[r] - mean) / sqrt(var + eps) * gamma + beta for each of `rows` rows
// of `cols` floats (contiguous). residual may be null; y may alias x.
// Biased variance, as torch.nn.functional.layer_norm.
void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps);

}  // namespace pybert::kernels
