// AVX2 int8 GEMM kernel (fallback for CPUs without AVX512-VNNI) and the AVX2 activation
// quantizer.  Build: -O3 -mavx2 -mfma
//
// ODR: no inline/template entity with external linkage (anonymous-namespace helpers only,
// no std:: templates or inline std:: overloads such as std::fmax(float, float)).
//
// vpmaddubsw (u8 x s8 -> saturating s16 pair sums) is made exact with the sign trick:
//   a * w = |a| * (w * sign(a))   ->   vpmaddubsw(vpabsb(a), vpsignb(w, a))
// with |a| <= 128, |w| <= 127 each pair sum is <= 2 * 128 * 127 = 32512 < 32767, never saturating;
// vpmaddwd against ones widens the pairs to int32 quads, accumulated with vpaddd.
// Micro-tile kMR rows x 16 columns (one packed panel = 2 ymm of 8 columns x 4 k).

#include <immintrin.h>

#include <cstring>

#include "kernels/x86/gemm_lowp_isa.h"
#include "kernels/x86/simd_math_avx2.h"
#include "kernels/blocking.h"

namespace pybert {
namespace kernels {
namespace lowp_avx2 {
namespace {

constexpr int kMR = 4;
constexpr int64_t kMC = 256;


// Lane mask for `cols` (may be <= 0 or >= 8) valid lanes.
__m256i lane_mask(int64_t cols) {
  const int64_t c = cols < 0 ? 0 : cols > 8 ? 8 : cols;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(c)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// C rows [m, m + R) x columns [n, n + cols), cols <= 16, from panel n / 16.
template <int R>
void micro_tile(const int8_t* A, int64_t Kp, const int8_t* B, const float* w_scale,
                const int32_t* w_sum, int64_t n, int64_t cols, const float* a_scale,
                const int32_t* a_zero, int64_t m, float* C, int64_t ldc, const Epilogue& ep) {
  __m256i acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t k4n = Kp / 4;
#pragma GCC unroll 2
  for (int64_t k4 = 0; k4 < k4n; ++k4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 64 * k4));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 64 * k4 + 32));
    for (int i = 0; i < R; ++i) {
      int32_t a4;
      std::memcpy(&a4, A + i * Kp + 4 * k4, 4);
      const __m256i a = _mm256_set1_epi32(a4);
      const __m256i aa = _mm256_abs_epi8(a);
      const __m256i p0 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(b0, a));
      const __m256i p1 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(b1, a));
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(p0, ones));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(p1, ones));
    }
  }
  for (int v = 0; v < 2; ++v) {
    if (cols - 8 * v <= 0) continue;
    const __m256i mask = lane_mask(cols - 8 * v);
    const bool full = cols - 8 * v >= 8;
    const int64_t nv = n + 8 * v;
    const __m256 ws = _mm256_loadu_ps(w_scale + nv);  // Np-padded, always readable
    const __m256i wsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w_sum + nv));
    const __m256 bias = ep.bias ? _mm256_maskload_ps(ep.bias + nv, mask) : _mm256_setzero_ps();
    for (int i = 0; i < R; ++i) {
      const __m256i zero = _mm256_mullo_epi32(_mm256_set1_epi32(a_zero[m + i]), wsum);
      __m256 x = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][v], zero));
      x = _mm256_mul_ps(x, _mm256_mul_ps(_mm256_set1_ps(a_scale[m + i]), ws));
      if (ep.bias) x = _mm256_add_ps(x, bias);
      x = avx2::activate_ps(x, ep.activation);
      if (ep.residual)
        x = _mm256_add_ps(x, _mm256_maskload_ps(ep.residual + (m + i) * ep.ldr + nv, mask));
      float* c = C + (m + i) * ldc + nv;
      if (full)
        _mm256_storeu_ps(c, x);
      else
        _mm256_maskstore_ps(c, mask, x);
    }
  }
}

