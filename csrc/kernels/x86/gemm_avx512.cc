// AVX-512 fp32 GEMM micro-kernel.  Build: -O3 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
//
// ODR: this file defines no inline/template entity with external linkage (helpers are
// in an anonymous namespace, no std:: templates), so nothing compiled with AVX-512 can
// be picked by the linker for code that must run on an AVX2 machine.
//
// Blocking (one gemm_packed call, single thread):
//   for mc  (kMC rows of A)
//    for kc (K split into near-equal blocks <= kKC)
//     pack the A block (mc, kc) into strips of kMR rows, k-major (stays in L2), unless the
//     caller packed all rows once for every block (BlockContext::rows, see pack_rows)
//     for n panel (kNR columns: the packed (kc, kNR) panel slice stays in L2)
//      for m strip (kMR rows): C tile (kMR, kNR) += A strip (kMR, kc) @ panel (kc, kNR)
// The micro-kernel keeps the kMR x kNR tile in kMR * kNV zmm accumulators, loads kNV
// panel vectors and broadcasts kMR scalars of the packed strip per k.  Packing A puts the
// kMR scalars of a k step on one cache line behind one pointer (eight row pointers do not
// fit the general registers next to the loop state, and the compiler spilled them).
// After the last k block the tile gets the epilogue in registers, before its one store.

// GCC 12 false positive on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/x86/gemm_isa.h"
#include "kernels/x86/simd_math_avx512.h"
#include "kernels/blocking.h"

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
// k block: the (kKC, 48) panel slice (144 KB) is re-read from L2 by every m strip; a
// larger kKC means fewer C-tile reloads, and K <= 768 (BERT-base's hidden size) is one block.
// Smaller blocks that keep the slice in L1 (128..256) measured worse: the weights then stream
// from memory in short pieces.
constexpr int64_t kKC = 768;
// A block (kMC, kKC) = 768 KB, packed, stays in L2 while all panels of the block sweep over it.
constexpr int64_t kMC = 256;      // multiple of kMR

// Rows rounded up to whole strips of kMR.
int64_t padded_rows(int64_t rows) { return (rows + kMR - 1) / kMR * kMR; }

// Lane masks of the kNV vectors of a tile row holding `cols` (<= kNR) valid columns.
void column_masks(int64_t cols, __mmask16* mask) {
  for (int v = 0; v < kNV; ++v) {
    mask[v] = tail_mask(cols - 16 * v);
  }
}

