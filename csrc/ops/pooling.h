// Sentence vectors from token vectors: one or more pooling modes side by side, then optional
// L2 normalization (sentence-transformers' Pooling + Normalize modules).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pooling.h"

namespace pybert::ops {

// hidden_states (batch, seq, hidden), mask (batch, seq; nonzero = real token)
//   -> out (batch, modes.size() * hidden): each mode's vector in the order given, then the
//      whole row L2-normalized when `normalize`.
// Padded positions never contribute, whatever values they hold.
void pool(const float* hidden_states, const int64_t* mask, int64_t batch, int64_t seq,
          int64_t hidden, const std::vector<kernels::PoolMode>& modes, bool normalize,
          float* out);

}  // namespace pybert::ops
