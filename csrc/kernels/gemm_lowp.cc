// Run-time support, weight packing and ISA dispatch for gemm_lowp.h (baseline x86-64 flags:
// the packers are scalar, run once at load).
#include "kernels/gemm_lowp.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu_features.h"
#include "kernels/gemm_lowp_isa.h"

namespace pybert {
namespace kernels {
namespace {

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// bf16 round-to-nearest-even of x, exactly as vcvtne2ps2bf16: denormals -> signed 0,
// NaN -> quiet NaN.
uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) == 0) return uint16_t((u >> 16) & 0x8000u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

}  // namespace

bool bf16_amx_available() {
  const CpuFeatures& f = cpu_features();
  return f.amx_bf16 && f.avx512_bf16;
}

Int8Isa best_int8_isa() {
  const CpuFeatures& f = cpu_features();
  return f.amx_int8 && f.avx512_vnni ? Int8Isa::Amx
         : f.avx512_vnni             ? Int8Isa::Avx512Vnni
                                     : Int8Isa::Avx2;
}

const char* int8_isa_name(Int8Isa isa) {
  return isa == Int8Isa::Amx ? "amx_int8" : isa == Int8Isa::Avx512Vnni ? "avx512_vnni" : "avx2";
}

int64_t bf16_padded_k(int64_t K) { return round_up(K > 0 ? K : 1, 32); }
int64_t int8_padded_k(int64_t K) { return round_up(K > 0 ? K : 1, 64); }
int64_t lowp_padded_m(int64_t M) { return round_up(M + 15, 16); }
int64_t lowp_padded_n(int64_t N) { return round_up(N, 32); }

// ------------------------------------------------------------------ bf16
size_t packed_weight_bf16_bytes(int64_t N, int64_t K) {
  return size_t(lowp_padded_n(N)) * size_t(bf16_padded_k(K)) * 2;
}

void pack_weight_bf16(const float* W, int64_t N, int64_t K, void* packed) {
  const int64_t Np = lowp_padded_n(N), Kp = bf16_padded_k(K);
  uint16_t* P = static_cast<uint16_t*>(packed);
  for (int64_t n = 0; n < Np; ++n)
    for (int64_t k = 0; k < Kp; ++k)
      P[((n / 16) * (Kp / 2) + k / 2) * 32 + (n % 16) * 2 + k % 2] =
          n < N && k < K ? to_bf16(W[n * K + k]) : 0;
}

size_t bf16_rows_bytes(int64_t M, int64_t K) {
  return size_t(lowp_padded_m(M)) * size_t(bf16_padded_k(K)) * 2;
}

void zero_bf16_padding(uint16_t* Ab, int64_t M, int64_t K) {
  const int64_t Kp = bf16_padded_k(K);
  if (Kp > K)
    for (int64_t m = 0; m < M; ++m) std::memset(Ab + m * Kp + K, 0, size_t(Kp - K) * 2);
  std::memset(Ab + M * Kp, 0, size_t(lowp_padded_m(M) - M) * size_t(Kp) * 2);
}

void convert_rows_bf16(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                       uint16_t* Ab) {
  lowp_amx::convert_rows_bf16(A, lda, M, K, m0, m1, Ab);
}

void gemm_bf16_amx(const uint16_t* Ab, const void* packed, int64_t N, int64_t K, float* C,
                   int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   const Epilogue& ep) {
  if (m0 >= m1 || n0 >= n1) return;
  lowp_amx::gemm_bf16(Ab, packed, N, K, C, ldc, m0, m1, n0, n1, ep);
}

void gemm_bf16_amx_to_bf16(const uint16_t* Ab, const void* packed, int64_t N, int64_t K,
                           uint16_t* Cb, int64_t ldcb, int64_t m0, int64_t m1, int64_t n0,
                           int64_t n1, const Epilogue& ep) {
  if (m0 >= m1 || n0 >= n1) return;
  lowp_amx::gemm_bf16_out(Ab, packed, N, K, Cb, ldcb, m0, m1, n0, n1, ep);
}

// ------------------------------------------------------------------ int8
size_t packed_weight_int8_bytes(int64_t N, int64_t K) {
  return size_t(lowp_padded_n(N)) * (size_t(int8_padded_k(K)) + 8);
}

void pack_weight_int8(const float* W, int64_t N, int64_t K, void* packed) {
  const int64_t Np = lowp_padded_n(N), Kp = int8_padded_k(K);
  int8_t* P = static_cast<int8_t*>(packed);
  float* scale = reinterpret_cast<float*>(P + Np * Kp);
  int32_t* sums = reinterpret_cast<int32_t*>(scale + Np);
  for (int64_t n = 0; n < Np; ++n) {
    float amax = 0.f;
    if (n < N)
      for (int64_t k = 0; k < K; ++k) amax = std::fmax(amax, std::fabs(W[n * K + k]));
    const float inv = amax > 0.f ? 127.0f / amax : 0.f;
    scale[n] = amax / 127.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < Kp; ++k) {
      float q = n < N && k < K ? std::nearbyint(W[n * K + k] * inv) : 0.f;
      q = std::fmin(127.f, std::fmax(-127.f, q));
      P[((n / 16) * (Kp / 4) + k / 4) * 64 + (n % 16) * 4 + k % 4] = int8_t(q);
      sum += int32_t(q);
    }
    sums[n] = sum;
  }
}

size_t quantized_rows_bytes(int64_t M, int64_t K) {
  return size_t(lowp_padded_m(M)) * size_t(int8_padded_k(K));
}

void quantize_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t m1,
                   int8_t* Aq, float* a_scale, int32_t* a_zero, Int8Isa isa) {
  if (isa == Int8Isa::Avx2)
    lowp_avx2::quantize_rows(A, lda, M, K, m0, m1, Aq, a_scale, a_zero);
  else
    lowp_vnni::quantize_rows(A, lda, M, K, m0, m1, Aq, a_scale, a_zero,
                             isa == Int8Isa::Avx512Vnni);
}

void gemm_int8(const int8_t* Aq, const float* a_scale, const int32_t* a_zero, const void* packed,
               int64_t N, int64_t K, float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, const Epilogue& ep, Int8Isa isa) {
  if (m0 >= m1 || n0 >= n1) return;
  switch (isa) {
    case Int8Isa::Amx:
      lowp_amx::gemm_int8(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep);
      break;
    case Int8Isa::Avx512Vnni:
      lowp_vnni::gemm_int8(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep);
      break;
    default:
      lowp_avx2::gemm_int8(Aq, a_scale, a_zero, packed, N, K, C, ldc, m0, m1, n0, n1, ep);
  }
}

GemmBlocks choose_lowp_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  // With enough rows, each thread takes whole rows: the rows it rounded / quantized itself
  // (convert_rows_bf16 and quantize_rows split rows the same way), still in its own cache, and
  // the same rows of C, which its next steps (LayerNorm, the next staging) read. Streaming the
  // whole weight per thread costs less at this size: MiniLM bf16 8x128 -11%, 32x128 -11%,
  // 1x512 -12%, int8 8x128 -7%, BERT-base bf16 8x128 -5% (2 threads, alternating runs); and
  // from 128 rows a thread rather than 256: MiniLM bf16 1x256 -5%, 1x500 -6%, int8 1x256 -9%,
  // 1x500 -2..-4%, BERT-base bf16 even.
  constexpr int64_t kMinRowsPerThread = 128;
  return split_rows_first(M, N, 32, 32, n_threads, kMinRowsPerThread);  // AMX: 2 x 2 16x16 tiles
}

}  // namespace kernels
}  // namespace pybert
