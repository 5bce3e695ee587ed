#include "kernels/layer_norm.h"

#include <Eigen/Core>
#include <cmath>

#include "kernels/fixed_order.h"

namespace pybert::kernels {

void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps) {
  using Row = Eigen::Map<Eigen::ArrayXf>;
  using ConstRow = Eigen::Map<const Eigen::ArrayXf>;
  const ConstRow g(gamma, cols), b(beta, cols);
  for (int64_t r = 0; r < rows; ++r) {
    Row out(y + r * cols, cols);
    if (residual)
      out = ConstRow(x + r * cols, cols) + ConstRow(residual + r * cols, cols);
    else if (y != x)
      out = ConstRow(x + r * cols, cols);
    // Two passes (mean, then centred variance) keep fp32 close to torch's result; both sums in
    // a fixed order, so the result does not depend on where y lies.
    const float mean = sum_fixed_order(out.data(), cols) / static_cast<float>(cols);
    out -= mean;
    const float var = sum_squares_fixed_order(out.data(), cols) / static_cast<float>(cols);
    const float inv_std = 1.0f / std::sqrt(var + eps);
    out = out * inv_std * g + b;
  }
}

}  // namespace pybert::kernels
