// Scalar pieces shared by the portable families (generic/, and arm/ where a step has no vector
// form yet) and the packers: bf16 rounding, the GEMM epilogue and the int8 activation quantizer, with exactly the arithmetic
// the x86 kernels' contracts give (gemm.h, gemm_lowp.h).
//
// ISA-neutral, in an unnamed namespace, calling only C library functions (erff, tanhf,
// nearbyintf): each file gets its own copy, so no instance is shared between files built with
// different flags (see blocking.h).
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#include "kernels/blocking.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"

namespace pybert {
namespace kernels {
namespace {

// bf16 round-to-nearest-even of x, exactly as vcvtne2ps2bf16: denormals -> signed 0,
// NaN -> quiet NaN.  (The packers' rounding, and the arm bf16 family's.)
inline uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) == 0) return uint16_t((u >> 16) & 0x8000u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// Epilogue::activation codes: 0 none, 1 gelu (erf), 2 gelu (tanh), 3 relu, 4 tanh,
// 5 log(1 + relu), 6 log(1 + log(1 + relu)).
inline float activate_scalar(float x, int activation) {
  switch (activation) {
    case 1:
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case 2: {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case 3:
      return x > 0.0f ? x : 0.0f;
    case 4:
      return tanhf(x);
    case 5:
      return log1pf(x > 0.0f ? x : 0.0f);
    case 6:
      return log1pf(log1pf(x > 0.0f ? x : 0.0f));
    default:
      return x;
  }
}

// c[j] = act(c[j] + bias[n + j]) + residual[m, n + j] for j < cols: the epilogue on one row of a
// finished tile (row m, columns [n, n + cols)).
inline void epilogue_row(float* c, int64_t cols, int64_t m, int64_t n, const Epilogue& ep) {
  if (!ep.bias && !ep.activation && !ep.residual) return;
  const float* r = ep.residual ? ep.residual + m * ep.ldr + n : nullptr;
  for (int64_t j = 0; j < cols; ++j) {
    float x = c[j];
    if (ep.bias) x += ep.bias[n + j];
    x = activate_scalar(x, ep.activation);
    if (r) x += r[j];
    c[j] = x;
  }
}

// y (cols): row m of a finished tile, columns [n, n + cols), after epilogue_row, folded into its
// pooled row (Epilogue::pool 1 max, 2 sum).
inline void pool_row(const float* y, int64_t cols, int64_t m, int64_t n, const Epilogue& ep) {
  float* p = ep.pooled + ep.segment[m] * ep.ldp + n;
  for (int64_t j = 0; j < cols; ++j) p[j] = ep.pool == 1 ? (y[j] > p[j] ? y[j] : p[j]) : p[j] + y[j];
}

// One fp32 row (K) -> (Kp) int8 u - 128 (gemm_lowp.h's signed storage); returns the row scale
// s_m and sets *zero = z_m - 128.  The padding K..Kp is 0 (against zero weights).
inline float quantize_row_signed(const float* a, int64_t K, int64_t Kp, int8_t* out,
                                 int32_t* zero) {
  float lo = 0.f, hi = 0.f;
  for (int64_t k = 0; k < K; ++k) {
    lo = a[k] < lo ? a[k] : lo;
    hi = a[k] > hi ? a[k] : hi;
  }
  const float inv_s = hi > lo ? 255.0f / (hi - lo) : 0.f;
  const int32_t z = int32_t(nearbyintf(-lo * inv_s));
  for (int64_t k = 0; k < K; ++k) {
    const float q = nearbyintf(a[k] * inv_s) + float(z - 128);
    out[k] = int8_t(q > 127.f ? 127.f : q < -128.f ? -128.f : q);
  }
  for (int64_t k = K; k < Kp; ++k) out[k] = 0;
  *zero = z - 128;
  return (hi - lo) / 255.0f;
}

// Rows [m0, m1) of the signed format; the call with m1 == M zero-fills the padding rows.
inline void quantize_rows_signed(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0,
                                 int64_t m1, int8_t* Aq, float* a_scale, int32_t* a_zero) {
  const int64_t Kp = int8_padded_k(K);
  for (int64_t m = m0; m < m1; ++m)
    a_scale[m] = quantize_row_signed(A + m * lda, K, Kp, Aq + m * Kp, a_zero + m);
  if (m1 == M) std::memset(Aq + M * Kp, 0, size_t(lowp_padded_m(M) - M) * size_t(Kp));
}

// The packed int8 weight's parts (gemm_lowp.h): panels, then Np scales s_n, then Np sums.
struct Int8Weight {
  Int8Weight(const void* packed, int64_t N, int64_t K)
      : Np(lowp_padded_n(N)), Kp(int8_padded_k(K)), q(static_cast<const int8_t*>(packed)),
        scale(reinterpret_cast<const float*>(q + Np * Kp)),
        sum(reinterpret_cast<const int32_t*>(scale + Np)) {}
  int64_t Np, Kp;
  const int8_t* q;       // (Np / 16, Kp / 4, 16, 4)
  const float* scale;    // (Np) s_n
  const int32_t* sum;    // (Np) sum_k q[n, k]
};

// One int8 GEMM output before the epilogue: s_m * s_n * (acc - a_zero[m] * sum_k q_w[n, k]).
inline float dequantize(int32_t acc, int32_t a_zero, float a_scale, const Int8Weight& w,
                        int64_t n) {
  return float(acc - a_zero * w.sum[n]) * (a_scale * w.scale[n]);
}

// The (m, n) block loop of a kernel that reads A in place: depth blocks of at most kc_max, row
// blocks of mc rows, panels of NR columns, tiles of MR rows; tile(r, A, lda, B, kc, C, ldc, cols,
// accumulate) computes a tile of r rows (as gemm.h, the panel slice B is (kc, NR)), and the
// epilogue runs on each tile after its last depth block.  A pooled epilogue (Epilogue::pool) runs
// all of K in one depth block into a tile on the stack, folded into `pooled` (C not touched).
template <int MR, int64_t NR, typename Tile>
void tiled_gemm(const float* A, int64_t lda, const float* packed, int64_t K, float* C, int64_t ldc,
                int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep, int64_t kc_max,
                int64_t mc, const Tile& tile) {
  const bool pooled = ep.pool != 0;
  const DepthBlocks depth(K, pooled ? (K > kc_max ? K : kc_max) : kc_max);
  float pooled_tile[MR * NR];  // (MR, NR): a pooled call's finished tile, before it is folded
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t me = mb + mc < m1 ? mb + mc : m1;
    for (int64_t kb = 0; kb < depth.count; ++kb) {
      const int64_t k0 = kb * depth.size;
      const int64_t kc = K - k0 < depth.size ? K - k0 : depth.size;
      for (int64_t n = n0; n < n1; n += NR) {
        const int64_t cols = n1 - n < NR ? n1 - n : NR;
        const float* B = packed + (n / NR) * K * NR + k0 * NR;
        for (int64_t m = mb; m < me; m += MR) {
          const int rows = int(me - m < MR ? me - m : MR);
          float* Ct = pooled ? pooled_tile : C + m * ldc + n;
          const int64_t ldt = pooled ? NR : ldc;
          tile(rows, A + m * lda + k0, lda, B, kc, Ct, ldt, cols, kb > 0);
          if (kb < depth.count - 1) continue;
          for (int i = 0; i < rows; ++i) {
            epilogue_row(Ct + i * ldt, cols, m + i, n, ep);
            if (pooled) pool_row(Ct + i * ldt, cols, m + i, n, ep);
          }
        }
      }
    }
  }
}

// The block loop of an int8 kernel on the packed weight (panels of 16 columns): tile(A, Kp, B,
// acc) computes acc (MR, 16) = Aq rows [m, m + MR) @ panel B exactly (rows past m1 are padding,
// gemm_lowp.h), then each row is dequantized and the epilogue applied.
template <int MR, typename Tile>
void tiled_gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero,
                     const void* packed, int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0,
                     int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep, const Tile& tile) {
  const Int8Weight w(packed, N, K);
  for (int64_t n = n0; n < n1; n += 16) {
    const int64_t cols = n1 - n < 16 ? n1 - n : 16;
    const int8_t* B = w.q + (n / 16) * 16 * w.Kp;  // (Kp / 4, 16, 4)
    for (int64_t m = m0; m < m1; m += MR) {
      const int rows = int(m1 - m < MR ? m1 - m : MR);
      int32_t acc[MR][16];
      tile(Aq + m * w.Kp, w.Kp, B, acc);
      for (int i = 0; i < rows; ++i) {
        float* c = C + (m + i) * ldc + n;
        for (int64_t j = 0; j < cols; ++j)
          c[j] = dequantize(acc[i][j], a_zero[m + i], a_scale[m + i], w, n + j);
        epilogue_row(c, cols, m + i, n, ep);
      }
    }
  }
}

// sum_t a[t] b[t], t < n, in 8 interleaved partial sums (lane l takes t = l mod 8) added by a
// fixed tree: independent lanes, so the compiler vectorizes the loop on any SIMD baseline.
inline float dot_lanes(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 8;
  float lane[kLanes] = {};
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += a[t + l] * b[t + l];
  for (int l = 0; t < n; ++t, ++l) lane[l] += a[t] * b[t];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
  return lane[0];
}

// Floats of attention_rows' scratch: the keys transposed (d, len), one row of scores (len) and
// one output row (d).
inline int64_t attention_rows_scratch_floats(int64_t len, int64_t d) { return d * len + len + d; }

// Attention of one head in fp32 over rows of q, k, v (row strides ld_q, ld_k, ld_v), one query
// at a time: scores (len), softmax, probabilities through round_p (identity in fp32, bf16
// rounding in the bf16 kernels), then store(i, t, value) for each output element.  Every inner
// loop runs along a contiguous row (keys transposed once into the scratch), so it vectorizes:
//   s[j] = sum_t q[i, t] kT[t, j]      o[t] = sum_j p[j] v[j, t]
template <typename RoundP, typename Store>
void attention_rows(const float* q, int64_t ld_q, const float* k, int64_t ld_k, const float* v,
                    int64_t ld_v, int64_t len, int64_t d, float scale, float* scratch,
                    const RoundP& round_p, const Store& store) {
  float* kt = scratch;     // (d, len) k transposed
  float* s = kt + d * len;  // (len) scores, then probabilities
  float* o = s + len;       // (d) one output row
  for (int64_t j = 0; j < len; ++j)
    for (int64_t t = 0; t < d; ++t) kt[t * len + j] = k[j * ld_k + t];
  for (int64_t i = 0; i < len; ++i) {
    for (int64_t j = 0; j < len; ++j) s[j] = 0.0f;
    for (int64_t t = 0; t < d; ++t) {
      const float qt = q[i * ld_q + t];
      const float* kr = kt + t * len;
      for (int64_t j = 0; j < len; ++j) s[j] += qt * kr[j];
    }
    float max = -INFINITY;
    for (int64_t j = 0; j < len; ++j) max = s[j] > max ? s[j] : max;
    float sum = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      s[j] = expf((s[j] - max) * scale);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < len; ++j) s[j] = round_p(s[j] * inv);
    for (int64_t t = 0; t < d; ++t) o[t] = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const float p = s[j];
      const float* vj = v + j * ld_v;
      for (int64_t t = 0; t < d; ++t) o[t] += p * vj[t];
    }
    for (int64_t t = 0; t < d; ++t) store(i, t, o[t]);
  }
}

}  // namespace
}  // namespace kernels
}  // namespace pybert
