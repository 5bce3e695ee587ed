#include <immintrin.h>

#include <chrono>

#include "kernels/fma_peak.h"

namespace pybert::kernels {

double fma_loop_gflops_avx2(int64_t iterations) {
  // 12 independent accumulators in registers hide the FMA latency on two ports; the empty asm
  // keeps the compiler from folding the loop.
  __m256 c0 = _mm256_set1_ps(0.001f * 0);
  __m256 c1 = _mm256_set1_ps(0.001f * 1);
  __m256 c2 = _mm256_set1_ps(0.001f * 2);
  __m256 c3 = _mm256_set1_ps(0.001f * 3);
  __m256 c4 = _mm256_set1_ps(0.001f * 4);
  __m256 c5 = _mm256_set1_ps(0.001f * 5);
  __m256 c6 = _mm256_set1_ps(0.001f * 6);
  __m256 c7 = _mm256_set1_ps(0.001f * 7);
  __m256 c8 = _mm256_set1_ps(0.001f * 8);
  __m256 c9 = _mm256_set1_ps(0.001f * 9);
  __m256 c10 = _mm256_set1_ps(0.001f * 10);
  __m256 c11 = _mm256_set1_ps(0.001f * 11);
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iterations; ++it) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b);
    c11 = _mm256_fmadd_ps(c11, a, b);
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5), "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m256 sum = c0;
  sum = _mm256_add_ps(sum, c1); sum = _mm256_add_ps(sum, c2); sum = _mm256_add_ps(sum, c3); sum = _mm256_add_ps(sum, c4); sum = _mm256_add_ps(sum, c5); sum = _mm256_add_ps(sum, c6); sum = _mm256_add_ps(sum, c7); sum = _mm256_add_ps(sum, c8); sum = _mm256_add_ps(sum, c9); sum = _mm256_add_ps(sum, c10); sum = _mm256_add_ps(sum, c11);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(iterations) * 12 * 8 * 2 / s / 1e9;
}

}  // namespace pybert::kernels
