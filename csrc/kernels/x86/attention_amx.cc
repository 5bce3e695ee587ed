// Attention for one (sequence, head) on AMX bf16 tiles: Q·Kᵀ and P·V with their inputs rounded
// to bf16 (the bf16 precision), or split into three bf16 terms (the int8 precision's attention).
//
//   Q (len, d)  -> Qb: bf16 rows, the A operand
//   K (len, d)  -> Kb: packed as a bf16 weight of shape (len, d)   (panels of 16 keys)
//   V (len, d)  -> Vb: packed as the bf16 weight V^T, shape (d, len)
//   for each pair of groups of 16 query rows (two tiles of rows):
//     S (32, len) = Qb_grp @ Kb^T      2 x 2 tiles: 32 keys at a time, stored fp32
//     P = softmax(scale * S)           fp32, rounded to bf16, zero past len
//     O (32, d) = P @ Vb               2 x 2 tiles: 32 columns at a time; -> out (fp32 or bf16)
//
// Split (3 terms): x = hi + lo + r with hi = bf16(x), lo = bf16(x - hi) (x - hi is exact in
// fp32), |r| <= 2^-17 |x|.  Each product a·b is taken as hi_a hi_b + lo_a hi_b + hi_a lo_b, by
// laying the terms side by side along the product's depth: A rows [hi | lo | hi] against
// B columns [hi | hi | lo], one tile product of three times the depth.  The dropped lo_a lo_b
// and the residuals leave |error| <= ~2^-15 sum |a| |b| (bf16 alone: 2^-8; fp32: ~2^-24 len).
//
// q, k and v come as fp32 rows, rounded here, or as bf16 rows (attention_head_bf16: the bf16
// QKV GEMM's output, rounded by its epilogue the same way): the same products either way.
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

// Sizes, in bytes, of the scratch regions (each a multiple of 64 bytes).  terms: 1, or 3 split.
struct Scratch {
  int64_t dp, lp16, lp32;  // d rounded to 32; len rounded to 16 (fp32 scores) and 32 (bf16 P)
  int64_t q, k, v, s, p, o;
  Scratch(int64_t len, int64_t d, int terms)
      : dp(round_up(d, 32)), lp16(round_up(len, 16)), lp32(round_up(len, 32)),
        q(round_up(len + 15, 16) * dp * 2 * terms),  // rows up to a whole tile past len
        k(lp32 * dp * 2 * terms),                    // round_up(len, 32) keys x dp
        v(round_up(d, 32) * lp32 * 2 * terms),       // round_up(d, 32) columns x lp32
        s(2 * kRows * lp16 * 4),
        p(kGroups * kRows * lp32 * 2 * terms),
        o(2 * kRows * 32 * 4) {}
  int64_t total() const { return q + k + v + s + p + o; }
};

