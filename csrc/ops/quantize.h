// Embedding quantization as sentence-transformers' quantize_embeddings defines it, bit for bit.
#pragma once

#include <cstdint>

namespace pybert::ops {

// x (n, dim), ranges lo (dim), hi (dim) -> q (n, dim) buckets of 256 levels per dimension:
//   step_d = (hi_d - lo_d) / 255 (1 where that is 0), q = clip(floor((x - lo_d) / step_d), 0, 255)
//   - offset, in float32 arithmetic as numpy does it; offset 0 for uint8, 128 for int8.
void quantize_scalar(const float* x, int64_t n, int64_t dim, const float* lo, const float* hi,
                     int32_t offset, uint8_t* q);

// x (n, dim) -> bits (n, ceil(dim / 8)): bit 7 - (d % 8) of byte d / 8 is x_d > 0 (numpy
// packbits, big-endian bit order, the last byte zero-padded), minus `offset` (0: ubinary;
// 128: binary, stored as int8).
void quantize_binary(const float* x, int64_t n, int64_t dim, int32_t offset, uint8_t* bits);

// x (n, dim) -> lo (dim), hi (dim): the column-wise min and max (the calibration ranges).
void column_ranges(const float* x, int64_t n, int64_t dim, float* lo, float* hi);

}  // namespace pybert::ops
