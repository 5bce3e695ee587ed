// Sentence vectors from token vectors: one or more pooling modes side by side, then optional
// L2 normalization (sentence-transformers' Pooling + Normalize modules).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pooling.h"
#include "ops/attention.h"

namespace pybert::ops {

// hidden_states (batch, seq, hidden), mask (batch, seq; nonzero = real token)
//   -> out (batch, modes.size() * hidden): each mode's vector in the order given, then the
//      whole row L2-normalized when `normalize`.
// Padded positions never contribute, whatever values they hold.
void pool(const float* hidden_states, const int64_t* mask, int64_t batch, int64_t seq,
          int64_t hidden, const std::vector<kernels::PoolMode>& modes, bool normalize,
          float* out);

// The same on the packed real tokens the encoder computes on:
//   x (tokens, hidden), sequence b's rows [layout.offsets[b], layout.offsets[b + 1]),
//   position (tokens) each row's flat place b * seq + s in the padded batch
//   -> out (batch, modes.size() * hidden). The first `skip` positions of each sequence (from its
//   first real token) are left out: a prompt that pooling excludes (kernels::pool_tokens).
void pool_packed(const float* x, const SequenceLayout& layout, const int64_t* position,
                 int64_t hidden, const std::vector<kernels::PoolMode>& modes, int64_t skip,
                 float* out);

// x (n, width) <- each row / max(||row||_2, 1e-12), as torch.nn.functional.normalize.
void l2_normalize_rows(float* x, int64_t n, int64_t width);

}  // namespace pybert::ops
