// Reduced-precision GEMM micro-kernels for nn.Linear: bf16 on AMX, int8 on AMX / AVX512-VNNI /
// AVX2.  Same contract as gemm.h (fp32): weights packed once at load, one (m, n) block per call,
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
// ISA code lives in gemm_lowp_amx.cc / gemm_lowp_vnni.cc / gemm_lowp_avx2.cc (distinct
// namespaces, internal-linkage helpers only); this header and gemm_lowp.cc are baseline x86-64.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/gemm.h"  // Epilogue, GemmBlocks

namespace pybert {
namespace kernels {

// ------------------------------------------------------------------ run-time support
// Which kernels the running CPU (cpu_features(), PYBERT_ISA caps included) allows.  AMX needs
// the tile-data permission, which cpu_features() requests once per process.
bool bf16_amx_available();  // AMX-TILE + AMX-BF16 + AVX512-BF16 (the fp32 -> bf16 convert)

// int8 kernel family.  Their quantized-activation formats differ (see quantize_rows).
enum class Int8Isa { Avx2, Avx512Vnni, Amx };
Int8Isa best_int8_isa();  // Amx > Avx512Vnni > Avx2
const char* int8_isa_name(Int8Isa isa);  // "amx_int8", "avx512_vnni", "avx2"

// Padded sizes used by the layouts below.
int64_t bf16_padded_k(int64_t K);   // round_up(K, 32)
int64_t int8_padded_k(int64_t K);   // round_up(K, 64)
int64_t lowp_padded_m(int64_t M);   // round_up(M + 15, 16): rows an A buffer must hold
                                    // (a 32-row strip starting at any m < M reads <= M + 14)
int64_t lowp_padded_n(int64_t N);   // round_up(N, 32)

// ------------------------------------------------------------------ bf16 (AMX only)
// W: nn.Linear weight (N, K) fp32 row-major.  packed: packed_weight_bf16_bytes(N, K) bytes,
// 64-byte aligned.  bf16 = round-to-nearest-even of W (fp32 denormals -> 0, as vcvtne2ps2bf16).
size_t packed_weight_bf16_bytes(int64_t N, int64_t K);
void pack_weight_bf16(const float* W, int64_t N, int64_t K, void* packed);

// Activation staging: Ab (lowp_padded_m(M), Kp = bf16_padded_k(K)) bf16 row-major, 64-byte
// aligned, bf16_rows_bytes(M, K) bytes.  convert_rows_bf16 writes rows [m0, m1) (RNE,
// columns K..Kp zero); the call with m1 == M also zero-fills rows [M, lowp_padded_m(M)).
// Requires bf16_amx_available() (uses vcvtne2ps2bf16).
size_t bf16_rows_bytes(int64_t M, int64_t K);
void convert_rows_bf16(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                       uint16_t* Ab);

// Zeroes what a bf16 GEMM reads of staged rows beyond the data: columns [K, Kp) of rows
// [0, M) and all of rows [M, lowp_padded_m(M)); for rows written by something other than
// convert_rows_bf16 (a bf16 epilogue, attention).
void zero_bf16_padding(uint16_t* Ab, int64_t M, int64_t K);

// C[m0:m1, n0:n1] = epilogue(bf16(A)[m0:m1, :] @ bf16(W)[n0:n1, :]^T), fp32 accumulation in
// AMX tiles, fp32 epilogue.  A block of >= 4 MiB of C is written with non-temporal stores (the
// same values; the call ends with an sfence, so the caller's join publishes them).  Ab from convert_rows_bf16 of all M rows (rows [m0, m1 + 15) may be
// read).  n0 must be a multiple of 16; m1 <= M; n1 <= N.  Cells of C outside the block are
// neither read nor written.
void gemm_bf16_amx(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
                   int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   const Epilogue& ep);

// The same, with the epilogue's result rounded to bf16 (RNE) and stored in Cb (row stride ldcb
// elements) instead of fp32: for a result that only feeds another bf16 GEMM, Cb can be that
// GEMM's staged A rows (ldcb = bf16_padded_k(N); the caller zeroes the padding rows and columns).
// A block of >= 4 MiB of Cb is written with non-temporal stores, as gemm_bf16_amx's C.
void gemm_bf16_amx_to_bf16(const uint16_t* Ab, const void* packed, int64_t N, int64_t K,
                           uint16_t* Cb, int64_t ldcb, int64_t m0, int64_t m1, int64_t n0,
                           int64_t n1, const Epilogue& ep);

// ------------------------------------------------------------------ int8
// Weights: symmetric per output channel, s_n = max_k |W[n, k]| / 127 (fp32),
//   q[n, k] = clamp(nearbyint(W[n, k] * (127 / max_k |W[n, k]|)), -127, 127)   (0 if the row is 0)
// packed (packed_weight_int8_bytes(N, K) bytes, 64-byte aligned) = [Np * Kp int8 panels]
// [Np fp32 s_n][Np int32 sum_k q[n, k]] (the last pays back the activations' zero points).
// One packed weight serves all three Int8Isa kernels.
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
// int32.  Rows [m0, m1) are written; the call with m1 == M also fills the padding rows.
// Storage per isa, and a_zero the kernel subtracts as a_zero[m] * sum_k q_w[n, k]:
//   Amx, Avx2:   int8 u - 128, a_zero = z_m - 128  (AMX tdpbssd s8 x s8; AVX2 |a| * sign(w, a),
//                                                   |a| <= 128 keeps vpmaddubsw unsaturated)
//   Avx512Vnni:  uint8 u,      a_zero = z_m        (vpdpbusd u8 x s8)
// so the integer dot products are exact for every isa.
size_t quantized_rows_bytes(int64_t M, int64_t K);
void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero, Int8Isa isa);

// C[m0:m1, n0:n1] = epilogue(s_m * s_n * (sum_k q_a[m, k] q_w[n, k] - a_zero[m] sum_k q_w[n, k])),
// int32 accumulation.  Aq / a_scale / a_zero from quantize_rows(.., isa) (rows [m0, m1 + 15) of
// Aq may be read).  Int8Isa::Amx writes a block of >= 4 MiB of C as gemm_bf16_amx does.
// n0 must be a multiple of 16; m1 <= M; n1 <= N.
void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep, Int8Isa isa);

// Recommended block split for n_threads calls: with at least 128 rows a thread, whole rows per
// thread (the rows it staged itself); else as choose_blocks for fp32, N first (each thread
// streams its share of the weight), M for the rest. nb multiple of 32, mb of 32.
GemmBlocks choose_lowp_blocks(int64_t M, int64_t N, int64_t K, int n_threads);

}  // namespace kernels
}  // namespace pybert
