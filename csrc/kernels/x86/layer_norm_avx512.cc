// LayerNorm on AVX-512 (layer_norm.h's contract): x86-64 CPUs with AVX-512 run the Eigen row
// kernels with this one in place of Eigen's (dispatch.cc).  Per row of `cols` floats, three
// passes over the row while it sits in L1:
//   v = x [+ residual] -> y,  mean = sum v / cols
//   var = sum (v - mean)^2 / cols                     (centred: as close to torch as two passes)
//   y = (v - mean) * (1 / sqrt(var + eps)) * gamma + beta
// Sums in four 16-lane accumulators over 64 columns a step (a fixed order: the result does not
// depend on where x or y lie), masked for the last cols % 16.  y may alias x or residual.
// ODR: only intrinsics and internal-linkage helpers (see gemm_avx512.cc).

// GCC 12 false positives on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/families.h"
#include "kernels/x86/simd_math_avx512.h"

namespace pybert {
namespace kernels {
namespace avx512 {
namespace {

// The sum of the 4 accumulators' 64 lanes in a fixed order.
float reduce4(const __m512* s) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
}

void layer_norm_row(const float* x, const float* residual, float* y, int64_t cols,
                    const float* gamma, const float* beta, float eps) {
  const bool copy = residual || y != x;
  __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                 _mm512_setzero_ps()};
  int64_t c = 0;
  for (; c + 64 <= cols; c += 64)
    for (int j = 0; j < 4; ++j) {
      __m512 v = _mm512_loadu_ps(x + c + 16 * j);
      if (residual) v = _mm512_add_ps(v, _mm512_loadu_ps(residual + c + 16 * j));
      if (copy) _mm512_storeu_ps(y + c + 16 * j, v);
      s[j] = _mm512_add_ps(s[j], v);
    }
  for (; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    __m512 v = _mm512_maskz_loadu_ps(m, x + c);
    if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + c));
    if (copy) _mm512_mask_storeu_ps(y + c, m, v);
    s[0] = _mm512_add_ps(s[0], v);
  }
  const __m512 mean = _mm512_set1_ps(reduce4(s) / static_cast<float>(cols));

  for (int j = 0; j < 4; ++j) s[j] = _mm512_setzero_ps();
  for (c = 0; c + 64 <= cols; c += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(y + c + 16 * j), mean);
      s[j] = _mm512_fmadd_ps(d, d, s[j]);
    }
  for (; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, y + c), mean);
    s[0] = _mm512_fmadd_ps(d, d, s[0]);
  }
  const float var = reduce4(s) / static_cast<float>(cols);
  const __m512 inv_std = _mm512_set1_ps(1.0f / std::sqrt(var + eps));

  for (c = 0; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + c), mean), inv_std);
    _mm512_mask_storeu_ps(y + c, m,
                          _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + c),
                                          _mm512_maskz_loadu_ps(m, beta + c)));
  }
}

void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps) {
  for (int64_t r = 0; r < rows; ++r)
    layer_norm_row(x + r * cols, residual ? residual + r * cols : nullptr, y + r * cols, cols,
                   gamma, beta, eps);
}

}  // namespace
}  // namespace avx512

const decltype(VectorMath::layer_norm) kAvx512LayerNorm = avx512::layer_norm;

}  // namespace kernels
}  // namespace pybert
