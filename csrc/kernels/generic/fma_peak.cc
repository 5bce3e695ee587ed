#include <math.h>

#include <chrono>

#include "kernels/fma_peak.h"

namespace pybert::kernels {

double fma_loop_gflops_generic(int64_t iterations) {
  // 12 independent rows of 4 lanes hide the FMA latency; the empty asm keeps the compiler from
  // folding the loop.
  constexpr int kRows = 12, kLanes = 4;
  float c[kRows][kLanes];
  for (int i = 0; i < kRows; ++i)
    for (int j = 0; j < kLanes; ++j) c[i][j] = 0.001f * float(i);
  const float a = 0.9999f, b = 1e-7f;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kRows; ++i)
      for (int j = 0; j < kLanes; ++j) c[i][j] = fmaf(c[i][j], a, b);
    __asm__ volatile("" : : "r"(&c[0][0]) : "memory");
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = c[0][0];
  (void)sink;
  return static_cast<double>(iterations) * kRows * kLanes * 2 / s / 1e9;
}

}  // namespace pybert::kernels
