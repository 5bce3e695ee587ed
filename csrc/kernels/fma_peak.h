// The machine's fp32 FMA peak, measured with a register-only loop (for benchmarks).
#pragma once

#include <cstdint>

namespace pybert::kernels {

// GFLOP/s of `iterations` rounds of independent FMAs on one thread: x86/fma_peak_avx2.cc,
// x86/fma_peak_avx512.cc, and generic/fma_peak.cc (fmaf on 16-float arrays, which the compiler
// turns into vector FMAs where the baseline has them, e.g. NEON's FMLA).
double fma_loop_gflops_avx2(int64_t iterations);
double fma_loop_gflops_avx512(int64_t iterations);
double fma_loop_gflops_generic(int64_t iterations);

// GFLOP/s summed over `threads` threads running the loop at once.
double measure_fma_peak(int threads);

}  // namespace pybert::kernels
