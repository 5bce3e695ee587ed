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

// The same with q, k, v and the probabilities rounded to bf16 and fp32 accumulation on AMX tiles;
// the softmax stays fp32.  Requires bf16_amx_available().  scratch: 64-byte aligned,
// attention_bf16_scratch_bytes(len, d_head) bytes.  The result goes to out (fp32) or, when
// out_bf16 is set, rounded to bf16 into out_bf16 (row stride ld_out elements either way).
int64_t attention_bf16_scratch_bytes(int64_t len, int64_t d_head);
void attention_head_bf16(const float* q, const float* k, const float* v, int64_t ld_qkv,
                         int64_t len, int64_t d_head, float scale, float* out, uint16_t* out_bf16,
                         int64_t ld_out, void* scratch);

}  // namespace pybert::kernels
