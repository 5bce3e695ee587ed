// AVX512-VNNI int8 GEMM kernel and the AVX-512 activation quantizer (also used by AMX-INT8).  Build:
//   -O3 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni
//
// ODR: no inline/template entity with external linkage (anonymous-namespace helpers only,
// no std:: templates).
//
// vpdpbusd multiplies unsigned by signed bytes: activations are stored as u8 u (quantize_rows(..,
// u8_shift = true)) and the kernel subtracts z_m * sum_k q_w[n, k] (the sum precomputed in the
// packed weight): exact.
// Micro-tile kMR rows x kNV panels of 16 columns: kMR * kNV zmm int32 accumulators; per 4 k:
// kNV panel loads (64 bytes: 16 columns x 4 k), kMR broadcasts of 4 A bytes, kMR * kNV
// vpdpbusd.  Blocking as the fp32 kernel: for m block (kMC rows) / n group / m strip / all K,
// with the tile dequantized + epilogued straight from the registers.

// GCC 12 false positives on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstring>

#include "kernels/x86/gemm_lowp_isa.h"
#include "kernels/x86/simd_math_avx512.h"
#include "kernels/blocking.h"

namespace pybert {
namespace kernels {
namespace lowp_vnni {
namespace {

constexpr int kMR = 8;
constexpr int kNV = 3;
constexpr int64_t kMC = 256;


struct WeightView {
  const int8_t* q;      // panels
  const float* scale;   // (Np)
  const int32_t* sum;   // (Np) sum_k q
  int64_t panel;        // bytes per panel = 16 * Kp
};

// C rows [m, m + R) x columns [n, n + 16 NV) & cols of the epilogue of
// A (R rows of Kp u8, row stride Kp) @ panels starting at column n.
template <int R, int NV>
void micro_tile(const uint8_t* A, int64_t Kp, const WeightView& w, int64_t n, int64_t cols,
                const float* a_scale, const int32_t* a_zero, int64_t m, float* C, int64_t ldc,
                const Epilogue& ep) {
  __m512i acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  const int8_t* B = w.q + (n / 16) * w.panel;
  const int64_t k4n = Kp / 4;
#pragma GCC unroll 2
  for (int64_t k4 = 0; k4 < k4n; ++k4) {
    __m512i b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(B + v * w.panel + 64 * k4);
    for (int i = 0; i < R; ++i) {
      int32_t a4;
      std::memcpy(&a4, A + i * Kp + 4 * k4, 4);
      const __m512i a = _mm512_set1_epi32(a4);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], a, b[v]);
    }
  }
  for (int v = 0; v < NV; ++v) {
    const __mmask16 mask = avx512::tail_mask(cols - 16 * v);
    const int64_t nv = n + 16 * v;
    const __m512i wsum = _mm512_loadu_si512(w.sum + nv);
    const __m512 ws = _mm512_loadu_ps(w.scale + nv);
    const __m512 bias = ep.bias ? _mm512_maskz_loadu_ps(mask, ep.bias + nv) : _mm512_setzero_ps();
    for (int i = 0; i < R; ++i) {
      const __m512i zero = _mm512_mullo_epi32(_mm512_set1_epi32(a_zero[m + i]), wsum);
      __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][v], zero));
      x = _mm512_mul_ps(x, _mm512_mul_ps(_mm512_set1_ps(a_scale[m + i]), ws));
      if (ep.bias) x = _mm512_add_ps(x, bias);
      x = avx512::activate_ps(x, ep.activation);
      if (ep.residual)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, ep.residual + (m + i) * ep.ldr + nv));
      _mm512_mask_storeu_ps(C + (m + i) * ldc + nv, mask, x);
    }
  }
}

