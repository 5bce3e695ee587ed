// bf16 attention for one (sequence, head) on AMX tiles: the bf16 precision's Q·Kᵀ and P·V.
//
//   Q (len, d)  -> Qb: bf16 rows (convert_rows_bf16), the A operand
//   K (len, d)  -> Kb: packed as a bf16 weight of shape (len, d)   (panels of 16 keys)
//   V (len, d)  -> Vb: packed as the bf16 weight V^T, shape (d, len)
//   for each group of 16 query rows (one tile of rows):
//     S (16, len) = Qb_grp @ Kb^T      tiles, 4 blocks of 16 keys at a time, stored fp32
//     P = softmax(scale * S)           fp32, rounded to bf16, zero past len
//     O (16, d) = P @ Vb               tiles, up to 64 columns at a time; -> out (fp32 or bf16)
//
// The packed layouts are gemm_lowp.h's (pairs of k in one 32-bit lane, panels of 16 columns).
// Softmax, its max and sum stay fp32; only the products' inputs are rounded, as in PyTorch's
// bf16 autocast.  One tile configuration per call; the score rows of a group stay in L1.
// ODR: only intrinsics and internal-linkage helpers (see gemm_lowp_amx.cc).

// GCC 12 false positives on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstring>

#include "kernels/blocking.h"
#include "kernels/x86/amx_tiles.h"
#include "kernels/x86/attention_isa.h"
#include "kernels/x86/gemm_lowp_isa.h"
#include "kernels/x86/simd_math_avx512.h"

namespace pybert {
namespace kernels {
namespace attention_amx {
namespace {

constexpr int64_t kRows = 16;   // query rows per group: one tile
constexpr int64_t kGroups = 4;  // groups per block: P of a block is written before any is read

int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// Sizes, in bytes, of the scratch regions (each a multiple of 64 bytes).
struct Scratch {
  int64_t dp, lp16, lp32;  // d rounded to 32; len rounded to 16 (fp32 scores) and 32 (bf16 P)
  int64_t q, k, v, s, p, o;
  Scratch(int64_t len, int64_t d)
      : dp(round_up(d, 32)), lp16(round_up(len, 16)), lp32(round_up(len, 32)),
        q(round_up(len + 15, 16) * dp * 2),  // convert_rows_bf16's padded rows
        k(lp32 * dp * 2),                    // round_up(len, 32) keys x dp
        v(round_up(d, 32) * lp32 * 2),       // round_up(d, 32) columns x lp32
        s(kRows * lp16 * 4),
        p(kGroups * kRows * lp32 * 2),
        o(kRows * 64 * 4) {}
  int64_t total() const { return q + k + v + s + p + o; }
};

// Two fp32 vectors -> 16 bf16 pairs (a[i] in the low half of lane i, b[i] in the high half):
// both rounded into one register (a's 16 values, then b's), then interleaved with one vpermw.
__m512i bf16_pairs(__m512 a, __m512 b) {
  const __m512i interleave = _mm512_set_epi16(
      31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
      23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

// r[i] lane j -> r[j] lane i: a 16 x 16 transpose of 32-bit elements.  Within each 128-bit lane
// a 4 x 4 transpose (unpack 32, then 64), then the 4 x 4 transpose of the lanes themselves across
// each group of four registers (two rounds of vshufi32x4).
void transpose16x16(__m512i (&r)[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int j = 0; j < 4; ++j) {  // r[4j + m] lane k = rows 4j..4j+3 of column 4k + m
    r[4 * j + 0] = _mm512_unpacklo_epi64(t[4 * j], t[4 * j + 2]);
    r[4 * j + 1] = _mm512_unpackhi_epi64(t[4 * j], t[4 * j + 2]);
    r[4 * j + 2] = _mm512_unpacklo_epi64(t[4 * j + 1], t[4 * j + 3]);
    r[4 * j + 3] = _mm512_unpackhi_epi64(t[4 * j + 1], t[4 * j + 3]);
  }
  for (int m = 0; m < 4; ++m) {  // column 4k + m <- lane k of r[m], r[4 + m], r[8 + m], r[12 + m]
    const __m512i v0 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x44);
    const __m512i v1 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x44);
    const __m512i v3 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xEE);
    t[m] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    t[4 + m] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    t[8 + m] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    t[12 + m] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// Kb[((n / 16) * (dp / 2) + c / 2) * 32 + (n % 16) * 2 + c % 2] = bf16(K[n][c]), zero for
// n >= len or c >= d: K (len, d) as a packed weight (N = len, K = d).  16 keys x 32 columns at
// a time: each key's 16 bf16 pairs in one register, transposed so that a register holds one
// pair of all 16 keys, a 64-byte row of the panel.
void pack_keys(const float* k, int64_t ld, int64_t len, int64_t d, int64_t dp, uint32_t* kb) {
  const int64_t pairs = dp / 2, keys = round_up(len, 32);
  for (int64_t n0 = 0; n0 < keys; n0 += 16) {
    uint32_t* panel = kb + (n0 / 16) * pairs * 16;
    for (int64_t c = 0; c < dp; c += 32) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        r[i] = _mm512_setzero_si512();
        if (n0 + i < len) {
          const float* row = k + (n0 + i) * ld + c;
          const __m512 lo = _mm512_maskz_loadu_ps(avx512::tail_mask(d - c), row);
          const __m512 hi = _mm512_maskz_loadu_ps(avx512::tail_mask(d - c - 16), row + 16);
          r[i] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // pairs (c, c+1), (c+2, c+3), ...
        }
      }
      transpose16x16(r);
      for (int p = 0; p < 16; ++p) _mm512_storeu_si512(panel + (c / 2 + p) * 16, r[p]);
    }
  }
}

// Vb[((c / 16) * (lp32 / 2) + j / 2) * 32 + (c % 16) * 2 + j % 2] = bf16(V[j][c]), zero for
// j >= len or c >= d: V^T (d, len) as a packed weight (N = d, K = len).
void pack_values(const float* v, int64_t ld, int64_t len, int64_t d, int64_t lp32, uint32_t* vb) {
  const int64_t cols = round_up(d, 32);
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = avx512::tail_mask(d - c);
    uint32_t* panel = vb + (c / 16) * (lp32 / 2) * 16;
    for (int64_t j = 0; j < lp32; j += 2) {
      const __m512 a = j < len ? _mm512_maskz_loadu_ps(m, v + j * ld + c) : _mm512_setzero_ps();
      const __m512 b =
          j + 1 < len ? _mm512_maskz_loadu_ps(m, v + (j + 1) * ld + c) : _mm512_setzero_ps();
      _mm512_store_si512(panel + (j / 2) * 16, bf16_pairs(a, b));
    }
  }
}

// p rows [0, N) (lp32 bf16 each, stride ldp) <- bf16(softmax(scale * s row (len))), zeros past
// len; s (N rows, stride lds floats) is overwritten.
template <int N>
void softmax_rows_bf16(float* s, int64_t lds, int64_t len, int64_t lp32, float scale, uint16_t* p,
                       int64_t ldp) {
  __m512 inv[N];
  avx512::softmax_exp_rows<N>(s, lds, len, scale, inv);
  for (int i = 0; i < N; ++i)
    for (int64_t j = 0; j < lp32; j += 16) {
      const __m512 e = _mm512_maskz_loadu_ps(avx512::tail_mask(len - j), s + i * lds + j);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + i * ldp + j),
                          (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(e, inv[i])));
    }
}

