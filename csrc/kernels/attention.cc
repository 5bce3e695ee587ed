#include "kernels/attention.h"

#include "kernels/matmul.h"
#include "kernels/softmax.h"

namespace pybert::kernels {

void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  // scores (len, len) = q (len, d) @ k^T (d, len)
  matmul_nt(q, ld_qkv, k, ld_qkv, len, len, d_head, scratch, len);
  for (int64_t i = 0; i < len; ++i) softmax(scratch + i * len, len, scale);
  // out (len, d) = probs (len, len) @ v (len, d)
  matmul_nn(scratch, len, v, ld_qkv, len, d_head, len, out, ld_out);
}

}  // namespace pybert::kernels
