// BERT pooler: dense + tanh on each sequence's first token.
#pragma once

#include <cstdint>

#include "ops/linear.h"

namespace pybert::layers {

struct Pooler {
  ops::Linear dense;  // (hidden, hidden)

  // first (batch, hidden) -> out (batch, hidden) = tanh(first W^T + b)
  void forward(const float* first, int64_t batch, float* out) const {
    dense(first, batch, out, ops::Activation::kTanh);
  }
};

}  // namespace pybert::layers
