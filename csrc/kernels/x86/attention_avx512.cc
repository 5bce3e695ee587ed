// AVX-512 attention for one (sequence, head).
//
//   K (len, d) -> Kp: packed as an nn.Linear weight of shape (len, d)  (panels of keys)
//   V (len, d) -> Vp: copied contiguous, or for gemm_packed packed as the weight V^T (d, len)
//   for each block of up to kBlock query rows:
//     S (rows, len) = Q_blk (rows, d) @ K^T                  qk_rows (d = 16, 32, 48, 64)
//                                                            or gemm_packed
//     P = exp(scale * (S - rowmax)), four rows at a time    exp2_ps, masked tail
//     O_blk (rows, d) = P (rows, len) @ V / rowsum(P)        pv_block (d = 16, 32, 48, 64)
//                                                            or gemm_packed + scale_rows
// P stays unnormalized and each output row is scaled by 1 / its sum: d multiplies a row
// instead of len.
//
// A block's scores stay in L2; no (len, len) matrix is formed for long sequences.  The usual
// head sizes have their own kernels for both products: as a packed GEMM, Q K^T runs 16 - 64
// k steps a tile, where the GEMM's per-tile work (packing Q, the tile's set-up, prefetch
// bookkeeping) weighs, and P @ V's d columns would be padded to the 48-column panel (d = 32: a
// third of the work wasted) and P packed into strips first.
// ODR: only intrinsics and internal-linkage helpers (see gemm_avx512.cc).

// GCC 12 false positive on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/x86/attention_isa.h"
#include "kernels/x86/gemm_isa.h"
#include "kernels/x86/simd_math_avx512.h"
#include "kernels/blocking.h"

namespace pybert {
namespace kernels {
namespace avx512 {
namespace {

constexpr int64_t kBlock = 64;  // query rows per block: (64, len) scores <= 128 KB


// Kp[(p * d + k) * nr + j] = K[p * nr + j][k]   (0 past len): K (len, d) as a (len, d) weight.
// 8 keys x 8 columns at a time, transposed in registers.
void pack_keys(const float* k, int64_t ld, int64_t len, int64_t d, float* kp) {
  const int64_t nr = panel_width();
  for (int64_t p0 = 0; p0 < len; p0 += nr) {
    float* panel = kp + p0 * d;
    const int64_t keys = len - p0 < nr ? len - p0 : nr;
    int64_t j = 0;
    for (; j + 8 <= keys; j += 8) {
      const float* rows = k + (p0 + j) * ld;
      int64_t c = 0;
      for (; c + 8 <= d; c += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows + i * ld + c);
        transpose8x8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(panel + (c + i) * nr + j, r[i]);
      }
      for (; c < d; ++c)
        for (int i = 0; i < 8; ++i) panel[c * nr + j + i] = rows[i * ld + c];
    }
    for (; j < nr; ++j)  // the panel's last keys, then zeros
      for (int64_t c = 0; c < d; ++c) panel[c * nr + j] = j < keys ? k[(p0 + j) * ld + c] : 0.0f;
  }
}

// Vp[(p * len + j) * nr + c] = V[j][p * nr + c]   (0 past d): V^T (d, len) as a weight.
void pack_values(const float* v, int64_t ld, int64_t len, int64_t d, float* vp) {
  const int64_t nr = panel_width();
  for (int64_t p0 = 0; p0 < d; p0 += nr) {
    float* panel = vp + p0 * len;
    const int64_t cols = d - p0 < nr ? d - p0 : nr;
    for (int64_t j = 0; j < len; ++j) {
      for (int64_t c = 0; c < cols; ++c) panel[j * nr + c] = v[j * ld + p0 + c];
      for (int64_t c = cols; c < nr; ++c) panel[j * nr + c] = 0.0f;
    }
  }
}

// V (len, d) rows (stride ld) -> vr (len, d), contiguous.
void copy_values(const float* v, int64_t ld, int64_t len, int64_t d, float* vr) {
  for (int64_t j = 0; j < len; ++j)
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = tail_mask(d - c);
      _mm512_mask_storeu_ps(vr + j * d + c, m, _mm512_maskz_loadu_ps(m, v + j * ld + c));
    }
}

// Keys per packed panel: pack_keys lays K out as gemm_packed's weight, panel_width() keys a
// panel; qk_rows holds a panel row in kKeyVectors registers (checked in attention_head).
constexpr int kKeyVectors = 3;
constexpr int64_t kKeysPerPanel = 16 * kKeyVectors;
constexpr int kQueryRows = 8;  // qk_rows: 8 x 48 scores in 24 registers

// S (R, len; stride lds) = Q (R rows, stride ld; d floats each) @ K^T, K packed by pack_keys,
// and row_max[i] = max of S's row i.  Each panel of keys is one (R, 48) tile in R * 3 <= 24
// registers, d k steps deep; Q's R rows (R * d floats) stay in L1 across the panels and are read
// in place.  The maxima are taken from the registers, which spares the softmax a pass over S.
template <int R>
void qk_rows(const float* q, int64_t ld, const float* kp, int64_t len, int64_t d, float* s,
             int64_t lds, float* row_max) {
  constexpr int NV = kKeyVectors;
  __m512 mx[R];
  for (int i = 0; i < R; ++i) mx[i] = _mm512_set1_ps(-__builtin_inff());
  for (int64_t p0 = 0; p0 < len; p0 += kKeysPerPanel) {
    const float* b = kp + p0 * d;
    __m512 acc[R][NV];
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int64_t c = 0; c < d; ++c) {
      __m512 kv[NV];
      for (int v = 0; v < NV; ++v) kv[v] = _mm512_loadu_ps(b + c * kKeysPerPanel + 16 * v);
      for (int i = 0; i < R; ++i) {
        const __m512 qi = _mm512_set1_ps(q[i * ld + c]);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(qi, kv[v], acc[i][v]);
      }
    }
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = tail_mask(len - p0 - 16 * v);
      for (int i = 0; i < R; ++i) {
        _mm512_mask_storeu_ps(s + i * lds + p0 + 16 * v, m, acc[i][v]);
        mx[i] = _mm512_mask_max_ps(mx[i], m, mx[i], acc[i][v]);
      }
    }
  }
  for (int i = 0; i < R; ++i) row_max[i] = _mm512_reduce_max_ps(mx[i]);
}

