// Linear: y = act(x W^T + b), W stored (out_features, in_features) as in nn.Linear.
#pragma once

#include <cstdint>

#include "kernels/activation.h"
#include "tensor.h"

namespace pybert::ops {

using kernels::Activation;

class Linear {
 public:
  Linear() = default;
  // weight (out_features, in_features); bias (out_features) or empty.
  Linear(Tensor weight, Tensor bias);

  // x (n, in_features) @ W^T (in_features, out_features) + b -> act -> y (n, out_features)
  void operator()(const float* x, int64_t n, float* y, Activation act = Activation::kNone) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Tensor weight_;
  Tensor bias_;
  int64_t in_features_ = 0;
  int64_t out_features_ = 0;
};

}  // namespace pybert::ops
