// Pooling of one sequence's token vectors into one vector, reading only its real tokens.
#pragma once

#include <cstdint>
#include <string>

namespace pybert::kernels {

enum class PoolMode {
  kCls,          // the first real token
  kMean,         // sum of real tokens / their count
  kMax,          // element-wise max over real tokens
  kMeanSqrtLen,  // sum of real tokens / sqrt(their count)
};

// "cls", "mean", "max", "mean_sqrt_len" -> PoolMode; throws std::invalid_argument otherwise.
PoolMode pool_mode_from_name(const std::string& name);

// x (seq, hidden), mask (seq; nonzero = real token) -> out (hidden).
// A sequence without real tokens pools to zeros in every mode.
void pool(const float* x, const int64_t* mask, int64_t seq, int64_t hidden, PoolMode mode,
          float* out);

// x (n) <- x / max(||x||_2, eps), as torch.nn.functional.normalize.
void l2_normalize(float* x, int64_t n, float eps);

}  // namespace pybert::kernels