// O (R, 16 NV; stride ld_out) = diag(inv) P (R rows, stride lp; len keys) @ vr (len, 16 NV).
// The (R, d) outputs stay in R * NV <= 24 registers over all keys.
template <int R, int NV>
void pv_rows(const float* p, int64_t lp, const float* vr, int64_t len, const float* inv,
             float* out, int64_t ld_out) {
  constexpr int64_t d = 16 * NV;
  __m512 acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < len; ++k) {
    __m512 vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = _mm512_loadu_ps(vr + k * d + 16 * v);
    for (int i = 0; i < R; ++i) {
      const __m512 pi = _mm512_set1_ps(p[i * lp + k]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(pi, vv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_ps(out + i * ld_out + 16 * v,
                       _mm512_mul_ps(acc[i][v], _mm512_set1_ps(inv[i])));
}

// pv_rows over a block's rows, R rows at a time: as many as fill ~24 accumulators (d = 32:
// 12 rows, 24 FMAs against 14 loads a key).
template <int NV>
void pv_block(const float* p, int64_t lp, int64_t rows, const float* vr, int64_t len,
              const float* inv, float* out, int64_t ld_out) {
  constexpr int R = NV == 1 ? 16 : NV == 2 ? 12 : NV == 3 ? 8 : 6;
  for (int64_t r = 0; r < rows; r += R) {
    const int n = int(rows - r < R ? rows - r : R);
    with_rows<R>(n, [&](auto rows) {
      pv_rows<decltype(rows)::value, NV>(p + r * lp, lp, vr, len, inv + r, out + r * ld_out,
                                         ld_out);
    });
  }
}

// Rows [0, rows) of s <- exp(scale * (row - max(row))), unnormalized; inv[r] = 1 / row r's sum.
// row_max: the rows' maxima, or null (then taken here).
void softmax_exp(float* s, int64_t lds, int64_t rows, int64_t len, float scale,
                 const float* row_max, float* inv) {
  __m512 iv[4];
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    softmax_exp_rows<4>(s + r * lds, lds, len, scale, iv, row_max ? row_max + r : nullptr);
    for (int i = 0; i < 4; ++i) inv[r + i] = _mm512_cvtss_f32(iv[i]);
  }
  for (; r < rows; ++r) {
    softmax_exp_rows<1>(s + r * lds, lds, len, scale, iv, row_max ? row_max + r : nullptr);
    inv[r] = _mm512_cvtss_f32(iv[0]);
  }
}

// Row r of o (rows, d; stride ld) *= inv[r].
void scale_rows(float* o, int64_t ld, int64_t rows, int64_t d, const float* inv) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = tail_mask(d - c);
      _mm512_mask_storeu_ps(o + r * ld + c, m,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o + r * ld + c),
                                          _mm512_set1_ps(inv[r])));
    }
}

