// AMX bf16 / int8 GEMM kernels.  Build:
//   -O3 -mamx-tile -mamx-bf16 -mamx-int8 -mavx512f -mavx512bw -mavx512vl -mavx512dq
//   -mavx512bf16 -mavx512vnni
//
// ODR: no inline/template entity with external linkage is defined here (helpers live in an
// anonymous namespace, no std:: templates), so nothing compiled for AMX/AVX-512 can be picked
// by the linker for code that runs on other CPUs.
//
// Tiles (palette 1, every tile 16 rows x 64 bytes):
//   tmm0..3  C accumulators, a 2 x 2 grid of 16 x 16 fp32 / int32    (32 rows x 32 columns)
//   tmm4, 5  A tiles: rows m..m+15 and m+16..m+31, 32 bf16 / 64 int8 of k each
//   tmm6, 7  B tiles: columns n..n+15 and n+16..n+31 (1 KiB contiguous in the packed weight)
// Per k step: 4 tile loads, 4 tile dot products; each B tile feeds 2 products, each A tile 2.
//
// Blocking (one call, single thread):
//   for n block (nb <= 256 columns: their packed panels, nb * Kp * elem <= 512 KiB, stay in L2)
//    for m strip (32 rows of the staged A)
//     for k block (strips of > 16 rows: K in near-equal blocks of <= 512 bytes, so the A strip
//                  slice, 32 x 512 B = 16 KiB, stays in L1; strips of <= 16 rows: all of K)
//      for n pair (32 columns)
//       C tiles = 0 or reloaded from the strip scratch (32 x nb, on the stack)
//       for k step: C(32 x 32) += A strip slice (32 x 64 B) @ B pair slice
//       C tiles -> strip scratch; after the last k block: dequant + epilogue -> C (masked, so
//       M/N tails never touch C outside the block; padded A rows / W columns are dropped).
// Deep K (an n block of < kDeepMinNb columns, i.e. bf16 K > 2048): m block (A in L2) -> n pair
// -> m strip -> all k steps with C in the tiles; see gemm_tiles_deep.
// Measured (1 thread, M=128 N=K=768): k blocking 1190 -> 1430 GFLOP/s bf16; this core's
// tdpbf16ps peak with register operands is ~2.1 TFLOP/s (tools/amx_peak.cc).
// The tile configuration is loaded at the start of each call and released at its end, so
// calls can interleave with any other tile user on the same thread.
//
// Output stores: a call whose output block (fp32 C, or bf16 Cb) is large (>= kStreamBytes, e.g.
// BERT-base's QKV and FFN1 at >= 1024 rows a thread) writes its full 16-column vectors with
// non-temporal stores and ends with an sfence.  Such a block does not stay in cache for its
// reader anyway, and ordinary stores first read every line they write (RFO).  Measured on
// BERT-base, 2 threads, whole model, non-temporal vs ordinary alternating in one process (shared
// VM, +-3%): int8 32x128 -9..-10%, 16x128 -7%, 8x128 -2..-7%; bf16 32x128 -3..-5%, 8x128 +-1%.
// From 2 MiB instead, bf16 1x512 went +7% (its 2.25 MiB QKV output is read at once by attention).
// The threshold was 4 MiB until a machine with a large last-level cache (480 MiB L3 shared,
// 2 MiB L2 a core) kept blocks of 4.7-6.3 MiB (8x128: 512 rows a thread) in cache for their
// readers: 8 MiB against 4 MiB, alternating builds, int8 BERT-base 8x128 -9..-10%, MiniLM 16x128
// -13..-15%, bf16 -3% / -9%; 16 MiB gained nothing more (BERT-base 16x128 +-2%).  bf16 Cb too
// (FFN1 -> FFN2 at 32x128: 12 MiB a thread).
//
// Epilogue cost (measured, 1 thread, bias epilogue, benchmarks/gemm_lowp_amx.cc and a copy of
// this file with switches): at K = 768 the epilogue, not the tile loop, is the largest cost
// beside the products: int8 M=512 N=2304 2.2 TOP/s with it, 3.6-3.9 without (2.7 without only
// its stores); bf16 1.3 vs 1.7 TFLOP/s.  Spreading one n pair's epilogue over the next pair's
// k steps (software pipelining) gained little (int8 +0..5%, bf16 +-5%): the vector work hardly
// overlaps the tile products, so its instruction count is what matters.  Hence the activation
// as a template constant (no per-vector dispatch), and rows outer so a row's scale / zero point
// are broadcast once: int8 +5..+15% (e.g. M=512 3072 x 768 2.1-2.2 -> 2.5 TOP/s, M=2048
// 2304 x 768 1.5-1.7 -> 1.9), bf16 within noise (shared 2-core VM).  After it, int8 M=512
// 2304 x 768 is ~2.5 TOP/s with the epilogue, ~3.6 without: what remains of the gap.
// Tried without gain (same benchmark, old and new alternating): each tile loaded right after
// the last product that reads the previous k step's (software-pipelined loads; +0..4%);
// n blocks of 256 KiB / 768 KiB / 1 MiB of B and k blocks of 768 / 1024 bytes (+-3%); the
// deep-K order (C in tiles over all K) at K = 768 (bf16 -15..-25%, int8 +-5%) and int8 K=3072
// (+-3%); n block -> strip -> n pair -> all K with C in tiles (same or worse).

