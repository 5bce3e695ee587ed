// LayerNorm over the last dimension, fused with the residual add that precedes it in BERT.
#pragma once

#include <cstdint>

#include "tensor.h"

namespace pybert::ops {

class LayerNorm {
 public:
  LayerNorm() = default;
  LayerNorm(Tensor gamma, Tensor beta, float eps);  // gamma, beta (hidden)

  // y (n, hidden) = LayerNorm(x (n, hidden) [+ residual (n, hidden)]); y may alias x.
  void operator()(const float* x, const float* residual, float* y, int64_t n) const;

  int64_t hidden() const { return gamma_.dim(0); }

 private:
  Tensor gamma_;
  Tensor beta_;
  float eps_ = 1e-12f;
};

// x (n, hidden) += residual (n, hidden): the un-normalized residual add of pre-LN layers.
void add_residual(float* x, const float* residual, int64_t n, int64_t hidden);

}  // namespace pybert::ops