// acc (R, kNR) += a (R scalars) * b (kNR floats): one k step of the micro-kernel.
template <int R>
inline __attribute__((always_inline)) void fma_step(__m512 (&acc)[R][kNV], const float* a,
                                                    const float* b) {
  __m512 bv[kNV];
  for (int v = 0; v < kNV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
  for (int i = 0; i < R; ++i) {
    const __m512 ai = _mm512_set1_ps(a[i]);
    for (int v = 0; v < kNV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
  }
}

// The epilogue of one tile, at its place: bias at the tile's first column, residual at its
// first row and column.  Null where the tile is not finished (or has no epilogue).
struct TileEpilogue {
  const float* bias;
  int activation;
  const float* residual;
  int64_t ldr;
};

// The C tile the caller computes after this one: its lines are requested for writing while this
// tile is computed.  A large batch writes its outputs to memory no cache holds (tens of MB of
// activations a layer), and without the request each tile's stores wait for their lines to be
// read first.  all-MiniLM-L6-v2's GEMMs on 2 threads, outputs rotating over four buffers: 4096
// rows 2-9% faster with it; 512-1024 rows (C still in cache) even; 128 rows, a column split, up
// to 2% slower.  So gemm_packed asks for it under a row split only.
struct NextTile {
  const char* c = nullptr;  // its first row (rows == 0: none)
  int64_t ld = 0;           // row stride, bytes
  int rows = 0, vectors = 0;
};

// acc = act(acc + bias) + residual, in registers: the tile is stored once, finished.
template <int R>
inline void finish_tile(__m512 (&acc)[R][kNV], const __mmask16* mask, const TileEpilogue& ep) {
  for (int v = 0; v < kNV; ++v) {
    if (ep.bias) {
      const __m512 b = _mm512_maskz_loadu_ps(mask[v], ep.bias + 16 * v);
      for (int i = 0; i < R; ++i) acc[i][v] = _mm512_add_ps(acc[i][v], b);
    }
    if (ep.activation)
      for (int i = 0; i < R; ++i) acc[i][v] = activate_ps(acc[i][v], ep.activation);
    if (ep.residual)
      for (int i = 0; i < R; ++i)
        acc[i][v] = _mm512_add_ps(
            acc[i][v], _mm512_maskz_loadu_ps(mask[v], ep.residual + i * ep.ldr + 16 * v));
  }
}

// C (R, kNR) [+]= A (R, kc; packed strip, kMR floats per k) @ B (kc, kNR; packed panel slice),
// then `ep` if given.  Columns outside `mask` are not touched.  accumulate=false overwrites C.
// Meanwhile the first `ahead_lines` (<= 3 kc) cache lines at `ahead` are requested into L2: the
// caller's share of the next panel, which would otherwise come from L3 or memory when its first
// strip needs it; and the lines of the `next` tile of C, one every 8 k steps.
template <int R>
void micro_tile(const float* A, const float* B, int64_t kc, float* C, int64_t ldc,
                const __mmask16* mask, bool accumulate, const char* ahead, int64_t ahead_lines,
                bool early, const TileEpilogue* ep, const NextTile& next) {
  int c_row = 0, c_vector = 0;  // the next tile's line to request next
  auto request_next = [&] {
    _mm_prefetch(next.c + c_row * next.ld + 64 * c_vector, _MM_HINT_ET0);
    if (++c_vector == next.vectors) c_vector = 0, ++c_row;
  };
  __m512 acc[R][kNV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], C + i * ldc + 16 * v)
                             : _mm512_setzero_ps();
  // A share of at most 2 lines a group of 4 k steps goes out evenly over the strip: bunched at
  // one a k step from the start, 144 lines slowed the compute about as much as they take to
  // stream in (1 thread, 128 x 1152 x 768, 48 weights in turn: spread 8-10% more GFLOP/s).  A
  // larger share means the panels come in slower than they are computed (few rows), and
  // `early` that other threads request the same panels (rows split over threads: spread, 2
  // threads x 512 rows ran 6% slower); then the lines go out as early as possible, up to three
  // a k step.
  const int64_t groups = kc / 4;
  int64_t k = 0;
  if (early || ahead_lines > 2 * groups) {
    const int64_t k_ahead = ahead_lines < kc ? ahead_lines : kc;
    for (; k < k_ahead; ++k) {
      _mm_prefetch(ahead + 64 * k, _MM_HINT_T1);
      if (k + kc < ahead_lines) _mm_prefetch(ahead + 64 * (k + kc), _MM_HINT_T1);
      if (k + 2 * kc < ahead_lines) _mm_prefetch(ahead + 64 * (k + 2 * kc), _MM_HINT_T1);
      if ((k & 7) == 7 && c_row < next.rows) request_next();
      fma_step<R>(acc, A + k * kMR, B + k * kNR);
    }
  } else if (ahead_lines > 0) {
    const int64_t per = (ahead_lines + groups - 1) / groups;  // 1 or 2 lines
    const int64_t every = groups / ((ahead_lines + per - 1) / per);
    int64_t line = 0, countdown = 1;
    for (; k + 4 <= kc; k += 4) {
      if (line < ahead_lines && --countdown == 0) {
        _mm_prefetch(ahead + 64 * line++, _MM_HINT_T1);
        if (per == 2 && line < ahead_lines) _mm_prefetch(ahead + 64 * line++, _MM_HINT_T1);
        countdown = every;
      }
      if ((k & 4) && c_row < next.rows) request_next();
      fma_step<R>(acc, A + k * kMR, B + k * kNR);
      fma_step<R>(acc, A + (k + 1) * kMR, B + (k + 1) * kNR);
      fma_step<R>(acc, A + (k + 2) * kMR, B + (k + 2) * kNR);
      fma_step<R>(acc, A + (k + 3) * kMR, B + (k + 3) * kNR);
    }
  }
  while (c_row < next.rows) request_next();  // the rest, if the loops above ended early
#pragma GCC unroll 4
  for (; k < kc; ++k) fma_step<R>(acc, A + k * kMR, B + k * kNR);
  if (ep) finish_tile<R>(acc, mask, *ep);
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v) _mm512_mask_storeu_ps(C + i * ldc + 16 * v, mask[v], acc[i][v]);
}

