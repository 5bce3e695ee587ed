// Scaled dot-product attention for one (sequence, head), all positions valid.
#pragma once

#include <cstdint>

namespace pybert::kernels {

// One family's fp32 attention (the bf16 one is a Bf16Gemm member, gemm_lowp.h).
struct AttentionKernels {
  // Floats of scratch head() needs for a sequence of `len` tokens.
  int64_t (*scratch_floats)(int64_t len, int64_t d_head);
  // q, k, v: (len, d_head) with row stride ld_qkv; out: (len, d_head) with row stride ld_out.
  // out = softmax(q k^T * scale) v, scale > 0.  scratch: scratch_floats(len, d_head) floats,
  // 64-byte aligned.
  void (*head)(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
               int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch);
};

}  // namespace pybert::kernels
