// SIMD fp32 math for AVX-512 (16 lanes): exp / exp2, erf-GELU, tanh-GELU, tanh, log1p, softmax rows,
// and the 8 x 8 transpose the packing routines share.
//
// Include ONLY from translation units compiled with -mavx512f (-mavx512dq ...).
// Everything here is `static inline` over intrinsics (internal linkage), so the
// AVX-512 copies can never be merged with the AVX2 ones by the linker (ODR-safe).
//
// Polynomial coefficients are our own near-minimax fits (Lawson IRLS, see
// tools/fit_math.py).  Measured accuracy (test_gemm.cc, x in [-10, 10]):
//   gelu_erf:  |err| <= ~1.5e-7 * max(1, |x|)   vs double 0.5 x (1 + erf(x / sqrt 2))
//   gelu_tanh, tanh: a few ulp.
// Large |x| and +-inf never produce NaN (NaN inputs propagate).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace pybert {
namespace kernels {
namespace avx512 {

// e^x.  x = n ln2 + r, |r| <= ln2/2; e^r by a degree-6 polynomial (rel err ~1e-7
// before rounding); 2^n applied with vscalefps, which yields exact 0 / denormals
// on underflow and +inf on overflow, so no clamping is needed.
static inline __m512 exp_ps(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // Cody-Waite: ln2 = hi + lo, hi exact in 16 bits so n*hi is exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.3836828e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.374815e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1668225e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.1666642f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.4999999f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2), accurate in both tails:
//   t = |x| / sqrt 2 < 1:  erf(t) = t P(t^2)                (P degree 5)
//   1 <= t <= 4:           erfc(t) = exp(Q(t))              (Q degree 7)
//   t > 4:                 erfc(t) < 1.6e-8 -> taken as 0 (Phi = 0 or 1).
// Phi(x) = 0.5 + 0.5 sign(x) erf(t) near 0, 1 - 0.5 erfc(t) / 0.5 erfc(t) in the tails.
static inline __m512 normal_cdf_ps(__m512 x) {
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 t = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.707106781186547524f)));
  const __m512 s = _mm512_mul_ps(t, t);
  __m512 e = _mm512_set1_ps(-5.6601583e-4f);
  e = _mm512_fmadd_ps(e, s, _mm512_set1_ps(4.9247905e-3f));
  e = _mm512_fmadd_ps(e, s, _mm512_set1_ps(-2.6717708e-2f));
  e = _mm512_fmadd_ps(e, s, _mm512_set1_ps(0.112804115f));
  e = _mm512_fmadd_ps(e, s, _mm512_set1_ps(-0.37612355f));
  e = _mm512_fmadd_ps(e, s, _mm512_set1_ps(1.1283791f));
  e = _mm512_mul_ps(e, t);                                         // erf(t), t < 1
  const __m512 tc = _mm512_min_ps(_mm512_set1_ps(4.0f), t);  // NaN-propagating order
  __m512 q = _mm512_set1_ps(-2.168676e-5f);
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(4.4133523e-4f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(-4.204556e-3f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(2.520824e-2f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(-0.10841855f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(-0.6332199f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(-1.1295784f));
  q = _mm512_fmadd_ps(q, tc, _mm512_set1_ps(1.8803676e-4f));
  __m512 hc = _mm512_mul_ps(half, exp_ps(q));                     // 0.5 erfc(t), t >= 1
  hc = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(4.0f), _CMP_LE_OQ), hc);
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 tail = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), hc), hc);
  const __m512 core = _mm512_mask_blend_ps(neg, _mm512_fmadd_ps(half, e, half),
                                           _mm512_fnmadd_ps(half, e, half));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(1.0f), _CMP_LT_OQ), tail,
                              core);
}

// GELU, exact erf form (torch approximate='none'): x * Phi(x).  -inf -> -0.
static inline __m512 gelu_erf_ps(__m512 x) {
  const __m512 g = _mm512_mul_ps(x, normal_cdf_ps(x));
  return _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-16.0f), _CMP_LT_OQ),
                            _mm512_setzero_ps());
}

