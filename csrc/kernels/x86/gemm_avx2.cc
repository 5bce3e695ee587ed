// AVX2 + FMA fp32 GEMM micro-kernel.  Build: -O3 -mavx2 -mfma
//
// Same structure as gemm_avx512.cc (see there for the blocking), with a kMR x kNR =
// 6 x 16 tile in 12 ymm accumulators (+ 2 panel vectors + 1 broadcast = 15 of 16 ymm).
// ODR: no external-linkage inline/template entities in this file.

#include "kernels/x86/gemm_isa.h"
#include "kernels/x86/simd_math_avx2.h"
#include "kernels/blocking.h"

namespace pybert {
namespace kernels {
namespace avx2 {
namespace {

constexpr int kNV = 2;            // ymm vectors per tile row
constexpr int64_t kNR = 8 * kNV;  // panel width (columns) = 16
constexpr int kMR = 6;            // tile rows
// k block: the (kKC, 16) panel slice is 16 KB (L1); the A block (kMC, kKC) is 144 KB,
// sized for the 256 KB - 1 MB L2 of AVX2-only CPUs.
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 144;      // multiple of kMR

// Lane masks of the kNV vectors of a tile row holding `cols` (<= kNR) valid columns;
// full[v] tells whether vector v is entirely valid (plain loads/stores).
struct ColumnMasks {
  __m256i lanes[kNV];
  bool full[kNV];
  bool any[kNV];
};

ColumnMasks column_masks(int64_t cols) {
  ColumnMasks m;
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int v = 0; v < kNV; ++v) {
    const int64_t c = cols - 8 * v;
    const int n = c >= 8 ? 8 : c <= 0 ? 0 : int(c);
    m.lanes[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
    m.full[v] = n == 8;
    m.any[v] = n > 0;
  }
  return m;
}

inline __m256 load_cols(const float* p, const ColumnMasks& m, int v) {
  return m.full[v] ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m.lanes[v]);
}

inline void store_cols(float* p, __m256 x, const ColumnMasks& m, int v) {
  if (m.full[v])
    _mm256_storeu_ps(p, x);
  else
    _mm256_maskstore_ps(p, m.lanes[v], x);
}

// C (R, kNR) [+]= A (R, kc; row stride lda) @ B (kc, kNR; packed panel slice).
// Meanwhile the first `ahead_lines` (<= kc) cache lines at `ahead` are requested into L2, one
// per k step: the caller's share of the next panel (see gemm_avx512.cc).
template <int R>
void micro_tile(const float* A, int64_t lda, const float* B, int64_t kc, float* C,
                int64_t ldc, const ColumnMasks& mask, bool accumulate, const char* ahead,
                int64_t ahead_lines) {
  __m256 acc[R][kNV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = accumulate ? load_cols(C + i * ldc + 8 * v, mask, v) : _mm256_setzero_ps();
  const float* a[R];
  for (int i = 0; i < R; ++i) a[i] = A + i * lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if (k < ahead_lines) _mm_prefetch(ahead + 64 * k, _MM_HINT_T1);
    __m256 b[kNV];
    for (int v = 0; v < kNV; ++v) b[v] = _mm256_loadu_ps(B + k * kNR + 8 * v);
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a[i] + k);
      for (int v = 0; v < kNV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, b[v], acc[i][v]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v) store_cols(C + i * ldc + 8 * v, acc[i][v], mask, v);
}

// Epilogue on the finished C tile rows [m, m+rows) x columns [n, n + kNR) & mask.
void epilogue_tile(float* C, int64_t ldc, int rows, int64_t m, int64_t n,
                   const ColumnMasks& mask, const Epilogue& ep) {
  if (!ep.bias && !ep.activation && !ep.residual) return;
  for (int i = 0; i < rows; ++i) {
    for (int v = 0; v < kNV; ++v) {
      if (!mask.any[v]) continue;
      float* c = C + i * ldc + 8 * v;
      __m256 x = load_cols(c, mask, v);
      if (ep.bias) x = _mm256_add_ps(x, load_cols(ep.bias + n + 8 * v, mask, v));
      x = activate_ps(x, ep.activation);
      if (ep.residual)
        x = _mm256_add_ps(x, load_cols(ep.residual + (m + i) * ep.ldr + n + 8 * v, mask, v));
      store_cols(c, x, mask, v);
    }
  }
}

// The finished tile (rows, kNR; row stride kNR) folded into the pooled rows of its rows, over the
// columns of `mask` (see Epilogue::pool): rows m .. m + rows - 1 of A, columns from n.
void pool_tile(const float* tile, int rows, const ColumnMasks& mask, int64_t m, int64_t n,
               const Epilogue& ep) {
  for (int i = 0; i < rows; ++i) {
    float* p = ep.pooled + ep.segment[m + i] * ep.ldp + n;
    for (int v = 0; v < kNV; ++v) {
      if (!mask.any[v]) continue;
      const __m256 y = load_cols(tile + i * kNR + 8 * v, mask, v);
      const __m256 q = load_cols(p + 8 * v, mask, v);
      store_cols(p + 8 * v, ep.pool == 1 ? _mm256_max_ps(q, y) : _mm256_add_ps(q, y), mask, v);
    }
  }
}

}  // namespace

int64_t panel_width() { return kNR; }
int64_t tile_rows() { return kMR; }
// A is read in place: the 6 row pointers of a tile fit the registers next to the loop state
// (packed strips, as in gemm_avx512.cc, measured 5-10% slower here: the packing costs more
// than it saves).
size_t gemm_workspace_floats(int64_t rows, int64_t K, bool pooled) {
  (void)rows;
  (void)K;
  (void)pooled;
  return 0;
}

GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  return split_blocks(M, N, kMR, kNR, n_threads);
}

void gemm_packed(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K,
                 float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 const Epilogue& ep, float* workspace, const BlockContext& ctx) {
  (void)N;
  (void)workspace;
  (void)ctx;  // the AVX2 kernel reads A in place and requests only its own next panel
  const bool pooled = ep.pool != 0;
  // Pooling folds finished tiles: all of K in one depth block, no partial C to keep.
  const DepthBlocks depth(K, pooled ? (K > kKC ? K : kKC) : kKC);
  alignas(32) float tile[kMR * kNR];  // a pooled call's finished tile, before it is folded
  const int64_t nkb = depth.count, kcb = depth.size;
  for (int64_t mc = m0; mc < m1; mc += kMC) {
    const int64_t me = mc + kMC < m1 ? mc + kMC : m1;
    for (int64_t kb = 0; kb < nkb; ++kb) {
      const int64_t k0 = kb * kcb;
      const int64_t kc = K - k0 < kcb ? K - k0 : kcb;
      const bool last = kb == nkb - 1;
      const int64_t strips = (me - mc + kMR - 1) / kMR;
      for (int64_t n = n0; n < n1; n += kNR) {
        const ColumnMasks mask = column_masks(n1 - n);
        const float* B = packed + (n / kNR) * K * kNR + k0 * kNR;
        // The next panel's slice (kc lines), requested a share per m strip.
        const char* next = reinterpret_cast<const char*>(B + K * kNR);
        int64_t next_lines = n + kNR < n1 ? kc * kNR * int64_t(sizeof(float)) / 64 : 0;
        const int64_t share = (next_lines + strips - 1) / strips;
        for (int64_t m = mc; m < me; m += kMR) {
          const int rows = int(me - m < kMR ? me - m : kMR);
          float* Ct = pooled ? tile : C + m * ldc + n;
          const int64_t ldt = pooled ? kNR : ldc;
          const int64_t lines = next_lines < share ? next_lines : share;
          with_rows<kMR>(rows, [&](auto r) {
            micro_tile<decltype(r)::value>(A + m * lda + k0, lda, B, kc, Ct, ldt, mask, kb > 0,
                                           next, lines);
          });
          next += 64 * lines;
          next_lines -= lines;
          if (last) epilogue_tile(Ct, ldt, rows, m, n, mask, ep);
          if (pooled) pool_tile(tile, rows, mask, m, n, ep);
        }
      }
    }
  }
}

}  // namespace avx2

constexpr Fp32Gemm kAvx2Fp32Gemm{"avx2",        avx2::kNR, avx2::kMR, avx2::gemm_workspace_floats,
                                 avx2::gemm_packed, avx2::choose_blocks, nullptr, nullptr,
                                 nullptr};

}  // namespace kernels
}  // namespace pybert
