// Scaled dot-product attention for one (sequence, head), all positions valid.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace pybert::kernels {

// Floats of scratch attention_head needs for a sequence of `len` tokens.
int64_t attention_scratch_floats(int64_t len, int64_t d_head, Isa isa);

// q, k, v: (len, d_head) with row stride ld_qkv; out: (len, d_head) with row stride ld_out.
// out = softmax(q k^T * scale) v, scale > 0.
void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch,
                    Isa isa);

}  // namespace pybert::kernels
