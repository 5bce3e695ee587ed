// The generic family's int8 GEMM: the signed activation format (gemm_lowp.h), exact int32 dot
// products in portable C++ on the shared packed weight.
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace generic {
namespace {

void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero) {
  quantize_rows_signed(A, lda, M, K, m0, m1, Aq, a_scale, a_zero);
}

// One row of C over a 16-column panel: acc[j] = sum_k Aq[m, k] * q_w[n + j, k].
void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  const Int8Weight w(packed, N, K);
  for (int64_t n = n0; n < n1; n += 16) {
    const int64_t cols = n1 - n < 16 ? n1 - n : 16;
    const int8_t* B = w.q + (n / 16) * 16 * w.Kp;  // (Kp / 4, 16, 4)
    for (int64_t m = m0; m < m1; ++m) {
      const int8_t* a = Aq + m * w.Kp;
      int32_t acc[16] = {};
      for (int64_t k4 = 0; k4 < w.Kp / 4; ++k4) {
        const int8_t* b = B + 64 * k4;
        for (int j = 0; j < 16; ++j)
          for (int t = 0; t < 4; ++t) acc[j] += int32_t(a[4 * k4 + t]) * int32_t(b[4 * j + t]);
      }
      float* c = C + m * ldc + n;
      for (int64_t j = 0; j < cols; ++j) c[j] = dequantize(acc[j], a_zero[m], a_scale[m], w, n + j);
      epilogue_row(c, cols, m, n, ep);
    }
  }
}

}  // namespace
}  // namespace generic

constexpr Int8Gemm kGenericInt8Gemm{"generic", generic::quantize_rows, generic::gemm_int8};

}  // namespace kernels
}  // namespace pybert
