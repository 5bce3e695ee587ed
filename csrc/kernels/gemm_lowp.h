// Reduced-precision GEMM micro-kernels for nn.Linear: bf16 on AMX, int8 on AMX / AVX512-VNNI /
// AVX2 / the generic C++ family (and the arm families, see kernels/arm/).  Same contract as gemm.h (fp32): weights packed once at load, one (m, n) block per call,
// single-threaded, fused epilogue y = act(dequant(acc) + bias) + residual, the caller splits
// blocks over threads.  No threads, no exceptions, no allocation: the caller converts /
// quantizes A once per GEMM into its own buffer (rows may be split over threads), then
// computes the (m, n) blocks from it.
//
//   C[m, n] = epilogue( sum_k A[m, k] * W[n, k] )      A (M, K) @ W^T (K, N) -> C (M, N)
//
// Packed weight layout (both precisions): panels of 16 output features, N padded to Np =
// round_up(N, 32) with zero rows, K padded to Kp with zeros, each panel (Kp / G, 16, G)
// with G = 2 (bf16 "VNNI pairs") or G = 4 (int8 quads), i.e.
//   packed[((n / 16) * (Kp / G) + k / G) * 16 * G + (n % 16) * G + k % G] = W[n, k]
// so that one 16 x 64-byte AMX B tile is 1 KiB contiguous, and the same bytes serve the
// AVX512-VNNI (one zmm = 16 columns x 4 k) and AVX2 (one ymm = 8 columns x 4 k) kernels.
//
// Each family publishes its kernels as one Int8Gemm / Bf16Gemm table (kernels/families.h), picked
// once per process (dispatch.h); the packers and sizes here are ISA-neutral (packing.cc).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/gemm.h"  // Epilogue, GemmBlocks

namespace pybert {
namespace kernels {

// Padded sizes used by the layouts below.
int64_t bf16_padded_k(int64_t K);   // round_up(K, 32)
int64_t int8_padded_k(int64_t K);   // round_up(K, 64)
int64_t lowp_padded_m(int64_t M);   // round_up(M + 15, 16): rows an A buffer must hold
                                    // (a 32-row strip starting at any m < M reads <= M + 14)
int64_t lowp_padded_n(int64_t N);   // round_up(N, 32)

// ------------------------------------------------------------------ bf16
// W: nn.Linear weight (N, K) fp32 row-major.  packed: packed_weight_bf16_bytes(N, K) bytes,
// 64-byte aligned.  bf16 = round-to-nearest-even of W (fp32 denormals -> 0, as vcvtne2ps2bf16).
size_t packed_weight_bf16_bytes(int64_t N, int64_t K);
void pack_weight_bf16(const float* W, int64_t N, int64_t K, void* packed);

// Activation staging: Ab (lowp_padded_m(M), Kp = bf16_padded_k(K)) bf16 row-major, 64-byte
// aligned, bf16_rows_bytes(M, K) bytes (written by Bf16Gemm::convert_rows).
size_t bf16_rows_bytes(int64_t M, int64_t K);

// Zeroes what a bf16 GEMM reads of staged rows beyond the data: columns [K, Kp) of rows
// [0, M) and all of rows [M, lowp_padded_m(M)); for rows written by something other than
// Bf16Gemm::convert_rows (a bf16 epilogue, attention).
void zero_bf16_padding(uint16_t* Ab, int64_t M, int64_t K);

// One family's bf16 kernels (null in the KernelSet where there are none: bf16 then runs fp32).
struct Bf16Gemm {
  const char* name;  // "amx_bf16", "neon_bf16" (pybert.cpu_info()'s bf16_kernels)

  // Writes rows [m0, m1) of Ab (round-to-nearest-even, columns K..Kp zero); the call with
  // m1 == M also zero-fills rows [M, lowp_padded_m(M)).
  void (*convert_rows)(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                       uint16_t* Ab);

  // C[m0:m1, n0:n1] = epilogue(bf16(A)[m0:m1, :] @ bf16(W)[n0:n1, :]^T), fp32 accumulation, fp32
  // epilogue.  Ab from convert_rows of all M rows (rows [m0, m1 + 15) may be read).  n0 must be
  // a multiple of 16; m0 < m1 <= M; n0 < n1 <= N.  Cells of C outside the block are neither read
  // nor written.  A kernel may write a large block (AMX: >= 8 MiB of C) with non-temporal stores:
  // the same values, and the call ends with a store fence, so the caller's join publishes them.
  void (*gemm)(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
               int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep);

  // The same, with the epilogue's result rounded to bf16 (RNE) and stored in Cb (row stride ldcb
  // elements) instead of fp32: for a result that only feeds another bf16 GEMM, Cb can be that
  // GEMM's staged A rows (ldcb = bf16_padded_k(N); the caller zeroes the padding rows and
  // columns).  Large blocks of Cb may be streamed as gemm's C.
  void (*gemm_to_bf16)(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, uint16_t* Cb,
                       int64_t ldcb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       const Epilogue& ep);

