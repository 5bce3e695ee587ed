// SIMD fp32 exp / erf / erf-GELU / tanh-GELU / tanh / log1p for AVX2 + FMA (8 lanes).
//
// Same algorithms and coefficients as simd_math_avx512.h but erf's table (8 pieces, not 16; see
// there and docs/tools/fit_simd_math.py).  Include ONLY from translation units compiled with
// -mavx2 -mfma.
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

// erf(t), t >= 0 (t >= 4 taken as 4), as simd_math_avx512.h's erf_table_ps with AVX2's
// 8-entry vpermps tables: [0, 4) in 8 pieces of width 1/2, piece i = trunc(2 t) a degree-6
// polynomial in v = 2 t - i in [0, 1) (docs/tools/fit_simd_math.py, |err| <= 9.1e-8 in fp32).
static inline __m256 erf_table_ps(__m256 t) {
  alignas(32) static const float kCoef[7][8] = {
    {-1.51242201e-08f, 0.520499885f, 0.842700779f, 0.966105163f, 0.995322287f, 0.999593019f,
     0.999977887f, 0.999999285f},
    {0.564191103f, 0.439389646f, 0.207553357f, 0.0594657026f, 0.0103335688f, 0.00108908233f,
     6.96096904e-05f, 2.69801808e-06f},
    {-2.55717187e-05f, -0.109821819f, -0.103769951f, -0.0446078181f, -0.0103348205f,
     -0.00136046426f, -0.000104160463f, -4.6958844e-06f},
    {-0.0468556955f, -0.0184609611f, 0.0172500536f, 0.0173980035f, 0.00603672769f, 0.00103794155f,
     9.6887874e-05f, 5.10391465e-06f},
    {-0.000481973111f, 0.0118663665f, 0.00447374862f, -0.00294219283f, -0.00218173978f,
     -0.000522165676f, -5.99792766e-05f, -3.66210588e-06f},
    {0.00428445032f, -0.000357552868f, -0.00242337235f, -0.000238124077f, 0.000460239185f,
     0.000166546059f, 2.32867642e-05f, 1.6098553e-06f},
    {-0.000612425269f, -0.000414791779f, 0.000320513471f, 0.000141559256f, -4.31903973e-05f,
     -2.60797369e-05f, -4.29752163e-06f, -3.26149092e-07f},
  };
  const __m256 t2 = _mm256_min_ps(_mm256_mul_ps(t, _mm256_set1_ps(2.0f)),
                                  _mm256_set1_ps(7.99999952f));  // NaN -> the second operand
  const __m256i i = _mm256_cvttps_epi32(t2);
  const __m256 v = _mm256_sub_ps(t2, _mm256_cvtepi32_ps(i));
  __m256 p = _mm256_permutevar8x32_ps(_mm256_load_ps(kCoef[6]), i);
  for (int d = 5; d >= 0; --d)
    p = _mm256_fmadd_ps(p, v, _mm256_permutevar8x32_ps(_mm256_load_ps(kCoef[d]), i));
  return p;
}

// GELU, exact erf form: (x + |x| erf(|x| / sqrt 2)) / 2, as simd_math_avx512.h's.
static inline __m256 gelu_erf_ps(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-16.0f), x);
  const __m256 a = abs_ps(x);
  const __m256 e = erf_table_ps(_mm256_mul_ps(a, _mm256_set1_ps(0.707106781186547524f)));
  return _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_fmadd_ps(a, e, x));
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
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
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
