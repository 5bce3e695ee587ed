// SIMD fp32 exp / erf-GELU / tanh-GELU / tanh / log1p for AVX2 + FMA (8 lanes).
//
// Same algorithms and coefficients as simd_math_avx512.h (see there and
// docs/tools/fit_simd_math.py); include ONLY from translation units compiled with -mavx2 -mfma.
// All functions are `static inline` over intrinsics (internal linkage, ODR-safe).
#pragma once
#include <immintrin.h>

namespace pybert {
namespace kernels {
namespace avx2 {

static inline __m256 abs_ps(__m256 x) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

// e^x, x clamped to [-87, 88] so that 2^n is a normal float built from exponent bits
// (results below e^-87 ~ 1.6e-38 are returned as ~1.6e-38 instead of 0/denormal).
static inline __m256 exp_ps(__m256 x) {
  // Operand order keeps NaN (min/max return the second operand when either is NaN).
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504089f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.3836828e-3f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.374815e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1668225e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.1666642f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.4999999f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i scale =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

// Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2); see simd_math_avx512.h.
static inline __m256 normal_cdf_ps(__m256 x) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 t = abs_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.707106781186547524f)));
  const __m256 s = _mm256_mul_ps(t, t);
  __m256 e = _mm256_set1_ps(-5.6601583e-4f);
  e = _mm256_fmadd_ps(e, s, _mm256_set1_ps(4.9247905e-3f));
  e = _mm256_fmadd_ps(e, s, _mm256_set1_ps(-2.6717708e-2f));
  e = _mm256_fmadd_ps(e, s, _mm256_set1_ps(0.112804115f));
  e = _mm256_fmadd_ps(e, s, _mm256_set1_ps(-0.37612355f));
  e = _mm256_fmadd_ps(e, s, _mm256_set1_ps(1.1283791f));
  e = _mm256_mul_ps(e, t);                                         // erf(t), t < 1
  const __m256 tc = _mm256_min_ps(_mm256_set1_ps(4.0f), t);
  __m256 q = _mm256_set1_ps(-2.168676e-5f);
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(4.4133523e-4f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(-4.204556e-3f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(2.520824e-2f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(-0.10841855f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(-0.6332199f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(-1.1295784f));
  q = _mm256_fmadd_ps(q, tc, _mm256_set1_ps(1.8803676e-4f));
  __m256 hc = _mm256_mul_ps(half, exp_ps(q));                     // 0.5 erfc(t), t >= 1
  hc = _mm256_and_ps(hc, _mm256_cmp_ps(t, _mm256_set1_ps(4.0f), _CMP_LE_OQ));
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 tail = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), hc), hc, neg);
  const __m256 core =
      _mm256_blendv_ps(_mm256_fmadd_ps(half, e, half), _mm256_fnmadd_ps(half, e, half), neg);
  return _mm256_blendv_ps(tail, core, _mm256_cmp_ps(t, _mm256_set1_ps(1.0f), _CMP_LT_OQ));
}

// GELU, exact erf form: x * Phi(x).  -inf -> 0.
static inline __m256 gelu_erf_ps(__m256 x) {
  const __m256 g = _mm256_mul_ps(x, normal_cdf_ps(x));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-16.0f), _CMP_LT_OQ), g);
}

// GELU, tanh form: x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
static inline __m256 gelu_tanh_ps(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 m2u = _mm256_mul_ps(
      x, _mm256_fmadd_ps(x2, _mm256_set1_ps(-0.0713548162726f), _mm256_set1_ps(-1.59576912161f)));
  const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), exp_ps(m2u));
  const __m256 g = _mm256_div_ps(x, d);
  return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-16.0f), _CMP_LT_OQ), g);
}

// tanh(x): |x| < 0.625: x + x^3 P(x^2); else copysign(1 - 2 / (1 + exp(2 min(|x|, 9.5))), x).
static inline __m256 tanh_ps(__m256 x) {
  const __m256 t = abs_ps(x);
  const __m256 s = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.7049887e-3f);
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(2.063909e-2f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-5.3739715e-2f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.13331442f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.3333328f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, s), x, x);
  const __m256 tc = _mm256_min_ps(_mm256_set1_ps(9.5f), t);
  const __m256 e = exp_ps(_mm256_add_ps(tc, tc));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                             _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  big = _mm256_or_ps(big, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));  // copysign
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(t, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

// log(u) for finite u >= 1; see simd_math_avx512.h. m in [0.75, 1.5) from the exponent bits:
// the [1, 2) mantissa, halved (and e + 1) from 1.5 up.
static inline __m256 log_ge1_ps(__m256 u) {
  const __m256i bits = _mm256_castps_si256(u);
  const __m256i exponent = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
  const __m256 high = _mm256_cmp_ps(m, _mm256_set1_ps(1.5f), _CMP_GE_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), high);
  const __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(exponent),
                                 _mm256_and_ps(high, _mm256_set1_ps(1.0f)));
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(m, _mm256_set1_ps(1.0f)),
                                 _mm256_add_ps(m, _mm256_set1_ps(1.0f)));
  const __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = _mm256_set1_ps(2.0f / 9.0f);
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(2.0f / 7.0f));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(2.0f / 5.0f));
  p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(2.0f / 3.0f));
  const __m256 log_m = _mm256_fmadd_ps(_mm256_mul_ps(p, s2), s, _mm256_add_ps(s, s));
  return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f),
                         _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), log_m));
}

// log(1 + x) for x >= 0; see simd_math_avx512.h.
static inline __m256 log1p_nonneg_ps(__m256 x) {
  const __m256 u = _mm256_add_ps(_mm256_set1_ps(1.0f), x);
  const __m256 d = _mm256_sub_ps(u, _mm256_set1_ps(1.0f));
  const __m256 r = _mm256_mul_ps(log_ge1_ps(u), _mm256_div_ps(x, d));
  return _mm256_blendv_ps(r, x, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

// The Epilogue activations (gemm.h codes): 0 none, 1 gelu erf, 2 gelu tanh, 3 relu, 4 tanh,
// 5 log(1 + relu), 6 log(1 + log(1 + relu)).
static inline __m256 activate_ps(__m256 x, int activation) {
  switch (activation) {
    case 1: return gelu_erf_ps(x);
    case 2: return gelu_tanh_ps(x);
    case 3: return _mm256_max_ps(_mm256_setzero_ps(), x);  // NaN-propagating order
    case 4: return tanh_ps(x);
    case 5: return log1p_nonneg_ps(_mm256_max_ps(_mm256_setzero_ps(), x));
    case 6: return log1p_nonneg_ps(log1p_nonneg_ps(_mm256_max_ps(_mm256_setzero_ps(), x)));
    default: return x;
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace pybert