// One fp32 row (K) -> (Kp) int8 u - 128, or uint8 u; returns the row scale s_m and sets *zero
// to the kernel's zero point (gemm_lowp.h).  64 values per step: 4 x vcvtps2dq (+ z - 128) ->
// vpackssdw x 2 -> vpacksswb (the saturation is the clamp to [0, 255]) -> vpermd (lane fix-up).
// The padding K..Kp holds z - 128 (x = 0), against zero weights.
float quantize_row(const float* a, int64_t K, int64_t Kp, int8_t* out, bool u8_shift,
                   int32_t* zero) {
  __m512 lo4[4], hi4[4];
  for (int j = 0; j < 4; ++j) lo4[j] = hi4[j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 v = _mm512_loadu_ps(a + k + 16 * j);
      lo4[j] = _mm512_min_ps(lo4[j], v);
      hi4[j] = _mm512_max_ps(hi4[j], v);
    }
  for (; k < K; k += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(avx512::tail_mask(K - k), a + k);
    lo4[0] = _mm512_min_ps(lo4[0], v);
    hi4[0] = _mm512_max_ps(hi4[0], v);
  }
  const float lo = _mm512_reduce_min_ps(
      _mm512_min_ps(_mm512_min_ps(lo4[0], lo4[1]), _mm512_min_ps(lo4[2], lo4[3])));
  const float hi = _mm512_reduce_max_ps(
      _mm512_max_ps(_mm512_max_ps(hi4[0], hi4[1]), _mm512_max_ps(hi4[2], hi4[3])));
  const float inv_s = hi > lo ? 255.0f / (hi - lo) : 0.f;
  const int32_t z = int32_t(__builtin_nearbyintf(-lo * inv_s));
  const __m512 inv = _mm512_set1_ps(inv_s);
  const __m512i offset = _mm512_set1_epi32(z - 128);
  const __m512i shift = _mm512_set1_epi8(u8_shift ? char(0x80) : 0);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (k = 0; k < Kp; k += 64) {
    __m512i q[4];
    for (int j = 0; j < 4; ++j) {
      const __m512 v = k + 64 <= K ? _mm512_loadu_ps(a + k + 16 * j)
                                   : _mm512_maskz_loadu_ps(avx512::tail_mask(K - k - 16 * j),
                                                           a + k + 16 * j);
      q[j] = _mm512_add_epi32(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v, inv),
                                                       _MM_FROUND_TO_NEAREST_INT |
                                                           _MM_FROUND_NO_EXC),
                              offset);
    }
    const __m512i b =
        _mm512_packs_epi16(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]));
    _mm512_storeu_si512(out + k, _mm512_xor_si512(_mm512_permutexvar_epi32(order, b), shift));
  }
  *zero = u8_shift ? z : z - 128;
  return (hi - lo) / 255.0f;
}

}  // namespace

void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero, bool u8_shift) {
  const int64_t Kp = round_up(K > 0 ? K : 1, 64);
  for (int64_t m = m0; m < m1; ++m)
    a_scale[m] = quantize_row(A + m * lda, K, Kp, Aq + m * Kp, u8_shift, a_zero + m);
  if (m1 == M)
    std::memset(Aq + M * Kp, u8_shift ? 0x80 : 0, size_t(round_up(M + 15, 16) - M) * size_t(Kp));
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  const int64_t Np = round_up(N, 32), Kp = round_up(K > 0 ? K : 1, 64);
  WeightView w;
  w.q = static_cast<const int8_t*>(packed);
  w.scale = reinterpret_cast<const float*>(w.q + Np * Kp);
  w.sum = reinterpret_cast<const int32_t*>(w.scale + Np);
  w.panel = 16 * Kp;
  const uint8_t* A = reinterpret_cast<const uint8_t*>(Aq);
  for (int64_t mc = m0; mc < m1; mc += kMC) {
    const int64_t me = mc + kMC < m1 ? mc + kMC : m1;
    for (int64_t n = n0; n < n1; n += 16 * kNV) {
      const int64_t cols = n1 - n < 16 * kNV ? n1 - n : 16 * kNV;
      const int nv = int((cols + 15) / 16);
      for (int64_t m = mc; m < me; m += kMR) {
        const int rows = int(me - m < kMR ? me - m : kMR);
        const uint8_t* a = A + m * Kp;
        with_rows<kMR>(rows, [&](auto r) {
          constexpr int R = decltype(r)::value;
          if (nv == 3)
            micro_tile<R, 3>(a, Kp, w, n, cols, a_scale, a_zero, m, C, ldc, ep);
          else if (nv == 2)
            micro_tile<R, 2>(a, Kp, w, n, cols, a_scale, a_zero, m, C, ldc, ep);
          else
            micro_tile<R, 1>(a, Kp, w, n, cols, a_scale, a_zero, m, C, ldc, ep);
        });
      }
    }
  }
}

void quantize_rows_u8(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                      int8_t* Aq, float* a_scale, int32_t* a_zero) {
  quantize_rows(A, lda, M, K, m0, m1, Aq, a_scale, a_zero, true);
}

void quantize_rows_s8(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                      int8_t* Aq, float* a_scale, int32_t* a_zero) {
  quantize_rows(A, lda, M, K, m0, m1, Aq, a_scale, a_zero, false);
}

}  // namespace lowp_vnni

constexpr Int8Gemm kVnniInt8Gemm{"avx512_vnni", lowp_vnni::quantize_rows_u8, lowp_vnni::gemm_int8};

}  // namespace kernels
}  // namespace pybert
