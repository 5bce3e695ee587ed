// bf16 GEMM on the bf16 extension (BFMMLA), and bf16 attention.  Build: -march=armv8.2-a+bf16
//
// BFMMLA multiplies a 2 x 4 bf16 block of A by the transpose of a 2 x 4 block of W into a 2 x 2
// fp32 tile.  The packed panel keeps k in pairs per column (gemm_lowp.h); two consecutive pairs,
// zipped 32 bits at a time, give columns (c, c + 1) x 4 k, SMMLA-style (see gemm_lowp_i8mm.cc):
//   pair p   (32-bit lanes): [c0 k0-1, c1 k0-1, c2 k0-1, c3 k0-1]
//   pair p+1 (32-bit lanes): [c0 k2-3, ...]      zip1 -> [c0 k0-3 | c1 k0-3]
// Micro-tile 4 rows x 16 columns.  The activations are rounded to bf16 by the scalar rounding
// of the packers (to_bf16); the epilogue runs in fp32.
// Attention: q, k, v and the probabilities rounded to bf16 as the contract says, products with
// fp32 accumulation in portable C++ (no BFMMLA kernel for it yet).
// ODR: internal-linkage helpers only (see blocking.h).
#include <arm_neon.h>
#include <math.h>

#include "kernels/blocking.h"
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace neon_bf16 {
namespace {

constexpr int kMR = 4;

float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

float round_bf16(float x) { return bf16_value(to_bf16(x)); }

// An attention input as its bf16 value: fp32 rounded, bf16 as it is.
float bf16_input(float x) { return round_bf16(x); }
float bf16_input(uint16_t h) { return bf16_value(h); }

// out (4, 16) = Ab rows [0, 4) @ panel B (Kp / 2, 16, 2), fp32 accumulation.
void micro_tile(const uint16_t* A, int64_t Kp, const uint16_t* B, float (*out)[16]) {
  float32x4_t acc[2][8];  // [row pair][column pair]: lanes (r, c), (r, c+1), (r+1, c), (r+1, c+1)
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 8; ++c) acc[p][c] = vdupq_n_f32(0.0f);
  for (int64_t k4 = 0; k4 < Kp / 4; ++k4) {
    bfloat16x8_t b[8];
    for (int c = 0; c < 4; ++c) {
      const uint32x4_t lo = vld1q_u32(reinterpret_cast<const uint32_t*>(B + 64 * k4 + 8 * c));
      const uint32x4_t hi =
          vld1q_u32(reinterpret_cast<const uint32_t*>(B + 64 * k4 + 32 + 8 * c));
      b[2 * c] = vreinterpretq_bf16_u32(vzip1q_u32(lo, hi));
      b[2 * c + 1] = vreinterpretq_bf16_u32(vzip2q_u32(lo, hi));
    }
    for (int p = 0; p < 2; ++p) {
      const uint16_t* a = A + 2 * p * Kp + 4 * k4;
      const bfloat16x8_t a2 = vreinterpretq_bf16_u16(vcombine_u16(vld1_u16(a), vld1_u16(a + Kp)));
      for (int c = 0; c < 8; ++c) acc[p][c] = vbfmmlaq_f32(acc[p][c], a2, b[c]);
    }
  }
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 8; ++c) {
      float t[4];
      vst1q_f32(t, acc[p][c]);
      out[2 * p][2 * c] = t[0];
      out[2 * p][2 * c + 1] = t[1];
      out[2 * p + 1][2 * c] = t[2];
      out[2 * p + 1][2 * c + 1] = t[3];
    }
}

void convert_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                  uint16_t* Ab) {
  const int64_t Kp = bf16_padded_k(K);
  for (int64_t m = m0; m < m1; ++m) {
    uint16_t* row = Ab + m * Kp;
    for (int64_t k = 0; k < K; ++k) row[k] = to_bf16(A[m * lda + k]);
    for (int64_t k = K; k < Kp; ++k) row[k] = 0;
  }
  if (m1 == M) std::memset(Ab + M * Kp, 0, size_t(lowp_padded_m(M) - M) * size_t(Kp) * 2);
}

