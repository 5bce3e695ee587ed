// Per-ISA attention kernels behind attention.h (include from attention*.cc only).
#pragma once

#include <cstdint>

namespace pybert {
namespace kernels {
namespace avx512 {
int64_t attention_scratch_floats(int64_t len, int64_t d_head);
void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch);
}  // namespace avx512
}  // namespace kernels
}  // namespace pybert
