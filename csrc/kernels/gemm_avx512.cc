// AVX-512 fp32 GEMM micro-kernel.  Build: -O3 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
//
// ODR: this file defines no inline/template entity with external linkage (helpers are
// in an anonymous namespace, no std:: templates), so nothing compiled with AVX-512 can
// be picked by the linker for code that must run on an AVX2 machine.
//
// Blocking (one gemm_packed call, single thread):
//   for mc  (kMC rows of A: the A block, kMC x kc, stays in L2)
//    for kc (K split into near-equal blocks <= kKC)
//     for n panel (kNR columns: the packed (kc, kNR) panel slice stays in L1/L2)
//      for m strip (kMR rows): C tile (kMR, kNR) += A strip (kMR, kc) @ panel (kc, kNR)
// The micro-kernel keeps the kMR x kNR tile in kMR * kNV zmm accumulators, loads kNV
// panel vectors and broadcasts kMR scalars of A (read in place, row stride lda) per k.
// After the last k block the tile gets the epilogue while still in L1.

// GCC 12 false positive on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/gemm_isa.h"
#include "kernels/simd_math_avx512.h"

namespace pybert {
namespace kernels {
namespace avx512 {
namespace {

// Tile 8 x 48: 24 zmm accumulators + 3 panel vectors + 1 broadcast; per k, 24 FMAs
// against 3 vector loads + 8 broadcasts (the FMA ports, not the load ports, bound it).
// Measured on Sapphire Rapids-class cores: 8x48 ~ 6x64 > 9x48 > 12x32 ~ 14x32.
constexpr int kNV = 3;            // zmm vectors per tile row
constexpr int64_t kNR = 16 * kNV; // panel width (columns) = 48
constexpr int kMR = 8;            // tile rows
// k block: the (kKC, 48) panel slice (96 KB) is re-read from L2 by every m strip; a
// larger kKC means fewer C-tile reloads.  kKC in 512..K measured best, 128..256 worse.
constexpr int64_t kKC = 512;
// A block (kMC, kKC) = 512 KB stays in L2 while all panels of the block sweep over it.
constexpr int64_t kMC = 256;      // multiple of kMR

// Lane masks of the kNV vectors of a tile row holding `cols` (<= kNR) valid columns.
void column_masks(int64_t cols, __mmask16* mask) {
  for (int v = 0; v < kNV; ++v) {
    mask[v] = tail_mask(cols - 16 * v);
  }
}

// C (R, kNR) [+]= A (R, kc; row stride lda) @ B (kc, kNR; packed panel slice).
// Columns outside `mask` are not touched.  accumulate=false overwrites C.
// Meanwhile the first `ahead_lines` (<= 3 kc) cache lines at `ahead` are requested into L2, up
// to three per k step: the caller's share of the next panel, which would otherwise come from
// L3 or memory when its first strip needs it.
template <int R>
void micro_tile(const float* A, int64_t lda, const float* B, int64_t kc, float* C,
                int64_t ldc, const __mmask16* mask, bool accumulate, const char* ahead,
                int64_t ahead_lines) {
  __m512 acc[R][kNV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], C + i * ldc + 16 * v)
                             : _mm512_setzero_ps();
  const float* a[R];
  for (int i = 0; i < R; ++i) a[i] = A + i * lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if (k < ahead_lines) _mm_prefetch(ahead + 64 * k, _MM_HINT_T1);
    if (k + kc < ahead_lines) _mm_prefetch(ahead + 64 * (k + kc), _MM_HINT_T1);
    if (k + 2 * kc < ahead_lines) _mm_prefetch(ahead + 64 * (k + 2 * kc), _MM_HINT_T1);
    __m512 b[kNV];
    for (int v = 0; v < kNV; ++v) b[v] = _mm512_loadu_ps(B + k * kNR + 16 * v);
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i][k]);
      for (int v = 0; v < kNV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, b[v], acc[i][v]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v) _mm512_mask_storeu_ps(C + i * ldc + 16 * v, mask[v], acc[i][v]);
}

// micro_tile<rows> for 1 <= rows <= R.
template <int R>
void micro_tile_rows(int rows, const float* A, int64_t lda, const float* B, int64_t kc,
                     float* C, int64_t ldc, const __mmask16* mask, bool accumulate,
                     const char* ahead, int64_t ahead_lines) {
  if constexpr (R > 1) {
    if (rows < R) {
      micro_tile_rows<R - 1>(rows, A, lda, B, kc, C, ldc, mask, accumulate, ahead, ahead_lines);
      return;
    }
  }
  micro_tile<R>(A, lda, B, kc, C, ldc, mask, accumulate, ahead, ahead_lines);
}

// Epilogue on the finished C tile rows [m, m+rows) x columns [n, n + kNR) & mask.
void epilogue_tile(float* C, int64_t ldc, int rows, int64_t m, int64_t n,
                   const __mmask16* mask, const Epilogue& ep) {
  if (!ep.bias && !ep.activation && !ep.residual) return;
  for (int i = 0; i < rows; ++i) {
    for (int v = 0; v < kNV; ++v) {
      if (!mask[v]) continue;
      float* c = C + i * ldc + 16 * v;
      __m512 x = _mm512_maskz_loadu_ps(mask[v], c);
      if (ep.bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], ep.bias + n + 16 * v));
      x = activate_ps(x, ep.activation);
      if (ep.residual)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(
                                 mask[v], ep.residual + (m + i) * ep.ldr + n + 16 * v));
      _mm512_mask_storeu_ps(c, mask[v], x);
    }
  }
}

}  // namespace

