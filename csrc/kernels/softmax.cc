#include "kernels/softmax.h"

#include <Eigen/Core>

namespace pybert::kernels {

void softmax(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  Eigen::Map<Eigen::ArrayXf> a(x, n);
  const float max = a.maxCoeff();
  a = ((a - max) * scale).exp();
  a *= 1.0f / a.sum();
}

}  // namespace pybert::kernels
