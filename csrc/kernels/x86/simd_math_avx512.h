// SIMD fp32 math for AVX-512 (16 lanes): exp / exp2, erf, erf-GELU, tanh-GELU, tanh, log1p,
// softmax rows, and the 8 x 8 transpose the packing routines share.
//
// Include ONLY from translation units compiled with -mavx512f (-mavx512dq ...).
// Everything here is `static inline` over intrinsics (internal linkage), so the
// AVX-512 copies can never be merged with the AVX2 ones by the linker (ODR-safe).
//
// Polynomial coefficients are our own near-minimax fits (Lawson IRLS, see
// docs/tools/fit_simd_math.py).  Accuracy (tests/test_precision.py, against torch on [-12, 12]):
//   gelu_erf:  |err| <= 1.5e-7 * max(1, |x|) (erf to 6.4e-8: ~0.5e-7 * |x| + rounding)
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

// erf(t), t >= 0 (t >= 4 taken as 4: erf(4) = 1 - 1.5e-8 rounds to 1).  [0, 4) in 16 pieces
// of width 1/4: piece i = trunc(4 t) is a degree-5 polynomial in v = 4 t - i in [0, 1), whose
// coefficients each lane picks from a 16-entry table with one vpermps per degree (fit:
// docs/tools/fit_simd_math.py, |err| <= 6.4e-8 evaluated in fp32).  NaN -> erf(4).
static inline __m512 erf_table_ps(__m512 t) {
  alignas(64) static const float kCoef[6][16] = {
    {2.68831357e-09f, 0.276326388f, 0.520499885f, 0.711155653f, 0.842700779f, 0.92290014f,
     0.966105163f, 0.986671686f, 0.995322287f, 0.998537302f, 0.999593019f, 0.999899387f,
     0.999977887f, 0.999995708f, 0.999999285f, 0.999999881f},
    {0.282094598f, 0.265003115f, 0.219695285f, 0.160732672f, 0.103776999f, 0.0591304712f,
     0.0297326986f, 0.0131937861f, 0.00516673177f, 0.00178555318f, 0.000544551527f,
     0.000146559294f, 3.48092508e-05f, 7.29594512e-06f, 1.34949937e-06f, 2.20275751e-07f},
    {2.03970012e-06f, -0.0165577997f, -0.0274577253f, -0.0301361848f, -0.0259456653f,
     -0.0184804257f, -0.0111512085f, -0.00577272568f, -0.00258321315f, -0.00100407843f,
     -0.000340126222f, -0.000100647063f, -2.60618399e-05f, -5.91322168e-06f, -1.17679951e-06f,
     -2.05585096e-07f},
    {-0.0058850632f, -0.00485160388f, -0.00230685226f, 0.000412960944f, 0.00216792524f,
     0.00262719812f, 0.00217452203f, 0.00141079817f, 0.000752854045f, 0.000338123151f,
     0.000129469568f, 4.26082697e-05f, 1.21173143e-05f, 2.98930763e-06f, 6.41525787e-07f,
     1.20024851e-07f},
    {1.37953539e-05f, 0.000535540283f, 0.00075139472f, 0.000600788277f, 0.000259666587f,
     -4.22939956e-05f, -0.000187213969f, -0.000192309191f, -0.000133499881f, -7.19983509e-05f,
     -3.17044869e-05f, -1.16783067e-05f, -3.64859466e-06f, -9.75418516e-07f, -2.24487678e-07f,
     -4.46694699e-08f},
    {0.00010101113f, 4.42430392e-05f, -2.63488946e-05f, -6.50758957e-05f, -5.95936181e-05f,
     -2.99308958e-05f, -2.27266241e-06f, 1.10438104e-05f, 1.21454514e-05f, 8.16505144e-06f,
     4.13970065e-06f, 1.68922986e-06f, 5.71589396e-07f, 1.6306889e-07f, 3.96330684e-08f,
     8.26395397e-09f},
  };
  const __m512 t4 = _mm512_min_ps(_mm512_mul_ps(t, _mm512_set1_ps(4.0f)),
                                  _mm512_set1_ps(15.9999990f));  // NaN -> the second operand
  const __m512i i = _mm512_cvttps_epi32(t4);
  const __m512 v = _mm512_sub_ps(t4, _mm512_cvtepi32_ps(i));
  __m512 p = _mm512_permutexvar_ps(i, _mm512_load_ps(kCoef[5]));
  for (int d = 4; d >= 0; --d)
    p = _mm512_fmadd_ps(p, v, _mm512_permutexvar_ps(i, _mm512_load_ps(kCoef[d])));
  return p;
}

// GELU, exact erf form (torch approximate='none'): x Phi(x) = (x + |x| erf(|x| / sqrt 2)) / 2
// (erf is odd, so x erf(x / sqrt 2) = |x| erf(|x| / sqrt 2)).  From |x| >= 4 sqrt 2 erf is 1 in
// fp32 and the result is x or 0 exactly; -inf -> 0 (x clamped at -16 first); NaN propagates
// (max_ps returns its second operand, x, when it is NaN).  One table erf instead of a
// polynomial and an exp over both branches: ~20 vector operations against ~40.
static inline __m512 gelu_erf_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-16.0f), x);
  const __m512 a = _mm512_abs_ps(x);
  const __m512 e = erf_table_ps(_mm512_mul_ps(a, _mm512_set1_ps(0.707106781186547524f)));
  return _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_fmadd_ps(a, e, x));
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
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
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