// x - h, h = bf16(x) as rounded already (vcvtneps2bf16, or one half of vcvtne2ps2bf16): the part
// of x that the rounding dropped, exact in fp32.
__m512 bf16_residual(__m512 x, __m256i h) {
  return _mm512_sub_ps(x, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
}

// The residuals of the two vectors that r = vcvtne2ps2bf16(hi, lo) rounded (lo's in r's low
// half), rounded to bf16 in the same layout.
__m512i bf16_residuals(__m512 hi, __m512 lo, __m512i r) {
  return (__m512i)_mm512_cvtne2ps_pbh(bf16_residual(hi, _mm512_extracti64x4_epi64(r, 1)),
                                      bf16_residual(lo, _mm512_castsi512_si256(r)));
}

// The term of segment `seg` of a split operand (gemm's A side [hi | lo | hi], B side
// [hi | hi | lo]): whether it holds lo.
bool a_lo(int seg) { return seg == 1; }
bool b_lo(int seg) { return seg == 2; }

// vcvtne2ps2bf16(b, a) (a's 16 bf16 values, then b's) -> 16 bf16 pairs (a[i] in the low half
// of lane i, b[i] in the high half), with one vpermw.
__m512i bf16_pairs(__m512i ba) {
  const __m512i interleave = _mm512_set_epi16(
      31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
      23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, ba);
}

// Columns [c, c + 32) of a row of d columns as bf16, in order (zero from d on): an fp32 row
// rounded by vcvtne2ps2bf16, with the dropped residuals (rounded to bf16, same layout) in *res
// when res is set; a bf16 row (from a bf16 GEMM's output, already rounded so) as it is.
__m512i bf16_columns(const float* row, int64_t c, int64_t d, __m512i* res) {
  const __m512 lo = _mm512_maskz_loadu_ps(avx512::tail_mask(d - c), row + c);
  const __m512 hi = _mm512_maskz_loadu_ps(avx512::tail_mask(d - c - 16), row + c + 16);
  const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
  if (res) *res = bf16_residuals(hi, lo, h);
  return h;
}
__m512i bf16_columns(const uint16_t* row, int64_t c, int64_t d, __m512i* /*res: none*/) {
  const int64_t valid = d - c;
  const __mmask32 m = valid >= 32 ? ~__mmask32(0) : valid <= 0 ? 0 : (__mmask32(1) << valid) - 1;
  return _mm512_maskz_loadu_epi16(m, row + c);
}

// Columns [c, c + 16) of rows a and b (null: a row of zeros), zero from d on, as bf16 in
// vcvtne2ps2bf16(b, a)'s layout: a's 16, then b's; the residuals likewise in *res (fp32 only).
__m512i bf16_row_pair(const float* a, const float* b, int64_t c, int64_t d, __m512i* res) {
  const __mmask16 m = avx512::tail_mask(d - c);
  const __m512 x = a ? _mm512_maskz_loadu_ps(m, a + c) : _mm512_setzero_ps();
  const __m512 y = b ? _mm512_maskz_loadu_ps(m, b + c) : _mm512_setzero_ps();
  const __m512i ba = (__m512i)_mm512_cvtne2ps_pbh(y, x);
  if (res) *res = bf16_residuals(y, x, ba);
  return ba;
}
__m512i bf16_row_pair(const uint16_t* a, const uint16_t* b, int64_t c, int64_t d,
                      __m512i* /*res: none*/) {
  const __mmask16 m = avx512::tail_mask(d - c);
  const __m256i x = a ? _mm256_maskz_loadu_epi16(m, a + c) : _mm256_setzero_si256();
  const __m256i y = b ? _mm256_maskz_loadu_epi16(m, b + c) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(x), y, 1);
}