  // Attention with q, k, v and the probabilities rounded to bf16, fp32 accumulation and softmax
  // (the arguments of AttentionKernels::head, attention.h).  scratch: 64-byte aligned,
  // attention_scratch_bytes(len, d_head, split) bytes (split: for attention_head_split).  The
  // result goes to out (fp32) or, when out_bf16 is set, rounded to bf16 into out_bf16 (row
  // stride ld_out elements).
  int64_t (*attention_scratch_bytes)(int64_t len, int64_t d_head, bool split);
  void (*attention_head)(const float* q, const float* k, const float* v, int64_t ld_qkv,
                         int64_t len, int64_t d_head, float scale, float* out, uint16_t* out_bf16,
                         int64_t ld_out, void* scratch);
  // The same with each product's inputs split into three bf16 terms, x = hi + lo (+ |r| <=
  // 2^-17 |x|), hi = bf16(x), lo = bf16(x - hi), and a·b taken as hi hi + lo hi + hi lo:
  //   |error of a product sum| <= ~2^-15 sum |a| |b|   (bf16 rounding: ~2^-8, fp32: ~2^-24 len).
  // Null where the family has none.
  void (*attention_head_split)(const float* q, const float* k, const float* v, int64_t ld_qkv,
                               int64_t len, int64_t d_head, float scale, float* out,
                               uint16_t* out_bf16, int64_t ld_out, void* scratch);
  // attention_head with q, k, v given in bf16 (row stride ld_qkv elements), as a bf16 GEMM
  // writes them (gemm_to_bf16): the same result as attention_head on their fp32 values, without
  // the fp32 round trip; scratch as attention_head's.
  void (*attention_head_bf16)(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                              int64_t ld_qkv, int64_t len, int64_t d_head, float scale,
                              float* out, uint16_t* out_bf16, int64_t ld_out, void* scratch);
};

// ------------------------------------------------------------------ int8
// Weights: symmetric per output channel, s_n = max_k |W[n, k]| / 127 (fp32),
//   q[n, k] = clamp(nearbyint(W[n, k] * (127 / max_k |W[n, k]|)), -127, 127)   (0 if the row is 0)
// packed (packed_weight_int8_bytes(N, K) bytes, 64-byte aligned) = [Np * Kp int8 panels]
// [Np fp32 s_n][Np int32 sum_k q[n, k]] (the last pays back the activations' zero points).
// One packed weight serves every family's int8 kernel.
size_t packed_weight_int8_bytes(int64_t N, int64_t K);
void pack_weight_int8(const float* W, int64_t N, int64_t K, void* packed);

// Activations: asymmetric per token (row), 256 levels over [lo, hi] = [min(0, min_k A[m, k]),
// max(0, max_k A[m, k])], computed at run time (symmetric levels waste half the range on the
// one-sided rows of GELU outputs and of LayerNorm outputs with outlier features):
//   s_m = (hi - lo) / 255,  z_m = nearbyint(-lo * (255 / (hi - lo))) in [0, 255],
//   u[m, k] = clamp(nearbyint(A[m, k] * (255 / (hi - lo))) + z_m, 0, 255),
//   A[m, k] ~ s_m * (u[m, k] - z_m)        (row of zeros -> s_m = 0).
// Non-finite activations are not supported.  Aq (lowp_padded_m(M), Kp = int8_padded_k(K)) bytes
// row-major, 64-byte aligned (quantized_rows_bytes(M, K)); a_scale (M) floats s_m, a_zero (M)
// int32.  The storage of u is the family's (its kernel subtracts a_zero[m] * sum_k q_w[n, k]):
//   signed:    int8 u - 128, a_zero = z_m - 128  (AMX tdpbssd s8 x s8; AVX2 |a| * sign(w, a),
//              |a| <= 128 keeps vpmaddubsw unsaturated; arm SDOT / SMMLA s8 x s8; generic)
//   unsigned:  uint8 u,      a_zero = z_m        (AVX512-VNNI vpdpbusd u8 x s8)
// so the integer dot products are exact for every family.
size_t quantized_rows_bytes(int64_t M, int64_t K);

// One family's int8 kernels: its quantizer and the GEMM that reads that quantizer's format.
struct Int8Gemm {
  const char* name;  // "amx_int8", "avx512_vnni", "avx2", "neon_i8mm", "neon_dotprod", "generic"

  // Rows [m0, m1) of Aq, a_scale, a_zero; the call with m1 == M also fills the padding rows.
  void (*quantize_rows)(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0,
                        int64_t m1, int8_t* Aq, float* a_scale, int32_t* a_zero);

  // C[m0:m1, n0:n1] = epilogue(s_m * s_n * (sum_k q_a[m, k] q_w[n, k] - a_zero[m] sum_k
  // q_w[n, k])), int32 accumulation.  Aq / a_scale / a_zero from this family's quantize_rows
  // (rows [m0, m1 + 15) of Aq may be read).  n0 must be a multiple of 16; m0 < m1 <= M;
  // n0 < n1 <= N.  Large blocks of C may be streamed as Bf16Gemm::gemm's.
  void (*gemm)(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep);
};

// Recommended block split for n_threads calls: with at least 128 rows a thread, whole rows per
// thread (the rows it staged itself); else as choose_blocks for fp32, N first (each thread
// streams its share of the weight), M for the rest. nb multiple of 32, mb of 32.
GemmBlocks choose_lowp_blocks(int64_t M, int64_t N, int64_t K, int n_threads);

}  // namespace kernels
}  // namespace pybert
