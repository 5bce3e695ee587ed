// The row kernels every layer calls outside the GEMMs, as one table per family: the Eigen family
// (kernels/eigen/, compiled for the architecture's SIMD: AVX2 + FMA on x86-64, NEON on aarch64)
// and the generic C++ family (kernels/generic/, baseline flags).  The contracts are those of the
// free functions that forward to the table (layer_norm.h, softmax.h, activation.h, matmul.h,
// pooling.h, scores.h).  x86-64 CPUs with AVX-512 run the Eigen table with
// x86/layer_norm_avx512.cc's LayerNorm in its place (dispatch.cc).
#pragma once

#include <cstdint>

#include "kernels/activation.h"
#include "kernels/pooling.h"

namespace pybert::kernels {

struct VectorMath {
  void (*layer_norm)(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                     const float* gamma, const float* beta, float eps);
  void (*softmax)(float* x, int64_t n, float scale);
  void (*activate)(float* x, int64_t n, Activation act);
  void (*bias_activate)(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                        Activation act);
  void (*matmul_nt)(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m,
                    int64_t n, int64_t k, float* C, int64_t ldc);
  void (*matmul_nn)(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m,
                    int64_t n, int64_t k, float* C, int64_t ldc);
  void (*pool_tokens)(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                      int64_t hidden, PoolMode mode, int64_t skip, float* out);
  void (*l2_normalize)(float* x, int64_t n, float eps);
  void (*sigmoid)(float* x, int64_t n);
};

}  // namespace pybert::kernels
