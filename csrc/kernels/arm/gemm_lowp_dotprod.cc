// int8 GEMM on the dot-product extension (SDOT).  Build: -march=armv8.2-a+dotprod
//
// Activations in the signed format (gemm_lowp.h), so s8 x s8 products are exact.  One packed
// k-quad of a panel is 64 bytes = 4 chunks of 16 (4 columns x 4 k): SDOT against the row's 4
// bytes broadcast adds those 4 products into each column's int32 lane.  Micro-tile kMR rows x 16
// columns: 4 * kMR accumulators + 4 panel chunks.
// ODR: internal-linkage helpers only (see blocking.h).
#include <arm_neon.h>

#include "kernels/blocking.h"
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace dotprod {
namespace {

constexpr int kMR = 6;

template <int R>
void micro_tile(const int8_t* A, int64_t Kp, const int8_t* B, int32_t (*out)[16]) {
  int32x4_t acc[R][4];
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = vdupq_n_s32(0);
  for (int64_t k4 = 0; k4 < Kp / 4; ++k4) {
    int8x16_t b[4];
    for (int c = 0; c < 4; ++c) b[c] = vld1q_s8(B + 64 * k4 + 16 * c);
    for (int i = 0; i < R; ++i) {
      int32_t a4;
      std::memcpy(&a4, A + i * Kp + 4 * k4, 4);
      const int8x16_t a = vreinterpretq_s8_s32(vdupq_n_s32(a4));
      for (int c = 0; c < 4; ++c) acc[i][c] = vdotq_s32(acc[i][c], b[c], a);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < 4; ++c) vst1q_s32(out[i] + 4 * c, acc[i][c]);
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  tiled_gemm_int8<kMR>(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep,
                       [](const int8_t* a, int64_t Kp, const int8_t* B, int32_t (*acc)[16]) {
                         micro_tile<kMR>(a, Kp, B, acc);
                       });
}

}  // namespace
}  // namespace dotprod

constexpr Int8Gemm kDotprodInt8Gemm{"neon_dotprod", quantize_rows_signed, dotprod::gemm_int8};

}  // namespace kernels
}  // namespace pybert