// 32 int32 (4 ymm) -> 32 int8 in order, saturated to [-128, 127].
__m256i pack_32(__m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  const __m256i p01 = _mm256_packs_epi32(q0, q1), p23 = _mm256_packs_epi32(q2, q3);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One fp32 row (K) -> (Kp) int8 u - 128; returns the row scale s_m and sets *zero = z_m - 128.
// Same arithmetic as the AVX-512 quantizer (fp32 multiply by 255 / (hi - lo), round to nearest
// even, + z_m, clamp to [0, 255]); the padding K..Kp is 0 (against zero weights).
float quantize_row(const float* a, int64_t K, int64_t Kp, int8_t* out, int32_t* zero) {
  __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 v = _mm256_loadu_ps(a + k);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  alignas(32) float lanes_lo[8], lanes_hi[8];
  _mm256_store_ps(lanes_lo, vlo);
  _mm256_store_ps(lanes_hi, vhi);
  float lo = 0.f, hi = 0.f;
  for (int j = 0; j < 8; ++j) {
    lo = lanes_lo[j] < lo ? lanes_lo[j] : lo;
    hi = lanes_hi[j] > hi ? lanes_hi[j] : hi;
  }
  for (; k < K; ++k) {
    lo = a[k] < lo ? a[k] : lo;
    hi = a[k] > hi ? a[k] : hi;
  }
  const float inv_s = hi > lo ? 255.0f / (hi - lo) : 0.f;
  const int32_t z = int32_t(__builtin_nearbyintf(-lo * inv_s));
  const __m256 inv = _mm256_set1_ps(inv_s);
  const __m256i offset = _mm256_set1_epi32(z - 128);
  k = 0;
  for (; k + 32 <= K; k += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; ++j)  // vcvtps2dq rounds to nearest even (MXCSR default)
      q[j] = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(a + k + 8 * j), inv)),
                              offset);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), pack_32(q[0], q[1], q[2], q[3]));
  }
  for (; k < K; ++k) {
    const float q = __builtin_nearbyintf(a[k] * inv_s) + float(z - 128);
    out[k] = int8_t(q > 127.f ? 127.f : q < -128.f ? -128.f : q);
  }
  for (; k < Kp; ++k) out[k] = 0;
  *zero = z - 128;
  return (hi - lo) / 255.0f;
}

}  // namespace

void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero) {
  const int64_t Kp = round_up(K > 0 ? K : 1, 64);
  for (int64_t m = m0; m < m1; ++m)
    a_scale[m] = quantize_row(A + m * lda, K, Kp, Aq + m * Kp, a_zero + m);
  if (m1 == M) std::memset(Aq + M * Kp, 0, size_t(round_up(M + 15, 16) - M) * size_t(Kp));
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  const int64_t Np = round_up(N, 32), Kp = round_up(K > 0 ? K : 1, 64);
  const int8_t* Q = static_cast<const int8_t*>(packed);
  const float* w_scale = reinterpret_cast<const float*>(Q + Np * Kp);
  const int32_t* w_sum = reinterpret_cast<const int32_t*>(w_scale + Np);
  for (int64_t mc = m0; mc < m1; mc += kMC) {
    const int64_t me = mc + kMC < m1 ? mc + kMC : m1;
    for (int64_t n = n0; n < n1; n += 16) {
      const int64_t cols = n1 - n < 16 ? n1 - n : 16;
      const int8_t* B = Q + (n / 16) * 16 * Kp;
      for (int64_t m = mc; m < me; m += kMR) {
        const int rows = int(me - m < kMR ? me - m : kMR);
        with_rows<kMR>(rows, [&](auto r) {
          micro_tile<decltype(r)::value>(Aq + m * Kp, Kp, B, w_scale, w_sum, n, cols, a_scale,
                                         a_zero, m, C, ldc, ep);
        });
      }
    }
  }
}

}  // namespace lowp_avx2

constexpr Int8Gemm kAvx2Int8Gemm{"avx2", lowp_avx2::quantize_rows, lowp_avx2::gemm_int8};

}  // namespace kernels
}  // namespace pybert