// d_head with qk_rows and pv_block kernels.
bool own_kernels(int64_t d_head) { return d_head % 16 == 0 && d_head >= 16 && d_head <= 64; }

}  // namespace

int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  const int64_t nr = panel_width(), lp = round_up(len, 16);
  return round_up(len, nr) * d_head + round_up(d_head, nr) * len + kBlock * lp +
         int64_t(gemm_workspace_floats(kBlock, len > d_head ? len : d_head, false));
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  const int64_t nr = panel_width(), lp = round_up(len, 16);
  float* kp = scratch;                             // keys, packed
  float* vp = kp + round_up(len, nr) * d_head;     // values, packed
  float* s = vp + round_up(d_head, nr) * len;      // (kBlock, lp) scores, then probabilities
  float* ws = s + kBlock * lp;                     // the GEMMs' packed query or probability rows
  const bool own = own_kernels(d_head) && nr == kKeysPerPanel;
  pack_keys(k, ld, len, d_head, kp);
  if (own)
    copy_values(v, ld, len, d_head, vp);
  else
    pack_values(v, ld, len, d_head, vp);
  const Epilogue none;
  float inv[kBlock];      // 1 / row sums of the block's unnormalized probabilities
  float row_max[kBlock];  // the block's row maxima of S, when qk_rows computed it
  for (int64_t i0 = 0; i0 < len; i0 += kBlock) {
    const int64_t rows = len - i0 < kBlock ? len - i0 : kBlock;
    // S (rows, len) = Q[i0 : i0 + rows] @ K^T
    if (own) {
      for (int64_t r = 0; r < rows; r += kQueryRows)
        with_rows<kQueryRows>(int(rows - r < kQueryRows ? rows - r : kQueryRows), [&](auto n) {
          qk_rows<decltype(n)::value>(q + (i0 + r) * ld, ld, kp, len, d_head, s + r * lp, lp,
                                      row_max + r);
        });
    } else {
      // (BlockContext{} spelled out: a bare {} would also convert to kernels::gemm_packed's
      // Isa, which argument-dependent lookup brings in, and pick the AVX2 kernel.)
      gemm_packed(q + i0 * ld, ld, kp, len, d_head, s, lp, 0, rows, 0, len, none, ws,
                  BlockContext{});
    }
    softmax_exp(s, lp, rows, len, scale, own ? row_max : nullptr, inv);
    // O[i0 : i0 + rows] (rows, d) = P (rows, len) @ V
    float* o = out + i0 * ld_out;
    switch (own ? d_head / 16 : 0) {
      case 1: pv_block<1>(s, lp, rows, vp, len, inv, o, ld_out); break;
      case 2: pv_block<2>(s, lp, rows, vp, len, inv, o, ld_out); break;
      case 3: pv_block<3>(s, lp, rows, vp, len, inv, o, ld_out); break;
      case 4: pv_block<4>(s, lp, rows, vp, len, inv, o, ld_out); break;
      default:
        gemm_packed(s, lp, vp, d_head, len, o, ld_out, 0, rows, 0, d_head, none, ws,
                    BlockContext{});
        scale_rows(o, ld_out, rows, d_head, inv);
    }
  }
}

}  // namespace avx512

constexpr AttentionKernels kAvx512Attention{avx512::attention_scratch_floats,
                                            avx512::attention_head};

}  // namespace kernels
}  // namespace pybert