// The tiles of C[m0:m1, n0:n1] with the epilogue; then stored as fp32 (C) or bf16 (Cb).
void gemm_tiles(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
                int64_t ldc, uint16_t* Cb, int64_t ldcb, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1, const Epilogue& ep) {
  (void)N;
  const int64_t Kp = bf16_padded_k(K);
  const uint16_t* P = static_cast<const uint16_t*>(packed);
  for (int64_t n = n0; n < n1; n += 16) {
    const int64_t cols = n1 - n < 16 ? n1 - n : 16;
    const uint16_t* B = P + (n / 16) * 16 * Kp;
    for (int64_t m = m0; m < m1; m += kMR) {
      const int rows = int(m1 - m < kMR ? m1 - m : kMR);
      float acc[kMR][16];
      micro_tile(Ab + m * Kp, Kp, B, acc);
      for (int i = 0; i < rows; ++i) {
        epilogue_row(acc[i], cols, m + i, n, ep);
        if (C)
          for (int64_t j = 0; j < cols; ++j) C[(m + i) * ldc + n + j] = acc[i][j];
        else
          for (int64_t j = 0; j < cols; ++j) Cb[(m + i) * ldcb + n + j] = to_bf16(acc[i][j]);
      }
    }
  }
}

void gemm(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C, int64_t ldc,
          int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep) {
  gemm_tiles(Ab, packed, N, K, C, ldc, nullptr, 0, m0, m1, n0, n1, ep);
}

void gemm_to_bf16(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, uint16_t* Cb,
                  int64_t ldcb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                  const Epilogue& ep) {
  gemm_tiles(Ab, packed, N, K, nullptr, 0, Cb, ldcb, m0, m1, n0, n1, ep);
}

// Scratch: q, k, v rounded to bf16 (kept as fp32 values), (len, d) each, then attention_rows'.
int64_t attention_scratch_bytes(int64_t len, int64_t d_head, bool /*split: none here*/) {
  return (3 * len * d_head + attention_rows_scratch_floats(len, d_head)) * int64_t(sizeof(float));
}

// q, k, v (fp32 rows rounded here, or bf16 rows as they are) as bf16 values in fp32, packed
// (len, d) in the scratch, then attention_rows.
template <typename T>
void attend(const T* q, const T* k, const T* v, int64_t ld, int64_t len, int64_t d, float scale,
            float* out, uint16_t* out_bf16, int64_t ld_out, void* scratch) {
  float* qr = static_cast<float*>(scratch);
  float* kr = qr + len * d;
  float* vr = kr + len * d;
  float* rows = vr + len * d;  // attention_rows' scratch
  for (int64_t i = 0; i < len; ++i)
    for (int64_t t = 0; t < d; ++t) {
      qr[i * d + t] = bf16_input(q[i * ld + t]);
      kr[i * d + t] = bf16_input(k[i * ld + t]);
      vr[i * d + t] = bf16_input(v[i * ld + t]);
    }
  attention_rows(qr, d, kr, d, vr, d, len, d, scale, rows, round_bf16,
                 [&](int64_t i, int64_t t, float o) {
                   if (out_bf16)
                     out_bf16[i * ld_out + t] = to_bf16(o);
                   else
                     out[i * ld_out + t] = o;
                 });
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d, float scale, float* out, uint16_t* out_bf16, int64_t ld_out,
                    void* scratch) {
  attend(q, k, v, ld, len, d, scale, out, out_bf16, ld_out, scratch);
}

void attention_head_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t ld,
                         int64_t len, int64_t d, float scale, float* out, uint16_t* out_bf16,
                         int64_t ld_out, void* scratch) {
  attend(q, k, v, ld, len, d, scale, out, out_bf16, ld_out, scratch);
}

}  // namespace
}  // namespace neon_bf16

constexpr Bf16Gemm kNeonBf16Gemm{"neon_bf16",
                                 neon_bf16::convert_rows,
                                 neon_bf16::gemm,
                                 neon_bf16::gemm_to_bf16,
                                 neon_bf16::attention_scratch_bytes,
                                 neon_bf16::attention_head,
                                 nullptr,  // no split attention: int8's runs in fp32
                                 neon_bf16::attention_head_bf16};

}  // namespace kernels
}  // namespace pybert
