// Pooling of one sequence's token vectors into one vector, reading only its real tokens.
#pragma once

#include <cstdint>
#include <string>

namespace pybert::kernels {

enum class PoolMode {
  kCls,           // the first real token
  kMean,          // sum of real tokens / their count
  kMax,           // element-wise max over real tokens
  kMeanSqrtLen,   // sum of real tokens / sqrt(their count)
  kWeightedMean,  // sum_t w_t x_t / sum_t w_t, w_t = 1 + (position_t - position_0)
  kLastToken,     // the last real token
};

// "cls", "mean", "max", "mean_sqrt_len", "weightedmean", "lasttoken" -> PoolMode; throws
// std::invalid_argument naming the choices otherwise.
PoolMode pool_mode_from_name(const std::string& name);

// One sequence's n real tokens -> out (hidden).
//   token t's vector: x + (row ? row[t] : t) * hidden   (padded rows, or packed back to back)
//   position (n):     token t's place in its padded sequence plus any constant, ascending; only
//                     differences are read (weights, and the prompt left out)
//   skip:             tokens with position_t - position_0 < skip are left out (a prompt that
//                     pooling excludes); weights keep their places, as sentence-transformers does
// Nothing left (n == 0, or every token skipped) pools to zeros, except kCls, which then takes the
// first real token (sentence-transformers' argmax over an all-zero mask), zeros when n == 0.
void pool_tokens(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                 int64_t hidden, PoolMode mode, int64_t skip, float* out);

// x (n) <- x / max(||x||_2, eps), as torch.nn.functional.normalize.
void l2_normalize(float* x, int64_t n, float eps);

}  // namespace pybert::kernels
