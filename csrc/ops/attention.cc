#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/attention.h"
#include "parallel.h"
#include "tensor.h"

namespace pybert::ops {

int64_t SequenceLayout::max_length() const {
  int64_t m = 0;
  for (int64_t b = 0; b < batch; ++b) m = std::max(m, offsets[b + 1] - offsets[b]);
  return m;
}

void self_attention(const float* qkv, const SequenceLayout& layout, int64_t hidden,
                    int64_t num_heads, float* ctx) {
  if (num_heads <= 0 || hidden % num_heads != 0)
    throw std::invalid_argument("hidden_size " + std::to_string(hidden) +
                                " is not divisible by num_attention_heads " +
                                std::to_string(num_heads));
  const int64_t d_head = hidden / num_heads;
  const int64_t ld = 3 * hidden;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_head));
  const kernels::Isa isa = kernels::detect_isa();
  const int64_t scratch_floats = kernels::attention_scratch_floats(layout.max_length(), d_head, isa);
  parallel_for(0, layout.batch * num_heads, 1, [&](int64_t w0, int64_t w1) {
    thread_local Buffer scores;  // the kernel's scratch, reused across calls
    float* scratch = scores.reserve(scratch_floats);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / num_heads, h = w % num_heads;
      const int64_t start = layout.offsets[b], len = layout.offsets[b + 1] - start;
      if (len == 0) continue;
      const float* q = qkv + start * ld + h * d_head;
      kernels::attention_head(q, q + hidden, q + 2 * hidden, ld, len, d_head, scale,
                              ctx + start * hidden + h * d_head, hidden, scratch, isa);
    }
  });
}

}  // namespace pybert::ops
