#include <immintrin.h>

#include <chrono>

#include "kernels/fma_peak.h"

namespace pybert::kernels {

double fma_loop_gflops_avx512(int64_t iterations) {
  // 16 independent accumulators in registers hide the FMA latency on two ports; the empty asm
  // keeps the compiler from folding the loop.
  __m512 c0 = _mm512_set1_ps(0.001f * 0);
  __m512 c1 = _mm512_set1_ps(0.001f * 1);
  __m512 c2 = _mm512_set1_ps(0.001f * 2);
  __m512 c3 = _mm512_set1_ps(0.001f * 3);
  __m512 c4 = _mm512_set1_ps(0.001f * 4);
  __m512 c5 = _mm512_set1_ps(0.001f * 5);
  __m512 c6 = _mm512_set1_ps(0.001f * 6);
  __m512 c7 = _mm512_set1_ps(0.001f * 7);
  __m512 c8 = _mm512_set1_ps(0.001f * 8);
  __m512 c9 = _mm512_set1_ps(0.001f * 9);
  __m512 c10 = _mm512_set1_ps(0.001f * 10);
  __m512 c11 = _mm512_set1_ps(0.001f * 11);
  __m512 c12 = _mm512_set1_ps(0.001f * 12);
  __m512 c13 = _mm512_set1_ps(0.001f * 13);
  __m512 c14 = _mm512_set1_ps(0.001f * 14);
  __m512 c15 = _mm512_set1_ps(0.001f * 15);
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iterations; ++it) {
    c0 = _mm512_fmadd_ps(c0, a, b);
    c1 = _mm512_fmadd_ps(c1, a, b);
    c2 = _mm512_fmadd_ps(c2, a, b);
    c3 = _mm512_fmadd_ps(c3, a, b);
    c4 = _mm512_fmadd_ps(c4, a, b);
    c5 = _mm512_fmadd_ps(c5, a, b);
    c6 = _mm512_fmadd_ps(c6, a, b);
    c7 = _mm512_fmadd_ps(c7, a, b);
    c8 = _mm512_fmadd_ps(c8, a, b);
    c9 = _mm512_fmadd_ps(c9, a, b);
    c10 = _mm512_fmadd_ps(c10, a, b);
    c11 = _mm512_fmadd_ps(c11, a, b);
    c12 = _mm512_fmadd_ps(c12, a, b);
    c13 = _mm512_fmadd_ps(c13, a, b);
    c14 = _mm512_fmadd_ps(c14, a, b);
    c15 = _mm512_fmadd_ps(c15, a, b);
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7));
    __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13), "+v"(c14), "+v"(c15));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 sum = c0;
  sum = _mm512_add_ps(sum, c1); sum = _mm512_add_ps(sum, c2); sum = _mm512_add_ps(sum, c3); sum = _mm512_add_ps(sum, c4); sum = _mm512_add_ps(sum, c5); sum = _mm512_add_ps(sum, c6); sum = _mm512_add_ps(sum, c7); sum = _mm512_add_ps(sum, c8); sum = _mm512_add_ps(sum, c9); sum = _mm512_add_ps(sum, c10); sum = _mm512_add_ps(sum, c11); sum = _mm512_add_ps(sum, c12); sum = _mm512_add_ps(sum, c13); sum = _mm512_add_ps(sum, c14); sum = _mm512_add_ps(sum, c15);
  volatile float sink = _mm512_reduce_add_ps(sum);
  (void)sink;
  return static_cast<double>(iterations) * 16 * 16 * 2 / s / 1e9;
}

}  // namespace pybert::kernels
