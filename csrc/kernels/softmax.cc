#include "kernels/softmax.h"

#include <Eigen/Core>

#include "kernels/fixed_order.h"

namespace pybert::kernels {

void softmax(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  Eigen::Map<Eigen::ArrayXf> a(x, n);
  const float max = a.maxCoeff();
  map_fixed_order(x, n, [&](auto& v) { v = ((v - max) * scale).exp(); });  // x may lie anywhere
  a *= 1.0f / sum_fixed_order(x, n);
}

}  // namespace pybert::kernels
