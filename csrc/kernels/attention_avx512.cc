// AVX-512 attention for one (sequence, head), on the packed fp32 GEMM micro-kernel.
//
//   K (len, d) -> Kp: packed as an nn.Linear weight of shape (len, d)  (panels of keys)
//   V (len, d) -> Vp: packed as the weight V^T of shape (d, len)       (panels of columns)
//   for each block of up to kBlock query rows:
//     S (rows, len) = Q_blk (rows, d) @ K^T                  gemm_packed
//     P = exp(scale * (S - rowmax)), four rows at a time    exp2_ps, masked tail
//     O_blk (rows, d) = P (rows, len) @ V / rowsum(P)        pv_block (d = 16, 32, 48, 64)
//                                                            or gemm_packed + scale_rows
// P stays unnormalized and each output row is scaled by 1 / its sum: d multiplies a row
// instead of len.
//
// A block's scores stay in L2; no (len, len) matrix is formed for long sequences.  P @ V has
// its own kernel for the usual head sizes: as a packed GEMM its d columns would be padded to
// the 48-column panel (d = 32: a third of the work wasted) and P packed into strips first.
// ODR: only intrinsics and internal-linkage helpers (see gemm_avx512.cc).

// GCC 12 false positive on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/attention_isa.h"
#include "kernels/gemm_isa.h"
#include "kernels/simd_math_avx512.h"
#include "kernels/blocking.h"

namespace pybert {
namespace kernels {
namespace avx512 {
namespace {

constexpr int64_t kBlock = 64;  // query rows per block: (64, len) scores <= 128 KB

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Kp[(p * d + k) * nr + j] = K[p * nr + j][k]   (0 past len): K (len, d) as a (len, d) weight.
// Column k of 16 keys at a time, gathered (a scalar copy strides through ld for every float).
void pack_keys(const float* k, int64_t ld, int64_t len, int64_t d, float* kp) {
  const int64_t nr = panel_width();
  const __m512i rows = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(int(ld)));
  for (int64_t p0 = 0; p0 < len; p0 += nr) {
    float* panel = kp + p0 * d;
    for (int64_t j0 = 0; j0 < nr; j0 += 16) {
      const __mmask16 m = tail_mask(len - p0 - j0);
      const float* base = k + (p0 + j0) * ld;
      for (int64_t c = 0; c < d; ++c)
        _mm512_storeu_ps(panel + c * nr + j0,
                         _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, base + c, 4));
    }
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

// O (R, 16 NV) [+]= P (R rows, stride lp; keys [k0, k1)) @ vr[k0:k1] (16 NV floats a key);
// then, when `inv` is set, row i of O *= inv[i].
template <int R, int NV>
void pv_rows(const float* p, int64_t lp, const float* vr, int64_t k0, int64_t k1, float* out,
             int64_t ld_out, bool accumulate, const float* inv) {
  constexpr int64_t d = 16 * NV;
  __m512 acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? _mm512_loadu_ps(out + i * ld_out + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = k0; k < k1; ++k) {
    __m512 vv[NV];
    for (int v = 0; v < NV; ++v) vv[v] = _mm512_loadu_ps(vr + k * d + 16 * v);
    for (int i = 0; i < R; ++i) {
      const __m512 pi = _mm512_set1_ps(p[i * lp + k]);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(pi, vv[v], acc[i][v]);
    }
  }
  if (inv)
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_mul_ps(acc[i][v], _mm512_set1_ps(inv[i]));
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + i * ld_out + 16 * v, acc[i][v]);
}

// O (rows, 16 NV) = diag(inv) P (rows, len; stride lp) @ vr (len, 16 NV).  Keys go 128 at a
// time, so the slice of V (<= 32 KB) stays in L1 while every row group of the block uses it; a
// row group keeps its (R, d) outputs in R * NV <= 24 registers.
template <int NV>
void pv_block(const float* p, int64_t lp, int64_t rows, const float* vr, int64_t len,
              const float* inv, float* out, int64_t ld_out) {
  constexpr int R = NV == 4 ? 6 : 8;
  constexpr int64_t kKeys = 128;
  for (int64_t k0 = 0; k0 < len; k0 += kKeys) {
    const int64_t k1 = k0 + kKeys < len ? k0 + kKeys : len;
    for (int64_t r = 0; r < rows; r += R) {
      const int n = int(rows - r < R ? rows - r : R);
      with_rows<R>(n, [&](auto rows) {
        pv_rows<decltype(rows)::value, NV>(p + r * lp, lp, vr, k0, k1, out + r * ld_out, ld_out,
                                           k0 > 0, k1 == len ? inv + r : nullptr);
      });
    }
  }
}

// Rows [0, rows) of s <- exp(scale * (row - max(row))), unnormalized; inv[r] = 1 / row r's sum.
void softmax_exp(float* s, int64_t lds, int64_t rows, int64_t len, float scale, float* inv) {
  __m512 iv[4];
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    softmax_exp_rows<4>(s + r * lds, lds, len, scale, iv);
    for (int i = 0; i < 4; ++i) inv[r + i] = _mm512_cvtss_f32(iv[i]);
  }
  for (; r < rows; ++r) {
    softmax_exp_rows<1>(s + r * lds, lds, len, scale, iv);
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

// d_head with a pv_block kernel.
bool fast_pv(int64_t d_head) { return d_head % 16 == 0 && d_head >= 16 && d_head <= 64; }

}  // namespace

int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  const int64_t nr = panel_width(), lp = round_up(len, 16);
  return round_up(len, nr) * d_head + round_up(d_head, nr) * len + kBlock * lp +
         int64_t(gemm_workspace_floats(kBlock, len > d_head ? len : d_head));
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  const int64_t nr = panel_width(), lp = round_up(len, 16);
  float* kp = scratch;                             // keys, packed
  float* vp = kp + round_up(len, nr) * d_head;     // values, packed
  float* s = vp + round_up(d_head, nr) * len;      // (kBlock, lp) scores, then probabilities
  float* ws = s + kBlock * lp;                     // the GEMMs' packed query or probability rows
  const bool pv = fast_pv(d_head);
  pack_keys(k, ld, len, d_head, kp);
  if (pv)
    copy_values(v, ld, len, d_head, vp);
  else
    pack_values(v, ld, len, d_head, vp);
  const Epilogue none;
  float inv[kBlock];  // 1 / row sums of the block's unnormalized probabilities
  for (int64_t i0 = 0; i0 < len; i0 += kBlock) {
    const int64_t rows = len - i0 < kBlock ? len - i0 : kBlock;
    // S (rows, len) = Q[i0 : i0 + rows] @ K^T
    // (BlockContext{} spelled out: a bare {} would also convert to kernels::gemm_packed's Isa,
    // which argument-dependent lookup brings in, and pick the AVX2 kernel.)
    gemm_packed(q + i0 * ld, ld, kp, len, d_head, s, lp, 0, rows, 0, len, none, ws,
                BlockContext{});
    softmax_exp(s, lp, rows, len, scale, inv);
    // O[i0 : i0 + rows] (rows, d) = P (rows, len) @ V
    float* o = out + i0 * ld_out;
    switch (pv ? d_head / 16 : 0) {
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
}  // namespace kernels
}  // namespace pybert