// Qb rows i < round_up(len + 15, 16) of terms * dp bf16: segment t holds bf16(q[i][c]) (or,
// split, the lo term for t = 1), zero for c >= d and i >= len.  T: float, or uint16_t (bf16
// input, terms 1), here and in the two packers below.
template <typename T>
void convert_queries(const T* q, int64_t ld, int64_t len, int64_t d, int64_t dp, int terms,
                     uint16_t* qb) {
  const int64_t rows = round_up(len + 15, 16), ldq = terms * dp;
  for (int64_t i = 0; i < rows; ++i) {
    uint16_t* out = qb + i * ldq;
    if (i >= len) {
      std::memset(out, 0, size_t(ldq) * 2);
      continue;
    }
    for (int64_t c = 0; c < dp; c += 32) {
      __m512i l = _mm512_setzero_si512();
      const __m512i h = bf16_columns(q + i * ld, c, d, terms == 3 ? &l : nullptr);
      for (int t = 0; t < terms; ++t) _mm512_store_si512(out + t * dp + c, a_lo(t) ? l : h);
    }
  }
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

// Kb[((n / 16) * (D / 2) + e / 2) * 32 + (n % 16) * 2 + e % 2] = term(K[n][c]) for depth
// e = t * dp + c (D = terms * dp; segment t's term: hi, or lo for b_lo(t)), zero for n >= len or
// c >= d: K (len, d) as a packed weight (N = len, K = D).  16 keys x 32 columns at a time: each
// key's 16 bf16 pairs in one register, transposed so that a register holds one pair of all 16
// keys, a 64-byte row of the panel.
template <typename T>
void pack_keys(const T* k, int64_t ld, int64_t len, int64_t d, int64_t dp, int terms,
               uint32_t* kb) {
  const int64_t pairs = terms * dp / 2, keys = round_up(len, 32);
  for (int64_t n0 = 0; n0 < keys; n0 += 16) {
    uint32_t* panel = kb + (n0 / 16) * pairs * 16;
    for (int64_t c = 0; c < dp; c += 32) {
      __m512i h[16], l[16];
      for (int i = 0; i < 16; ++i) {
        h[i] = l[i] = _mm512_setzero_si512();
        if (n0 + i < len)  // pairs (c, c+1), (c+2, c+3), ...
          h[i] = bf16_columns(k + (n0 + i) * ld, c, d, terms == 3 ? &l[i] : nullptr);
      }
      transpose16x16(h);
      if (terms == 3) transpose16x16(l);
      for (int t = 0; t < terms; ++t) {
        uint32_t* rows = panel + (t * dp / 2 + c / 2) * 16;
        for (int p = 0; p < 16; ++p) _mm512_storeu_si512(rows + p * 16, b_lo(t) ? l[p] : h[p]);
      }
    }
  }
}

// Vb[((c / 16) * (J / 2) + e / 2) * 32 + (c % 16) * 2 + e % 2] = term(V[j][c]) for depth
// e = t * lp32 + j (J = terms * lp32, segment t's term as in pack_keys), zero for j >= len or
// c >= d: V^T (d, len) as a packed weight (N = d, K = J).
template <typename T>
void pack_values(const T* v, int64_t ld, int64_t len, int64_t d, int64_t lp32, int terms,
                 uint32_t* vb) {
  const int64_t cols = round_up(d, 32);
  for (int64_t c = 0; c < cols; c += 16) {
    uint32_t* panel = vb + (c / 16) * (terms * lp32 / 2) * 16;
    for (int64_t j = 0; j < lp32; j += 2) {
      __m512i r = _mm512_setzero_si512();
      const __m512i ba = bf16_row_pair(j < len ? v + j * ld : nullptr,
                                       j + 1 < len ? v + (j + 1) * ld : nullptr, c, d,
                                       terms == 3 ? &r : nullptr);
      const __m512i h = bf16_pairs(ba);
      const __m512i l = terms == 3 ? bf16_pairs(r) : h;
      for (int t = 0; t < terms; ++t)
        _mm512_store_si512(panel + (t * lp32 / 2 + j / 2) * 16, b_lo(t) ? l : h);
    }
  }
}

// p rows [0, N) (stride ldp, segment t at t * lp32) <- the terms of softmax(scale * s row (len))
// (A side: hi, or lo for a_lo(t)), zeros past len; s (N rows, stride lds floats) is overwritten.
template <int N>
void softmax_rows_bf16(float* s, int64_t lds, int64_t len, int64_t lp32, int terms, float scale,
                       uint16_t* p, int64_t ldp) {
  __m512 inv[N];
  avx512::softmax_exp_rows<N>(s, lds, len, scale, inv);
  for (int i = 0; i < N; ++i)
    for (int64_t j = 0; j < lp32; j += 16) {
      const __m512 e = _mm512_maskz_loadu_ps(avx512::tail_mask(len - j), s + i * lds + j);
      const __m512 x = _mm512_mul_ps(e, inv[i]);
      const __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
      const __m256i l = terms == 3 ? (__m256i)_mm512_cvtneps_pbh(bf16_residual(x, h)) : h;
      for (int t = 0; t < terms; ++t)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + i * ldp + t * lp32 + j),
                            a_lo(t) ? l : h);
    }
}

// softmax_rows_bf16 over `rows` rows, four at a time.
void softmax_bf16(float* s, int64_t lds, int64_t rows, int64_t len, int64_t lp32, int terms,
                  float scale, uint16_t* p, int64_t ldp) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    softmax_rows_bf16<4>(s + r * lds, lds, len, lp32, terms, scale, p + r * ldp, ldp);
  for (; r < rows; ++r)
    softmax_rows_bf16<1>(s + r * lds, lds, len, lp32, terms, scale, p + r * ldp, ldp);
}

}  // namespace

int64_t attention_scratch_bytes(int64_t len, int64_t d_head, bool split) {
  return Scratch(len, d_head, split ? 3 : 1).total();
}

