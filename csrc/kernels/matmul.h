// fp32 matrix products on unpacked operands (the family's VectorMath), single-threaded; callers
// split the work.
// Used where packing does not pay: attention's per-head products and weights shared with
// another layer (a tied decoder).
#pragma once

#include <cstdint>

namespace pybert::kernels {

// C (m, n1 - n0) = A (m, k) @ W[n0:n1, :]^T, with W an nn.Linear weight (n, k) row-major.
// A has row stride lda, C row stride ldc; C points at output column n0.
void gemm_nt(const float* A, int64_t lda, const float* W, int64_t k, int64_t m, int64_t n0,
             int64_t n1, float* C, int64_t ldc);

// C (m, n) = A (m, k; stride lda) @ B (n, k; stride ldb)^T      (attention scores Q K^T)
void matmul_nt(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc);

// C (m, n) = A (m, k; stride lda) @ B (k, n; stride ldb)         (attention probs @ V)
void matmul_nn(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc);

}  // namespace pybert::kernels