// GCC 12 false positives on _mm512_undefined_ps() inside AVX-512 intrinsics (PR105593).
#if !defined(__clang__)  // clang has neither the warning nor the false positive
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/blocking.h"
#include "kernels/x86/amx_tiles.h"
#include "kernels/x86/attention_isa.h"
#include "kernels/x86/gemm_lowp_isa.h"
#include "kernels/x86/simd_math_avx512.h"

namespace pybert {
namespace kernels {
namespace lowp_amx {
namespace {

constexpr int64_t kPanelBytes = 512 * 1024;  // packed weight per n block (L2 share)
constexpr int64_t kKcBytes = 512;            // k block: A strip slice 32 x 512 B = 16 KiB (L1)
constexpr int64_t kMaxNb = 256;              // n block cap: C strip scratch 32 x 256 x 4 = 32 KiB
constexpr int64_t kStreamBytes = 8 << 20;    // output blocks from this size: non-temporal
constexpr int64_t kDeepMinNb = 128;          // n blocks narrower than this: the deep-K order
constexpr int64_t kDeepABytes = 1 << 20;     // deep-K order: A rows per m block (L2 share)


// What dequantizes an int8 accumulator (gemm_lowp.h):
//   a_scale[m] * w_scale[n] * (acc[m, n] - a_zero[m] * w_sum[n]).
struct Int8Scales {
  const float* a_scale = nullptr;   // (M)
  const int32_t* a_zero = nullptr;  // (M)
  const float* w_scale = nullptr;   // (Np)
  const int32_t* w_sum = nullptr;   // (Np)
};

// C[m + i, n + j] = epilogue(dequant(acc[i * acc_ld + j])), i < rows, j < cols (<= 32).
// acc: the tile scratch (fp32 for bf16; int32 for int8, dequantized with `q`).
// Cb (bf16 only): write bf16(result) to Cb[(m + i) * ldc + n + j] instead of C.
// stream: full vectors of C / Cb with non-temporal stores (rows 64 / 32-byte aligned).
// kActivation: ep.activation as a constant, so the per-vector code has no dispatch.
// Rows outer, the two 16-column halves inner: a row's scale and zero point are broadcast once.
template <bool kInt8, int kActivation>
void epilogue_rows(const void* acc, int64_t acc_ld, int rows, int64_t cols, int64_t m, int64_t n,
                   const Int8Scales& q, float* C, uint16_t* Cb, int64_t ldc, const Epilogue& ep,
                   bool stream) {
  // int8: a_scale[m] w_scale[n] (acc - a_zero[m] w_sum[n]) + bias[n]
  //     = acc * (a_scale[m] w_scale[n]) + (bias[n] - a_scale[m] a_zero[m] * zw[n]),
  // zw[n] = w_scale[n] w_sum[n]: per row, one multiply and one FMA per 16 columns make the two
  // factors, then one conversion and one FMA per vector instead of vpmulld (2 uops), a subtract,
  // a conversion and two multiplies.  The zero-point term is then rounded in fp32 instead of
  // exact: |error| <= ~2^-23 (|acc| + |a_zero w_sum|) <= ~6 units of acc at K = 3072, against
  // the activations' rounding noise of ~0.3 sqrt(K) * 127 ~ 2000 units.
  __mmask16 mask[2];
  __m512 bias[2], ws[2], zw[2];
  for (int v = 0; v < 2; ++v) {
    mask[v] = avx512::tail_mask(cols - 16 * v);
    const int64_t nv = n + 16 * v;
    bias[v] = ep.bias ? _mm512_maskz_loadu_ps(mask[v], ep.bias + nv) : _mm512_setzero_ps();
    ws[v] = kInt8 ? _mm512_maskz_loadu_ps(mask[v], q.w_scale + nv) : _mm512_setzero_ps();
    zw[v] = kInt8 ? _mm512_mul_ps(ws[v], _mm512_cvtepi32_ps(
                                             _mm512_maskz_loadu_epi32(mask[v], q.w_sum + nv)))
                  : _mm512_setzero_ps();
  }
  const int halves = cols > 16 ? 2 : 1;
  for (int i = 0; i < rows; ++i) {
    __m512 row_scale = _mm512_setzero_ps(), row_zero = _mm512_setzero_ps();
    if (kInt8) {
      row_scale = _mm512_set1_ps(q.a_scale[m + i]);
      row_zero = _mm512_set1_ps(q.a_scale[m + i] * static_cast<float>(q.a_zero[m + i]));
    }
    for (int v = 0; v < halves; ++v) {
      const int64_t nv = n + 16 * v;
      __m512 x;
      if (kInt8) {
        const __m512i a = _mm512_load_si512(static_cast<const int32_t*>(acc) + i * acc_ld + 16 * v);
        x = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(row_scale, ws[v]),
                            _mm512_fnmadd_ps(row_zero, zw[v], bias[v]));
      } else {
        x = _mm512_load_ps(static_cast<const float*>(acc) + i * acc_ld + 16 * v);
        if (ep.bias) x = _mm512_add_ps(x, bias[v]);
      }
      x = avx512::activate_ps(x, kActivation);
      if (ep.residual)
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], ep.residual + (m + i) * ep.ldr + nv));
      if (Cb && stream && mask[v] == 0xFFFF)
        _mm256_stream_si256(reinterpret_cast<__m256i*>(Cb + (m + i) * ldc + nv),
                            (__m256i)_mm512_cvtneps_pbh(x));
      else if (Cb)
        _mm256_mask_storeu_epi16(Cb + (m + i) * ldc + nv, mask[v], (__m256i)_mm512_cvtneps_pbh(x));
      else if (stream && mask[v] == 0xFFFF)
        _mm512_stream_ps(C + (m + i) * ldc + nv, x);
      else
        _mm512_mask_storeu_ps(C + (m + i) * ldc + nv, mask[v], x);
    }
  }
}

