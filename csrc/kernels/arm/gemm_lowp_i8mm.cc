// int8 GEMM on the i8mm extension (SMMLA).  Build: -march=armv8.2-a+dotprod+i8mm
//
// SMMLA multiplies a 2 x 8 int8 block of A by the transpose of a 2 x 8 block of W into a 2 x 2
// int32 tile.  The packed panel keeps 4 k per column (gemm_lowp.h); two consecutive k-quads,
// zipped 32 bits at a time, give columns (c, c + 1) x 8 k, which is SMMLA's W operand as it is:
//   quad q   (int32 lanes): [c0 k0-3, c1 k0-3, c2 k0-3, c3 k0-3]
//   quad q+1 (int32 lanes): [c0 k4-7, c1 k4-7, ...]    zip1 -> [c0 k0-7 | c1 k0-7]
// Micro-tile 4 rows (2 row pairs) x 16 columns: 16 accumulators of 2 x 2.
// ODR: internal-linkage helpers only (see blocking.h).
#include <arm_neon.h>

#include "kernels/blocking.h"
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace i8mm {
namespace {

constexpr int kMR = 4;  // rows per tile (row pairs x 2); reads up to 3 rows past m, padding

// out (4, 16) = Aq rows [0, 4) @ panel B, exact int32.
void micro_tile(const int8_t* A, int64_t Kp, const int8_t* B, int32_t (*out)[16]) {
  int32x4_t acc[2][8];  // [row pair][column pair]: lanes (r, c), (r, c+1), (r+1, c), (r+1, c+1)
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 8; ++c) acc[p][c] = vdupq_n_s32(0);
  for (int64_t k8 = 0; k8 < Kp / 8; ++k8) {
    int8x16_t b[8];
    for (int c = 0; c < 4; ++c) {
      const int32x4_t lo = vld1q_s32(reinterpret_cast<const int32_t*>(B + 128 * k8 + 16 * c));
      const int32x4_t hi = vld1q_s32(reinterpret_cast<const int32_t*>(B + 128 * k8 + 64 + 16 * c));
      b[2 * c] = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));
      b[2 * c + 1] = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));
    }
    for (int p = 0; p < 2; ++p) {
      const int8_t* a = A + 2 * p * Kp + 8 * k8;
      const int8x16_t a2 = vcombine_s8(vld1_s8(a), vld1_s8(a + Kp));
      for (int c = 0; c < 8; ++c) acc[p][c] = vmmlaq_s32(acc[p][c], a2, b[c]);
    }
  }
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 8; ++c) {
      int32_t t[4];
      vst1q_s32(t, acc[p][c]);
      out[2 * p][2 * c] = t[0];
      out[2 * p][2 * c + 1] = t[1];
      out[2 * p + 1][2 * c] = t[2];
      out[2 * p + 1][2 * c + 1] = t[3];
    }
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  tiled_gemm_int8<kMR>(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep,
                       micro_tile);
}

}  // namespace
}  // namespace i8mm

constexpr Int8Gemm kI8mmInt8Gemm{"neon_i8mm", quantize_rows_signed, i8mm::gemm_int8};

}  // namespace kernels
}  // namespace pybert
