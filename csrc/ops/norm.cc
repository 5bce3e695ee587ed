#include "ops/norm.h"

#include <stdexcept>

#include "kernels/layer_norm.h"
#include "parallel.h"

namespace pybert::ops {

LayerNorm::LayerNorm(Tensor gamma, Tensor beta, float eps)
    : gamma_(std::move(gamma)), beta_(std::move(beta)), eps_(eps) {
  if (gamma_.shape.size() != 1 || beta_.shape != gamma_.shape)
    throw std::invalid_argument("LayerNorm weight and bias must be 1-D of one size, got " +
                                shape_str(gamma_.shape) + " and " + shape_str(beta_.shape));
}

void LayerNorm::operator()(const float* x, const float* residual, float* y, int64_t n) const {
  const int64_t h = hidden();
  constexpr int64_t kRowGrain = 16;
  parallel_for(0, n, kRowGrain, [&](int64_t r0, int64_t r1) {
    kernels::layer_norm(x + r0 * h, residual ? residual + r0 * h : nullptr, y + r0 * h, r1 - r0,
                        h, gamma_.data, beta_.data, eps_);
  });
}

void add_residual(float* x, const float* residual, int64_t n, int64_t hidden) {
  constexpr int64_t kRowGrain = 16;
  parallel_for(0, n, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * hidden; i < r1 * hidden; ++i) x[i] += residual[i];
  });
}

}  // namespace pybert::ops