namespace {

template <typename T>
void attend(const T* q, const T* k, const T* v, int64_t ld, int64_t len, int64_t d_head,
            float scale, float* out, uint16_t* out_bf16, int64_t ld_out, void* scratch,
            bool split) {
  const int terms = split ? 3 : 1;  // bf16 input: not split
  const Scratch sz(len, d_head, terms);
  auto* base = static_cast<uint8_t*>(scratch);
  auto* qb = reinterpret_cast<uint16_t*>(base);
  uint8_t* kb = base + sz.q;
  uint8_t* vb = kb + sz.k;
  auto* s = reinterpret_cast<float*>(vb + sz.v);
  auto* pb = reinterpret_cast<uint16_t*>(vb + sz.v + sz.s);
  auto* o = reinterpret_cast<float*>(vb + sz.v + sz.s + sz.p);
  convert_queries(q, ld, len, d_head, sz.dp, terms, qb);
  pack_keys(k, ld, len, d_head, sz.dp, terms, reinterpret_cast<uint32_t*>(kb));
  pack_values(v, ld, len, d_head, sz.lp32, terms, reinterpret_cast<uint32_t*>(vb));
  const int64_t qd = terms * sz.dp, pd = terms * sz.lp32;  // the products' depths (bf16)
  const int64_t ldq = qd * 2, lds = sz.lp16 * 4, ldp = pd * 2;  // bytes
  const int64_t k_panel = qd * 32, v_panel = pd * 32;  // bytes per 16 keys / columns
  const int64_t q_steps = qd / 32, p_steps = pd / 32, key_blocks = sz.lp16 / 16;
  amx::load_full_tile_config();
  // Blocks of kGroups groups: scores and softmax of every group, then P @ V of every group, so
  // that a tile load of P never waits on the vector stores that have just written it.  Both
  // products take two groups (32 rows) at a time against two 16-column B panels: a 2 x 2 grid
  // of tiles, each B tile read from L2 for 32 rows instead of 16.
  for (int64_t b0 = 0; b0 < len; b0 += kGroups * kRows) {
    const int64_t groups = (min_i64(len - b0, kGroups * kRows) + kRows - 1) / kRows;
    for (int64_t g = 0; g < groups; g += 2) {
      const int64_t i0 = b0 + g * kRows;
      const int rows = int(min_i64(len - i0, 2 * kRows));
      const int64_t padded = rows > kRows ? 2 * kRows : kRows;  // the P rows the tiles read
      uint16_t* pg = pb + g * kRows * pd;
      // S (rows, lp16) = Q[i0 : i0 + rows] @ K^T, 32 keys per pass.
      const uint8_t* qg = reinterpret_cast<const uint8_t*>(qb + i0 * qd);
      for (int64_t j = 0; j < key_blocks; j += 2)
        amx::tile_block_any<false>(rows, min_i64(sz.lp16 - 16 * j, 32), qg, ldq, kb + j * k_panel,
                                   k_panel, q_steps, s + j * 16, lds, false);
      softmax_bf16(s, sz.lp16, rows, len, sz.lp32, terms, scale, pg, pd);
      if (rows < padded) std::memset(pg + rows * pd, 0, size_t((padded - rows) * ldp));
    }
    for (int64_t g = 0; g < groups; g += 2) {
      const int64_t i0 = b0 + g * kRows;
      const int rows = int(min_i64(len - i0, 2 * kRows));
      const uint8_t* pg = reinterpret_cast<const uint8_t*>(pb + g * kRows * pd);
      // O (rows, d) = P @ V, 32 output columns per pass.
      for (int64_t c0 = 0; c0 < d_head; c0 += 32) {
        const int64_t cols = min_i64(32, d_head - c0);
        amx::tile_block_any<false>(rows, cols, pg, ldp, vb + (c0 / 16) * v_panel, v_panel, p_steps,
                                   o, 32 * 4, false);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < cols; j += 16) {
            const __mmask16 m = avx512::tail_mask(cols - j);
            const __m512 x = _mm512_load_ps(o + r * 32 + j);
            const int64_t at = (i0 + r) * ld_out + c0 + j;
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

}  // namespace

void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, uint16_t* out_bf16, int64_t ld_out,
                    void* scratch) {
  attend(q, k, v, ld, len, d_head, scale, out, out_bf16, ld_out, scratch, false);
}

void attention_head_split(const float* q, const float* k, const float* v, int64_t ld,
                          int64_t len, int64_t d_head, float scale, float* out,
                          uint16_t* out_bf16, int64_t ld_out, void* scratch) {
  attend(q, k, v, ld, len, d_head, scale, out, out_bf16, ld_out, scratch, true);
}

void attention_head_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t ld,
                         int64_t len, int64_t d_head, float scale, float* out,
                         uint16_t* out_bf16, int64_t ld_out, void* scratch) {
  attend(q, k, v, ld, len, d_head, scale, out, out_bf16, ld_out, scratch, false);
}

}  // namespace attention_amx
}  // namespace kernels
}  // namespace pybert