// The finished tile (rows, kNR; row stride kNR) folded into the pooled rows of its rows, over the
// columns of `mask` (see Epilogue::pool): rows m .. m + rows - 1 of A, columns from n.
void pool_tile(const float* tile, int rows, const __mmask16* mask, int64_t m, int64_t n,
               const Epilogue& ep) {
  for (int i = 0; i < rows; ++i) {
    float* p = ep.pooled + ep.segment[m + i] * ep.ldp + n;
    for (int v = 0; v < kNV; ++v) {
      const __m512 y = _mm512_maskz_loadu_ps(mask[v], tile + i * kNR + 16 * v);
      const __m512 q = _mm512_maskz_loadu_ps(mask[v], p + 16 * v);
      _mm512_mask_storeu_ps(p + 16 * v, mask[v],
                            ep.pool == 1 ? _mm512_max_ps(q, y) : _mm512_add_ps(q, y));
    }
  }
}

// A (rows, kc; row stride lda) -> strips of kMR rows: dst[(s * kc + k) * kMR + i] =
// A[s * kMR + i][k], rows past `rows` zero.  Full strips go 8 x 8 blocks at a time.
void pack_a(const float* A, int64_t lda, int64_t rows, int64_t kc, float* dst) {
  static_assert(kMR == 8, "pack_a transposes 8-row strips");
  for (int64_t s = 0; s * kMR < rows; ++s, dst += kc * kMR) {
    const float* a = A + s * kMR * lda;
    const int64_t valid = rows - s * kMR;
    int64_t k = 0;
    if (valid >= kMR) {
      for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(a + i * lda + k);
        transpose8x8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * kMR, r[j]);
      }
    }
    for (; k < kc; ++k)
      for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = i < valid ? a[i * lda + k] : 0.0f;
  }
}

}  // namespace

int64_t panel_width() { return kNR; }
int64_t tile_rows() { return kMR; }
size_t gemm_workspace_floats(int64_t rows, int64_t K, bool pooled) {
  const int64_t mc = rows < kMC ? rows : kMC, kc = K < kKC || pooled ? K : kKC;
  return size_t(padded_rows(mc)) * size_t(kc > 0 ? kc : 0);
}

Prefetch first_panel(const float* packed, int64_t N, int64_t K, int64_t n0) {
  (void)N;
  const int64_t slice_bytes = DepthBlocks(K, kKC).size * kNR * int64_t(sizeof(float));
  return Prefetch{packed + (n0 / kNR) * K * kNR, slice_bytes};
}

GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  // The kernel packs the rows of A it reads: split by columns, every thread would pack all
  // rows.  With enough rows each thread takes whole rows instead (and streams the whole weight,
  // which from 128 rows a thread costs less than packing twice: 2 threads, 256-500 rows, 3-10%
  // faster than the column split on BERT-base and all-MiniLM-L6-v2; at 64 rows a thread the
  // column split is still ahead).
  constexpr int64_t kMinRowsPerThread = 128;
  return split_rows_first(M, N, kMR, kNR, n_threads, kMinRowsPerThread);
}

