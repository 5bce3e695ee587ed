// Row kernels whose rounding depends on the row's length alone, never on its address.
//
// Eigen vectorizes from the first aligned element of an unaligned row: the elements before it
// take the scalar path (std::exp, a scalar sum) and the rest the packet path (its own exp,
// lane-wise partial sums), whose results differ in the last bits. So the same call on a row that
// happens to lie elsewhere (a numpy output array, say) could give other bits. Here:
//
// Sums: lane j of 16 accumulates
// x[i] for i = j (mod 16) in increasing i, and the 16 lanes are added pairwise:
//   sum(x) = ((l0 + l8) + (l4 + l12)) + ... (a fixed tree), l_j = sum_{i = j mod 16} x[i].
// The compiler vectorizes the lane loop (it is 16 independent sums, no reassociation).
//
// Include from eigen/ only: these inline functions are instantiated with the Eigen family's
// flags (the generic family's scalar loops are address-independent as they are).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace pybert::kernels {

template <typename Term>
inline float sum_fixed_order(int64_t n, const Term& term) {
  constexpr int kLanes = 16;
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += term(i + j);
  for (int j = 0; i < n; ++i, ++j) lane[j] += term(i);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) lane[j] += lane[j + width];
  return lane[0];
}

// sum_i x[i]
inline float sum_fixed_order(const float* x, int64_t n) {
  return sum_fixed_order(n, [x](int64_t i) { return x[i]; });
}

// sum_i x[i]^2
inline float sum_squares_fixed_order(const float* x, int64_t n) {
  return sum_fixed_order(n, [x](int64_t i) { return x[i] * x[i]; });
}

// Element-wise maps: x (n) <- f(x) applied through a 64-byte-aligned buffer, block by block, so
// the scalar tail of each block is fixed by n. f takes an Eigen::Map<ArrayXf, Aligned64>&.
template <typename F>
inline void map_fixed_order(float* x, int64_t n, const F& f) {
  constexpr int64_t kBlock = 1024;
  alignas(64) float buf[kBlock];
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t m = std::min(kBlock, n - i);
    std::memcpy(buf, x + i, m * sizeof(float));
    Eigen::Map<Eigen::ArrayXf, Eigen::Aligned64> a(buf, m);
    f(a);
    std::memcpy(x + i, buf, m * sizeof(float));
  }
}

}  // namespace pybert::kernels
