// Scaled dot-product attention for one (sequence, head), all positions valid.
#pragma once

#include <cstdint>

namespace pybert::kernels {

// q, k, v: (len, d_head) with row stride ld_qkv; out: (len, d_head) with row stride ld_out;
// scratch: at least len * len floats.
// out = softmax(q k^T * scale) v
void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch);

}  // namespace pybert::kernels
