// Per-ISA attention kernels behind attention.h (include from attention*.cc only).
#pragma once

#include <cstdint>

#include "kernels/families.h"

namespace pybert {
namespace kernels {
namespace avx512 {
int64_t attention_scratch_floats(int64_t len, int64_t d_head);
void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch);
}  // namespace avx512
namespace attention_amx {  // attention_amx.cc: bf16 inputs on AMX tiles, fp32 softmax
int64_t attention_scratch_bytes(int64_t len, int64_t d_head, bool split);
void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, uint16_t* out_bf16, int64_t ld_out,
                    void* scratch);
void attention_head_split(const float* q, const float* k, const float* v, int64_t ld,
                          int64_t len, int64_t d_head, float scale, float* out,
                          uint16_t* out_bf16, int64_t ld_out, void* scratch);
void attention_head_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t ld,
                         int64_t len, int64_t d_head, float scale, float* out,
                         uint16_t* out_bf16, int64_t ld_out, void* scratch);
}  // namespace attention_amx
}  // namespace kernels
}  // namespace pybert
