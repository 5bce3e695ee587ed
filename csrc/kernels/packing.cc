// The weight packers of every family (scalar, baseline flags: they run once at load) and the
// padded sizes of the packed layouts (gemm.h, gemm_lowp.h).
#include <cmath>
#include <cstring>

#include "kernels/blocking.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {

size_t panel_packed_floats(int64_t N, int64_t K, int64_t nr) {
  return size_t(round_up(N, nr)) * size_t(K);
}

// W (N, K) -> panels (ceil(N / nr), K, nr), zero-padded.
void pack_panels(const float* W, int64_t N, int64_t K, int64_t nr, float* packed) {
  for (int64_t p = 0; p * nr < N; ++p) {
    float* P = packed + p * K * nr;
    for (int64_t j = 0; j < nr; ++j) {
      const int64_t n = p * nr + j;
      for (int64_t k = 0; k < K; ++k) P[k * nr + j] = n < N ? W[n * K + k] : 0.0f;
    }
  }
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

}  // namespace kernels
}  // namespace pybert
