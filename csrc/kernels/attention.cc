#include "kernels/attention.h"

#include "kernels/attention_isa.h"
#include "kernels/matmul.h"
#include "kernels/softmax.h"

namespace pybert::kernels {

int64_t attention_scratch_floats(int64_t len, int64_t d_head, Isa isa) {
  return isa == Isa::Avx512 ? avx512::attention_scratch_floats(len, d_head) : len * len;
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch,
                    Isa isa) {
  if (isa == Isa::Avx512) {
    avx512::attention_head(q, k, v, ld_qkv, len, d_head, scale, out, ld_out, scratch);
    return;
  }
  // AVX2: Eigen products around a (len, len) score matrix.
  matmul_nt(q, ld_qkv, k, ld_qkv, len, len, d_head, scratch, len);  // scores = q k^T
  for (int64_t i = 0; i < len; ++i) softmax(scratch + i * len, len, scale);
  matmul_nn(scratch, len, v, ld_qkv, len, d_head, len, out, ld_out);  // out = probs v
}

int64_t attention_bf16_scratch_bytes(int64_t len, int64_t d_head) {
  return attention_amx::attention_scratch_bytes(len, d_head);
}

void attention_head_bf16(const float* q, const float* k, const float* v, int64_t ld_qkv,
                         int64_t len, int64_t d_head, float scale, float* out, uint16_t* out_bf16,
                         int64_t ld_out, void* scratch) {
  attention_amx::attention_head(q, k, v, ld_qkv, len, d_head, scale, out, out_bf16, ld_out,
                                scratch);
}

}  // namespace pybert::kernels