// GELU, tanh form (torch approximate='tanh'):
//   0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3).
// The exp argument is clamped at 88 so the denominator stays finite (-inf -> -inf*0 avoided).
static inline __m512 gelu_tanh_ps(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  // -2u = x * (c0 + c1 x^2), c0 = -2 sqrt(2/pi), c1 = c0 * 0.044715
  const __m512 m2u = _mm512_mul_ps(
      x, _mm512_fmadd_ps(x2, _mm512_set1_ps(-0.0713548162726f), _mm512_set1_ps(-1.59576912161f)));
  const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f),
                                 exp_ps(_mm512_min_ps(m2u, _mm512_set1_ps(88.0f))));
  const __m512 g = _mm512_div_ps(x, d);
  return _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-16.0f), _CMP_LT_OQ),
                            _mm512_setzero_ps());
}

// tanh(x): |x| < 0.625: x + x^3 P(x^2) (P degree 4); else 1 - 2 / (1 + exp(2|x|)) with
// |x| clamped at 9.5 (tanh(9.5) == 1 in fp32); the sign of x is copied back.
static inline __m512 tanh_ps(__m512 x) {
  const __m512 t = _mm512_abs_ps(x);
  const __m512 s = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-5.7049887e-3f);
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(2.063909e-2f));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-5.3739715e-2f));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(0.13331442f));
  p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(-0.3333328f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, s), x, x);
  const __m512 tc = _mm512_min_ps(_mm512_set1_ps(9.5f), t);  // NaN-propagating order
  const __m512 e = exp_ps(_mm512_add_ps(tc, tc));
  __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                             _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
  big = _mm512_or_ps(big, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));  // copysign
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big,
                              small);
}

// log(u) for finite u >= 1: u = 2^e m with m in [0.75, 1.5) (vgetmantps; vgetexpps gives e for
// m in [1, 2), one more where m < 1); log m = 2 atanh(s), s = (m - 1) / (m + 1) in [-1/7, 1/5],
// by its series to s^9 (the first term left out, 2 s^11 / 11, is below 4e-9 of log m); then
// + e ln 2 with ln 2 split hi + lo (hi exact in 16 bits, so e * hi is exact).
static inline __m512 log_ge1_ps(__m512 u) {
  const __m512 m = _mm512_getmant_ps(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
  __m512 e = _mm512_getexp_ps(u);
  e = _mm512_mask_add_ps(e, _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.0f), _CMP_LT_OQ), e,
                         _mm512_set1_ps(1.0f));
  const __m512 s = _mm512_div_ps(_mm512_sub_ps(m, _mm512_set1_ps(1.0f)),
                                 _mm512_add_ps(m, _mm512_set1_ps(1.0f)));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_set1_ps(2.0f / 9.0f);
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 7.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 5.0f));
  p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 3.0f));
  const __m512 log_m = _mm512_fmadd_ps(_mm512_mul_ps(p, s2), s, _mm512_add_ps(s, s));
  return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f),
                         _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), log_m));
}

// log(1 + x) for x >= 0, accurate for tiny x too: with u = 1 + x rounded, log(u) * x / (u - 1)
// cancels the rounding of u; u == 1 (x < 2^-24) gives x.
static inline __m512 log1p_nonneg_ps(__m512 x) {
  const __m512 u = _mm512_add_ps(_mm512_set1_ps(1.0f), x);
  const __m512 d = _mm512_sub_ps(u, _mm512_set1_ps(1.0f));
  const __m512 r = _mm512_mul_ps(log_ge1_ps(u), _mm512_div_ps(x, d));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_EQ_OQ), r, x);
}

