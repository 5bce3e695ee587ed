#include "kernels/matmul.h"

#include <Eigen/Core>

namespace pybert::kernels {
namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstView = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using View = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
}  // namespace

void gemm_nt(const float* A, int64_t lda, const float* W, int64_t k, int64_t m, int64_t n0,
             int64_t n1, float* C, int64_t ldc) {
  matmul_nt(A, lda, W + n0 * k, k, m, n1 - n0, k, C, ldc);
}

void matmul_nt(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  const ConstView a(A, m, k, Eigen::OuterStride<>(lda));
  const ConstView b(B, n, k, Eigen::OuterStride<>(ldb));
  View c(C, m, n, Eigen::OuterStride<>(ldc));
  c.noalias() = a * b.transpose();
}

void matmul_nn(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  const ConstView a(A, m, k, Eigen::OuterStride<>(lda));
  const ConstView b(B, k, n, Eigen::OuterStride<>(ldb));
  View c(C, m, n, Eigen::OuterStride<>(ldc));
  c.noalias() = a * b;
}

}  // namespace pybert::kernels