// softmax_rows_bf16 over `rows` rows, four at a time.
void softmax_bf16(float* s, int64_t lds, int64_t rows, int64_t len, int64_t lp32, float scale,
                  uint16_t* p, int64_t ldp) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    softmax_rows_bf16<4>(s + r * lds, lds, len, lp32, scale, p + r * ldp, ldp);
  for (; r < rows; ++r) softmax_rows_bf16<1>(s + r * lds, lds, len, lp32, scale, p + r * ldp, ldp);
}

// Tiles 0..n-1 (n <= 4) = A (16 rows, stride lda bytes) @ n packed B panels (b_panel bytes
// apart), over `steps` k steps of 32 bf16 (64 bytes of A rows, 1 KiB of each panel).
void product_tiles(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t b_panel,
                   int64_t steps, int64_t n) {
  _tile_zero(0);
  if (n > 1) _tile_zero(1);
  if (n > 2) _tile_zero(2);
  if (n > 3) _tile_zero(3);
  for (int64_t t = 0; t < steps; ++t) {
    _tile_loadd(4, a + 64 * t, lda);
    _tile_loadd(5, b + 1024 * t, 64);
    _tile_dpbf16ps(0, 4, 5);
    if (n > 1) {
      _tile_loadd(6, b + b_panel + 1024 * t, 64);
      _tile_dpbf16ps(1, 4, 6);
    }
    if (n > 2) {
      _tile_loadd(7, b + 2 * b_panel + 1024 * t, 64);
      _tile_dpbf16ps(2, 4, 7);
    }
    if (n > 3) {
      _tile_loadd(5, b + 3 * b_panel + 1024 * t, 64);
      _tile_dpbf16ps(3, 4, 5);
    }
  }
}