// The Epilogue activations (gemm.h codes): 0 none, 1 gelu erf, 2 gelu tanh, 3 relu, 4 tanh,
// 5 log(1 + relu), 6 log(1 + log(1 + relu)).
static inline __m512 activate_ps(__m512 x, int activation) {
  switch (activation) {
    case 1: return gelu_erf_ps(x);
    case 2: return gelu_tanh_ps(x);
    case 3: return _mm512_max_ps(_mm512_setzero_ps(), x);  // NaN-propagating order
    case 4: return tanh_ps(x);
    case 5: return log1p_nonneg_ps(_mm512_max_ps(_mm512_setzero_ps(), x));
    case 6: return log1p_nonneg_ps(log1p_nonneg_ps(_mm512_max_ps(_mm512_setzero_ps(), x)));
    default: return x;
  }
}

// 2^t.  t = n + f, |f| <= 1/2; 2^f by a degree-6 polynomial (rel err ~1e-7); 2^n by vscalefps
// (0 / denormals on underflow).  Softmax folds its scale and log2 e into t with one FMA.
// vreduceps gives f = t - round(t) in one instruction (vroundscaleps takes two uops); exact.
static inline __m512 exp2_ps(__m512 t) {
  const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 n = _mm512_sub_ps(t, f);
  __m512 p = _mm512_set1_ps(1.5345792e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339993e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618489e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5503286e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24022646f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931472f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Lane mask of the first `valid` lanes (any int; <= 0 gives none, >= 16 all).
static inline __mmask16 tail_mask(int64_t valid) {
  return valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1);
}

// The first two passes of a softmax over N rows of s (stride lds), len columns: each row <-
// exp(scale * (row - max(row))) (the max taken before scaling, scale > 0), and inv[i] = 1 / its
// sum, broadcast; the caller's last pass multiplies by inv[i].  `row_max` (N floats), when given,
// holds the rows' maxima (taken where the rows were computed) and the first pass is skipped.
// The N rows go through each pass together, so that one row's horizontal max and sum overlap
// the others' work instead of stalling on their latency.
template <int N>
static inline void softmax_exp_rows(float* s, int64_t lds, int64_t len, float scale, __m512* inv,
                                    const float* row_max = nullptr) {
  // exp(scale (x - max)) = 2^(x c - max c), c = scale log2 e
  const float c = scale * 1.44269504088896341f;
  const __m512 sc = _mm512_set1_ps(c);
  __m512 sum[N], max[N];
  for (int i = 0; i < N; ++i) sum[i] = _mm512_setzero_ps();
  if (row_max) {
    for (int i = 0; i < N; ++i) max[i] = _mm512_set1_ps(row_max[i] * c);
  } else {
    __m512 mx[N];
    for (int i = 0; i < N; ++i) mx[i] = _mm512_set1_ps(-__builtin_inff());
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 m = tail_mask(len - j);
      for (int i = 0; i < N; ++i)
        mx[i] = _mm512_max_ps(mx[i], _mm512_mask_loadu_ps(mx[i], m, s + i * lds + j));
    }
    for (int i = 0; i < N; ++i) max[i] = _mm512_set1_ps(_mm512_reduce_max_ps(mx[i]) * c);
  }
  for (int64_t j = 0; j < len; j += 16) {
    const __mmask16 m = tail_mask(len - j);
    for (int i = 0; i < N; ++i) {
      const __m512 x = _mm512_maskz_loadu_ps(m, s + i * lds + j);
      const __m512 e = exp2_ps(_mm512_fmsub_ps(x, sc, max[i]));
      sum[i] = _mm512_mask_add_ps(sum[i], m, sum[i], e);
      _mm512_mask_storeu_ps(s + i * lds + j, m, e);
    }
  }
  for (int i = 0; i < N; ++i) inv[i] = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum[i]));
}

// Rows r[0..7] (8 floats each) -> columns: r[j] = (r_0[j], ..., r_7[j]) for j = 0..7.
static inline void transpose8x8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then rows 4-7
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

}  // namespace avx512
}  // namespace kernels
}  // namespace pybert