template <bool kInt8>
void epilogue_block(const void* acc, int64_t acc_ld, int rows, int64_t cols, int64_t m, int64_t n,
                    const Int8Scales& q, float* C, uint16_t* Cb, int64_t ldc, const Epilogue& ep,
                    bool stream) {
  switch (ep.activation) {
    case 1: return epilogue_rows<kInt8, 1>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    case 2: return epilogue_rows<kInt8, 2>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    case 3: return epilogue_rows<kInt8, 3>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    case 4: return epilogue_rows<kInt8, 4>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    case 5: return epilogue_rows<kInt8, 5>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    case 6: return epilogue_rows<kInt8, 6>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
    default: return epilogue_rows<kInt8, 0>(acc, acc_ld, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
  }
}

// Deep-K order, for K so deep that an n block (kPanelBytes of B) holds fewer than kDeepMinNb
// columns (bf16 K > 2048: FFN2's K = 3072): there the k-blocked order below streams all of A
// from L3 / memory once per n block of only 2-3 n pairs.  Instead:
//   for m block (mb rows: mb x Kp bytes of A <= kDeepABytes, stays in L2)
//    for n pair (32 columns: their B slice, 32 x Kp bytes, stays in L2 while the strips pass)
//     for m strip (32 rows): C(32 x 32) = A strip @ B pair slice over all K in the tile
//                            registers (no scratch between k blocks), then the epilogue.
// Measured (1 thread, bias epilogue, old and new order alternating, shared VM): bf16 N=768
// K=3072 M=512 987 -> 1229 GFLOP/s, M=2048 992 -> 1160; for K = 768 (bf16 and int8) and for
// int8 K=3072 this order was slower or even (e.g. bf16 M=512 2304 x 768 1339 -> 1027), hence
// only past kDeepMinNb.
template <bool kInt8>
void gemm_tiles_deep(const uint8_t* A, int64_t Kp_bytes, const uint8_t* packed,
                     const Int8Scales& q, float* C, uint16_t* Cb, int64_t ldc, int64_t m0,
                     int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep, bool stream) {
  const int64_t kt = Kp_bytes / 64;
  const int64_t panel = 16 * Kp_bytes;  // bytes per 16-column panel
  int64_t mb = kDeepABytes / Kp_bytes / 32 * 32;
  mb = mb < 32 ? 32 : mb;
  alignas(64) int32_t acc[32 * 32];  // the C tiles of one strip and n pair, for the epilogue
  for (int64_t mc = m0; mc < m1; mc += mb) {
    const int64_t me = mc + mb < m1 ? mc + mb : m1;
    for (int64_t n = n0; n < n1; n += 32) {
      const int64_t cols = n1 - n < 32 ? n1 - n : 32;
      const uint8_t* b = packed + (n / 16) * panel;
      for (int64_t m = mc; m < me; m += 32) {
        const int rows = int(me - m < 32 ? me - m : 32);  // only the last m block has a tail
        amx::tile_block_any<kInt8>(rows, cols, A + m * Kp_bytes, Kp_bytes, b, panel, kt, acc,
                              32 * 4, false);
        epilogue_block<kInt8>(acc, 32, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
      }
    }
  }
}

// The k-blocked order (the header's "Blocking"), for an n block of nb columns.
// For strips of > 16 rows K is split into near-equal blocks of <= kKcBytes so that the A strip
// slice (32 x kc bytes) stays in L1 while the n pairs of the n block stream their B slices from
// L2; the partial C of the strip (32 x nb fp32/int32) lives in a stack scratch between k blocks.
template <bool kInt8>
void gemm_tiles_blocked(const uint8_t* A, int64_t Kp_bytes, const uint8_t* packed,
                        const Int8Scales& q, float* C, uint16_t* Cb, int64_t ldc, int64_t m0,
                        int64_t m1, int64_t n0, int64_t n1, int64_t nb, const Epilogue& ep,
                        bool stream) {
  const int64_t kt = Kp_bytes / 64;
  const int64_t panel = 16 * Kp_bytes;  // bytes per 16-column panel
  // k steps per block: strips of <= 16 rows (A strip 16 x Kp) keep the whole K in one block.
  const int64_t nkb = (Kp_bytes + kKcBytes - 1) / kKcBytes;
  const int64_t kcb2 = (kt + nkb - 1) / nkb;
  constexpr int64_t kAccLd = kMaxNb + 16;  // floats; +64 B breaks 4 KiB set aliasing
  alignas(64) float acc[32 * kAccLd];
  const int64_t acc_ld = 4 * kAccLd;  // bytes
  for (int64_t nc = n0; nc < n1; nc += nb) {
    const int64_t ne = nc + nb < n1 ? nc + nb : n1;
    for (int64_t m = m0; m < m1; m += 32) {
      const int rows = int(m1 - m < 32 ? m1 - m : 32);
      const int64_t kcb = rows > 16 ? kcb2 : kt;
      for (int64_t k0 = 0; k0 < kt; k0 += kcb) {
        const int64_t kc = kt - k0 < kcb ? kt - k0 : kcb;
        const bool last = k0 + kc == kt;
        const uint8_t* a = A + m * Kp_bytes + 64 * k0;
        for (int64_t n = nc; n < ne; n += 32) {
          const int64_t cols = ne - n < 32 ? ne - n : 32;
          const uint8_t* b = packed + (n / 16) * panel + 1024 * k0;
          float* c = acc + (n - nc);
          amx::tile_block_any<kInt8>(rows, cols, a, Kp_bytes, b, panel, kc, c, acc_ld, k0 > 0);
          if (last)
            epilogue_block<kInt8>(c, kAccLd, rows, cols, m, n, q, C, Cb, ldc, ep, stream);
        }
      }
    }
  }
}

// Shared driver.  A: staged rows, row m at A + m * Kp_bytes, rows up to m1 + 14
// readable (a strip of > 16 rows starting at m reads m..m+31 with m + 16 < m1).
// n block: nb columns whose packed panels (nb x Kp bytes) fit kPanelBytes; narrower than
// kDeepMinNb (deep K), the deep-K order instead of the k-blocked one.
template <bool kInt8>
void gemm_tiles(const uint8_t* A, int64_t Kp_bytes, const uint8_t* packed, const Int8Scales& q,
                float* C, uint16_t* Cb, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1, const Epilogue& ep) {
  int64_t nb = kPanelBytes / Kp_bytes / 32 * 32;
  nb = nb < 32 ? 32 : nb > kMaxNb ? kMaxNb : nb;
  const bool stream = (m1 - m0) * (n1 - n0) * (C ? 4 : 2) >= kStreamBytes &&
                      reinterpret_cast<uintptr_t>(C ? static_cast<void*>(C) : Cb) % 64 == 0 &&
                      ldc % 16 == 0;
  amx::load_full_tile_config();
  if (nb < kDeepMinNb)
    gemm_tiles_deep<kInt8>(A, Kp_bytes, packed, q, C, Cb, ldc, m0, m1, n0, n1, ep, stream);
  else
    gemm_tiles_blocked<kInt8>(A, Kp_bytes, packed, q, C, Cb, ldc, m0, m1, n0, n1, nb, ep,
                              stream);
  _tile_release();
  if (stream) _mm_sfence();  // the non-temporal stores visible before the caller's join
}

// One fp32 row (K) -> bf16 (Kp, zero-padded), round-to-nearest-even.
void convert_row(const float* a, int64_t K, int64_t Kp, uint16_t* out) {
  for (int64_t k = 0; k < Kp; k += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(avx512::tail_mask(K - k), a + k);
    const __m512 hi = _mm512_maskz_loadu_ps(avx512::tail_mask(K - k - 16), a + k + 16);
    _mm512_store_si512(out + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

}  // namespace

void convert_rows_bf16(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                       uint16_t* Ab) {
  const int64_t Kp = round_up(K > 0 ? K : 1, 32);
  for (int64_t m = m0; m < m1; ++m) convert_row(A + m * lda, K, Kp, Ab + m * Kp);
  if (m1 == M)
    std::memset(Ab + M * Kp, 0, size_t(round_up(M + 15, 16) - M) * size_t(Kp) * 2);
}

void gemm_bf16(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
               int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep) {
  (void)N;
  const int64_t Kp = round_up(K > 0 ? K : 1, 32);
  gemm_tiles<false>(reinterpret_cast<const uint8_t*>(Ab), 2 * Kp,
                    static_cast<const uint8_t*>(packed), Int8Scales{}, C, nullptr, ldc, m0, m1, n0,
                    n1, ep);
}

void gemm_bf16_out(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, uint16_t* Cb,
                   int64_t ldcb, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   const Epilogue& ep) {
  (void)N;
  const int64_t Kp = round_up(K > 0 ? K : 1, 32);
  gemm_tiles<false>(reinterpret_cast<const uint8_t*>(Ab), 2 * Kp,
                    static_cast<const uint8_t*>(packed), Int8Scales{}, nullptr, Cb, ldcb, m0, m1,
                    n0, n1, ep);
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep) {
  const int64_t Np = round_up(N, 32), Kp = round_up(K > 0 ? K : 1, 64);
  const uint8_t* P = static_cast<const uint8_t*>(packed);
  Int8Scales q;
  q.a_scale = a_scale;
  q.a_zero = a_zero;
  q.w_scale = reinterpret_cast<const float*>(P + Np * Kp);
  q.w_sum = reinterpret_cast<const int32_t*>(q.w_scale + Np);
  gemm_tiles<true>(reinterpret_cast<const uint8_t*>(Aq), Kp, P, q, C, nullptr, ldc, m0, m1, n0, n1,
                   ep);
}

}  // namespace lowp_amx

// int8 on AMX reads the AVX-512 quantizer's signed format.
constexpr Int8Gemm kAmxInt8Gemm{"amx_int8", lowp_vnni::quantize_rows_s8, lowp_amx::gemm_int8};
constexpr Bf16Gemm kAmxBf16Gemm{"amx_bf16",
                                lowp_amx::convert_rows_bf16,
                                lowp_amx::gemm_bf16,
                                lowp_amx::gemm_bf16_out,
                                attention_amx::attention_scratch_bytes,
                                attention_amx::attention_head,
                                attention_amx::attention_head_split,
                                attention_amx::attention_head_bf16};

}  // namespace kernels
}  // namespace pybert
