#include "ops/linear.h"

#include <stdexcept>

#include "kernels/gemm.h"
#include "parallel.h"

namespace pybert::ops {

Linear::Linear(Tensor weight, Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
  if (weight_.shape.size() != 2)
    throw std::invalid_argument("Linear weight must be 2-D (out_features, in_features), got " +
                                shape_str(weight_.shape));
  out_features_ = weight_.dim(0);
  in_features_ = weight_.dim(1);
  if (!bias_.empty() && bias_.shape != Shape{out_features_})
    throw std::invalid_argument("Linear bias must have shape " + shape_str({out_features_}) +
                                ", got " + shape_str(bias_.shape));
}

void Linear::operator()(const float* x, int64_t n, float* y, Activation act) const {
  if (n <= 0) return;
  // Each thread owns a block of output columns: it reads its slice of W once and applies the
  // bias + activation epilogue while the block is still in cache.
  constexpr int64_t kColumnGrain = 64;
  parallel_for(0, out_features_, kColumnGrain, [&](int64_t c0, int64_t c1) {
    kernels::gemm_nt(x, in_features_, weight_.data, in_features_, n, c0, c1, y + c0,
                     out_features_);
    kernels::bias_activate(y + c0, n, c1 - c0, out_features_,
                           bias_.empty() ? nullptr : bias_.data + c0, act);
  });
}

}  // namespace pybert::ops