int64_t panel_width() { return kNR; }
int64_t tile_rows() { return kMR; }

size_t packed_weight_floats(int64_t N, int64_t K) {
  return size_t((N + kNR - 1) / kNR) * size_t(kNR) * size_t(K);
}

// W (N, K) -> panels (ceil(N / kNR), K, kNR), zero-padded.
void pack_weight(const float* W, int64_t N, int64_t K, float* packed) {
  for (int64_t p = 0; p * kNR < N; ++p) {
    float* P = packed + p * K * kNR;
    for (int64_t j = 0; j < kNR; ++j) {
      const int64_t n = p * kNR + j;
      for (int64_t k = 0; k < K; ++k) P[k * kNR + j] = n < N ? W[n * K + k] : 0.0f;
    }
  }
}

void gemm_packed(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K,
                 float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 const Epilogue& ep) {
  (void)N;
  // K in nkb near-equal blocks (at least one, so K == 0 still writes C = epilogue(0)).
  const int64_t nkb = K > kKC ? (K + kKC - 1) / kKC : 1;
  const int64_t kcb = (K + nkb - 1) / nkb;
  for (int64_t mc = m0; mc < m1; mc += kMC) {
    const int64_t me = mc + kMC < m1 ? mc + kMC : m1;
    for (int64_t kb = 0; kb < nkb; ++kb) {
      const int64_t k0 = kb * kcb;
      const int64_t kc = K - k0 < kcb ? K - k0 : kcb;
      const bool last = kb == nkb - 1;
      const int64_t strips = (me - mc + kMR - 1) / kMR;
      for (int64_t n = n0; n < n1; n += kNR) {
        __mmask16 mask[kNV];
        column_masks(n1 - n, mask);
        const float* B = packed + (n / kNR) * K * kNR + k0 * kNR;
        // The next panel's slice (kc * kNR floats) is requested while this one is computed,
        // spread over the m strips; past the last panel of the block nothing is requested.
        const char* next = reinterpret_cast<const char*>(B + K * kNR);
        int64_t next_lines = n + kNR < n1 ? kc * kNR * int64_t(sizeof(float)) / 64 : 0;
        const int64_t share = (next_lines + strips - 1) / strips;
        for (int64_t m = mc; m < me; m += kMR) {
          const int rows = int(me - m < kMR ? me - m : kMR);
          float* Ct = C + m * ldc + n;
          const int64_t lines = next_lines < share ? next_lines : share;
          micro_tile_rows<kMR>(rows, A + m * lda + k0, lda, B, kc, Ct, ldc, mask, kb > 0, next,
                               lines);
          next += 64 * lines;
          next_lines -= lines;
          if (last) epilogue_tile(Ct, ldc, rows, m, n, mask, ep);
        }
      }
    }
  }
}

}  // namespace avx512
}  // namespace kernels
}  // namespace pybert