// Tiles 0..n-1 (16 x 16 fp32 each) side by side into c: tile j at column 16 j, row stride ldc
// bytes.
void store_tiles(float* c, int64_t ldc, int64_t n) {
  _tile_stored(0, c, ldc);
  if (n > 1) _tile_stored(1, c + 16, ldc);
  if (n > 2) _tile_stored(2, c + 32, ldc);
  if (n > 3) _tile_stored(3, c + 48, ldc);
}

}  // namespace

int64_t attention_scratch_bytes(int64_t len, int64_t d_head) {
  return Scratch(len, d_head).total();
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, uint16_t* out_bf16, int64_t ld_out,
                    void* scratch) {
  const Scratch sz(len, d_head);
  auto* base = static_cast<uint8_t*>(scratch);
  auto* qb = reinterpret_cast<uint16_t*>(base);
  uint8_t* kb = base + sz.q;
  uint8_t* vb = kb + sz.k;
  auto* s = reinterpret_cast<float*>(vb + sz.v);
  auto* pb = reinterpret_cast<uint16_t*>(vb + sz.v + sz.s);
  auto* o = reinterpret_cast<float*>(vb + sz.v + sz.s + sz.p);
  lowp_amx::convert_rows_bf16(q, ld, len, d_head, 0, len, qb);
  pack_keys(k, ld, len, d_head, sz.dp, reinterpret_cast<uint32_t*>(kb));
  pack_values(v, ld, len, d_head, sz.lp32, reinterpret_cast<uint32_t*>(vb));
  const int64_t ldq = sz.dp * 2, lds = sz.lp16 * 4, ldp = sz.lp32 * 2;  // bytes
  const int64_t k_panel = sz.dp * 32, v_panel = sz.lp32 * 32;  // bytes per 16 keys / columns
  const int64_t q_steps = sz.dp / 32, p_steps = sz.lp32 / 32, key_blocks = sz.lp16 / 16;
  amx::load_full_tile_config();
  // Blocks of kGroups groups: scores and softmax of every group, then P @ V of every group, so
  // that a tile load of P never waits on the vector stores that have just written it.
  for (int64_t b0 = 0; b0 < len; b0 += kGroups * kRows) {
    const int64_t groups = (min_i64(len - b0, kGroups * kRows) + kRows - 1) / kRows;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t i0 = b0 + g * kRows;
      const int64_t rows = len - i0 < kRows ? len - i0 : kRows;
      uint16_t* pg = pb + g * kRows * sz.lp32;
      // S (16, lp16) = Q[i0 : i0 + 16] @ K^T, four 16-key blocks per pass (tiles 0-3).
      const uint8_t* qg = reinterpret_cast<const uint8_t*>(qb + i0 * sz.dp);
      for (int64_t j0 = 0; j0 < key_blocks; j0 += 4) {
        const int64_t nb = key_blocks - j0 < 4 ? key_blocks - j0 : 4;
        product_tiles(qg, ldq, kb + j0 * k_panel, k_panel, q_steps, nb);
        store_tiles(s + j0 * 16, lds, nb);
      }
      softmax_bf16(s, sz.lp16, rows, len, sz.lp32, scale, pg, sz.lp32);
      if (rows < kRows) std::memset(pg + rows * sz.lp32, 0, size_t((kRows - rows) * ldp));
    }
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t i0 = b0 + g * kRows;
      const int64_t rows = len - i0 < kRows ? len - i0 : kRows;
      const uint8_t* pg = reinterpret_cast<const uint8_t*>(pb + g * kRows * sz.lp32);
      // O (16, d) = P @ V, up to 64 output columns per pass (tiles 0-3).
      for (int64_t c0 = 0; c0 < d_head; c0 += 64) {
        const int64_t nt = (min_i64(64, d_head - c0) + 15) / 16;
        product_tiles(pg, ldp, vb + (c0 / 16) * v_panel, v_panel, p_steps, nt);
        store_tiles(o, 256, nt);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < nt; ++j) {
            const __mmask16 m = avx512::tail_mask(d_head - c0 - 16 * j);
            const __m512 x = _mm512_load_ps(o + r * 64 + 16 * j);
            const int64_t at = (i0 + r) * ld_out + c0 + 16 * j;
            if (out_bf16)
              _mm256_mask_storeu_epi16(out_bf16 + at, m, (__m256i)_mm512_cvtneps_pbh(x));
            else
              _mm512_mask_storeu_ps(out + at, m, x);
          }
      }
    }
  }
  _tile_release();
}

}  // namespace attention_amx
}  // namespace kernels
}  // namespace pybert
