// Multi-head self-attention over packed sequences (padding removed).
#pragma once

#include <cstdint>

namespace pybert::ops {

// Tokens of a batch packed back to back: sequence b owns rows offsets[b] .. offsets[b+1].
struct SequenceLayout {
  const int64_t* offsets = nullptr;  // (batch + 1)
  int64_t batch = 0;
  int64_t tokens() const { return offsets[batch]; }
  int64_t max_length() const;
};

// qkv (tokens, 3 * hidden): per row [q | k | v], head h in columns h*d_head .. (h+1)*d_head.
// ctx (tokens, hidden) = per sequence and head softmax(q k^T / sqrt(d_head)) v, heads
// concatenated. Tokens attend only within their own sequence.
void self_attention(const float* qkv, const SequenceLayout& layout, int64_t hidden,
                    int64_t num_heads, float* ctx);

}  // namespace pybert::ops
