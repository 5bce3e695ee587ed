#include "kernels/pooling.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/fixed_order.h"

namespace pybert::kernels {

PoolMode pool_mode_from_name(const std::string& name) {
  if (name == "cls") return PoolMode::kCls;
  if (name == "mean") return PoolMode::kMean;
  if (name == "max") return PoolMode::kMax;
  if (name == "mean_sqrt_len") return PoolMode::kMeanSqrtLen;
  if (name == "weightedmean") return PoolMode::kWeightedMean;
  if (name == "lasttoken") return PoolMode::kLastToken;
  throw std::invalid_argument("unknown pooling mode '" + name +
                              "'; expected one of: cls, mean, max, mean_sqrt_len, weightedmean, "
                              "lasttoken");
}

void pool_tokens(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                 int64_t hidden, PoolMode mode, int64_t skip, float* out) {
  using ConstRow = Eigen::Map<const Eigen::ArrayXf>;
  Eigen::Map<Eigen::ArrayXf> acc(out, hidden);  // (hidden)
  auto vector_of = [&](int64_t t) { return ConstRow(x + (row ? row[t] : t) * hidden, hidden); };
  // Tokens [first, n) are pooled: the prompt's tokens come first.
  int64_t first = 0;
  while (first < n && position[first] - position[0] < skip) ++first;
  const int64_t count = n - first;
  if (count == 0) {
    if (mode == PoolMode::kCls && n > 0)
      acc = vector_of(0);
    else
      acc.setZero();
    return;
  }
  switch (mode) {
    case PoolMode::kCls:
      acc = vector_of(first);
      return;
    case PoolMode::kLastToken:
      acc = vector_of(n - 1);
      return;
    case PoolMode::kMax:
      acc = vector_of(first);
      for (int64_t t = first + 1; t < n; ++t) acc = acc.max(vector_of(t));
      return;
    case PoolMode::kWeightedMean: {
      acc.setZero();
      float weight_sum = 0.0f;
      for (int64_t t = first; t < n; ++t) {
        const float w = static_cast<float>(position[t] - position[0] + 1);
        acc += w * vector_of(t);
        weight_sum += w;
      }
      acc /= weight_sum;
      return;
    }
    case PoolMode::kMean:
    case PoolMode::kMeanSqrtLen:
      acc = vector_of(first);
      for (int64_t t = first + 1; t < n; ++t) acc += vector_of(t);
      acc /= mode == PoolMode::kMean ? static_cast<float>(count)
                                     : std::sqrt(static_cast<float>(count));
      return;
  }
}

void l2_normalize(float* x, int64_t n, float eps) {
  Eigen::Map<Eigen::ArrayXf> a(x, n);
  const float norm = std::sqrt(sum_squares_fixed_order(x, n));  // x may lie anywhere
  a /= std::max(norm, eps);
}

}  // namespace pybert::kernels
