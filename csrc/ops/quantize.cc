#include "ops/quantize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace pybert::ops {
namespace {

int64_t row_grain(int64_t dim) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(dim, 1)); }

}  // namespace

void quantize_scalar(const float* x, int64_t n, int64_t dim, const float* lo, const float* hi,
                     int32_t offset, uint8_t* q) {
  std::vector<float> step(dim);  // (dim)
  for (int64_t d = 0; d < dim; ++d) {
    step[d] = (hi[d] - lo[d]) / 255.0f;
    if (step[d] == 0.0f) step[d] = 1.0f;
  }
  parallel_for(0, n, row_grain(dim), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t d = 0; d < dim; ++d) {
        // float32 subtraction and division, rounded at each step as numpy does
        const float shifted = x[r * dim + d] - lo[d];
        const float level = std::floor(shifted / step[d]);
        const float clipped = std::isnan(level) ? level : std::min(255.0f, std::max(0.0f, level));
        // NaN (undefined for the int cast in numpy) is bucket 0 here.
        const int32_t bucket = std::isnan(clipped) ? 0 : static_cast<int32_t>(clipped);
        q[r * dim + d] = static_cast<uint8_t>(bucket - offset);
      }
    }
  });
}

void quantize_binary(const float* x, int64_t n, int64_t dim, int32_t offset, uint8_t* bits) {
  const int64_t bytes = (dim + 7) / 8;
  parallel_for(0, n, row_grain(dim), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t byte = 0; byte < bytes; ++byte) {
        uint32_t packed = 0;
        for (int64_t bit = 0; bit < 8; ++bit) {
          const int64_t d = byte * 8 + bit;
          if (d < dim && x[r * dim + d] > 0.0f) packed |= 0x80u >> bit;
        }
        bits[r * bytes + byte] = static_cast<uint8_t>(static_cast<int32_t>(packed) - offset);
      }
    }
  });
}

void column_ranges(const float* x, int64_t n, int64_t dim, float* lo, float* hi) {
  for (int64_t d = 0; d < dim; ++d) lo[d] = hi[d] = x[d];
  for (int64_t r = 1; r < n; ++r)
    for (int64_t d = 0; d < dim; ++d) {
      lo[d] = std::min(lo[d], x[r * dim + d]);
      hi[d] = std::max(hi[d], x[r * dim + d]);
    }
}

}  // namespace pybert::ops