void gemm_packed(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K,
                 float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 const Epilogue& ep, float* workspace, const BlockContext& ctx) {
  (void)N;
  const bool pooled = ep.pool != 0;
  const PackedRows& shared = pooled ? PackedRows{} : ctx.rows;  // A packed once, or empty
  const Prefetch& then = ctx.then;
  // Pooling folds finished tiles: all of K in one depth block, no partial C to keep.
  const DepthBlocks depth(K, pooled ? (K > kKC ? K : kKC) : kKC);
  alignas(64) float tile[kMR * kNR];  // a pooled call's finished tile, before it is folded
  const int64_t nkb = depth.count, kcb = depth.size;
  const int64_t shared_padded = padded_rows(shared.rows);
  const float* first = packed + (n0 / kNR) * K * kNR;  // the block's first panel
  for (int64_t mc = m0; mc < m1; mc += kMC) {
    const int64_t me = mc + kMC < m1 ? mc + kMC : m1;
    for (int64_t kb = 0; kb < nkb; ++kb) {
      const int64_t k0 = kb * kcb;
      const int64_t kc = K - k0 < kcb ? K - k0 : kcb;
      const bool last = kb == nkb - 1;
      const bool finish = last && (ep.bias || ep.activation || ep.residual);
      const int64_t strips = (me - mc + kMR - 1) / kMR;
      const float* a_block = workspace;
      if (shared.data)
        a_block = shared.data + shared_padded * k0 + mc * kc;  // mc: whole strips of kMR rows
      else
        pack_a(A + mc * lda + k0, lda, me - mc, kc, workspace);
      for (int64_t n = n0; n < n1; n += kNR) {
        __mmask16 mask[kNV];
        column_masks(n1 - n, mask);
        const float* B = packed + (n / kNR) * K * kNR + k0 * kNR;
        // What this thread reads after this panel is requested while this one is computed,
        // spread over the m strips: the next panel's slice (kc * kNR floats); after the last
        // panel, the first panel's next k slice, or its first slice for the next row block, or
        // after the block's very last panel, `then`.
        const char* next = reinterpret_cast<const char*>(B + K * kNR);
        int64_t next_lines = kc * kNR * int64_t(sizeof(float)) / 64;
        if (n + kNR >= n1) {
          if (!last) {
            next = reinterpret_cast<const char*>(first + (k0 + kc) * kNR);
            const int64_t kc_next = K - k0 - kc < kcb ? K - k0 - kc : kcb;
            next_lines = kc_next * kNR * int64_t(sizeof(float)) / 64;
          } else if (me < m1) {
            next = reinterpret_cast<const char*>(first);
          } else {
            next = static_cast<const char*>(then.data);
            next_lines = then.data ? then.bytes / 64 : 0;
          }
          if (next_lines > 3 * kc * strips) next_lines = 3 * kc * strips;
        }
        const int64_t share = (next_lines + strips - 1) / strips;
        for (int64_t m = mc; m < me; m += kMR) {
          const int rows = int(me - m < kMR ? me - m : kMR);
          float* Ct = pooled ? tile : C + m * ldc + n;
          const int64_t ldt = pooled ? kNR : ldc;
          const int64_t lines = next_lines < share ? next_lines : share;
          const TileEpilogue tile_ep{ep.bias ? ep.bias + n : nullptr, ep.activation,
                                     ep.residual ? ep.residual + m * ep.ldr + n : nullptr, ep.ldr};
          // The next tile: the next strip of this panel, else the first of the next panel.
          const int64_t m_next = m + kMR < me ? m + kMR : mc, n_next = m + kMR < me ? n : n + kNR;
          NextTile next_tile;
          if (ctx.panels_shared && n_next < n1 && !pooled) {  // rows split only: see NextTile
            next_tile.c = reinterpret_cast<const char*>(C + m_next * ldc + n_next);
            next_tile.ld = ldc * int64_t(sizeof(float));
            next_tile.rows = int(me - m_next < kMR ? me - m_next : kMR);
            next_tile.vectors = int(((n1 - n_next < kNR ? n1 - n_next : kNR) + 15) / 16);
          }
          with_rows<kMR>(rows, [&](auto r) {
            micro_tile<decltype(r)::value>(a_block + (m - mc) * kc, B, kc, Ct, ldt, mask,
                                           kb > 0, next, lines, ctx.panels_shared,
                                           finish ? &tile_ep : nullptr, next_tile);
          });
          if (pooled) pool_tile(tile, rows, mask, m, n, ep);
          next += 64 * lines;
          next_lines -= lines;
        }
      }
    }
  }
}

size_t packed_rows_floats(int64_t M, int64_t K) {
  return size_t(padded_rows(M)) * size_t(K > 0 ? K : 0);
}

// Depth block b of strip s at out + padded_M * k0(b) + s * kMR * kc(b): each block is the
// strips pack_a writes for it, one after the other.
void pack_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t s0, int64_t s1,
               float* out) {
  const DepthBlocks depth(K, kKC);
  const int64_t rows_padded = padded_rows(M);
  const int64_t r0 = s0 * kMR, r1 = s1 * kMR < M ? s1 * kMR : M;
  if (r0 >= r1) return;
  for (int64_t kb = 0; kb < depth.count; ++kb) {
    const int64_t k0 = kb * depth.size;
    const int64_t kc = K - k0 < depth.size ? K - k0 : depth.size;
    pack_a(A + r0 * lda + k0, lda, r1 - r0, kc, out + rows_padded * k0 + r0 * kc);
  }
}

}  // namespace avx512

constexpr Fp32Gemm kAvx512Fp32Gemm{
    "avx512", avx512::kNR, avx512::kMR, avx512::gemm_workspace_floats, avx512::gemm_packed,
    avx512::choose_blocks, avx512::first_panel, avx512::packed_rows_floats, avx512::pack_rows};

}  // namespace kernels
}  // namespace pybert
