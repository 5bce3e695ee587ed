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
  throw std::invalid_argument("unknown pooling mode '" + name +
                              "'; expected one of: cls, mean, max, mean_sqrt_len");
}

void pool(const float* x, const int64_t* mask, int64_t seq, int64_t hidden, PoolMode mode,
          float* out) {
  using ConstRow = Eigen::Map<const Eigen::ArrayXf>;
  Eigen::Map<Eigen::ArrayXf> acc(out, hidden);  // (hidden)
  int64_t count = 0;
  for (int64_t s = 0; s < seq; ++s) {
    if (!mask[s]) continue;
    const ConstRow row(x + s * hidden, hidden);
    if (mode == PoolMode::kCls) {
      acc = row;
      return;
    }
    if (count == 0)
      acc = row;
    else if (mode == PoolMode::kMax)
      acc = acc.max(row);
    else
      acc += row;
    ++count;
  }
  if (count == 0) {
    acc.setZero();
  } else if (mode == PoolMode::kMean) {
    acc /= static_cast<float>(count);
  } else if (mode == PoolMode::kMeanSqrtLen) {
    acc /= std::sqrt(static_cast<float>(count));
  }
}

void l2_normalize(float* x, int64_t n, float eps) {
  Eigen::Map<Eigen::ArrayXf> a(x, n);
  const float norm = std::sqrt(sum_squares_fixed_order(x, n));  // x may lie anywhere
  a /= std::max(norm, eps);
}

}  // namespace pybert::kernels
