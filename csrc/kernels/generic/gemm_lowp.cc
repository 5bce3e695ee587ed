// The generic family's int8 GEMM: the signed activation format (gemm_lowp.h), exact int32 dot
// products in portable C++ on the shared packed weight.
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace generic {
namespace {

// acc (1, 16) = one row of Aq @ panel B (Kp / 4, 16, 4).
void row_tile(const int8_t* a, int64_t Kp, const int8_t* B, int32_t (*acc)[16]) {
  for (int j = 0; j < 16; ++j) acc[0][j] = 0;
  for (int64_t k4 = 0; k4 < Kp / 4; ++k4) {
    const int8_t* b = B + 64 * k4;
    for (int j = 0; j < 16; ++j)
      for (int t = 0; t < 4; ++t) acc[0][j] += int32_t(a[4 * k4 + t]) * int32_t(b[4 * j + t]);
  }
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  tiled_gemm_int8<1>(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep, row_tile);
}

}  // namespace
}  // namespace generic

constexpr Int8Gemm kGenericInt8Gemm{"generic", quantize_rows_signed, generic::gemm_int8};

}  // namespace kernels
}  // namespace pybert
