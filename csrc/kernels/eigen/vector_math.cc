// The row kernels and small products on Eigen (see vector_math.h).  Build: the architecture's
// SIMD flags (x86-64: -mavx2 -mfma; aarch64: the armv8-a baseline, NEON).
//
// ODR: Eigen's templates are instantiated here only, in files built with one flag set: no other
// family includes Eigen, so the linker never picks an AVX2 instance for a generic caller.
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <algorithm>
#include <cmath>

#include "kernels/families.h"

namespace pybert::kernels {
namespace eigen {
namespace {

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstView = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using View = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps) {
  const ConstRow g(gamma, cols), b(beta, cols);
  for (int64_t r = 0; r < rows; ++r) {
    Row out(y + r * cols, cols);
    if (residual)
      out = ConstRow(x + r * cols, cols) + ConstRow(residual + r * cols, cols);
    else if (y != x)
      out = ConstRow(x + r * cols, cols);
    // Two passes (mean, then centred variance) keep fp32 close to torch's result.
    const float mean = out.sum() / static_cast<float>(cols);
    out -= mean;
    const float var = out.square().sum() / static_cast<float>(cols);
    const float inv_std = 1.0f / std::sqrt(var + eps);
    out = out * inv_std * g + b;
  }
}

void softmax(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  Row a(x, n);
  const float max = a.maxCoeff();
  a = ((a - max) * scale).exp();
  a *= 1.0f / a.sum();
}

void activate_row(float* x, int64_t n, Activation act) {
  Row a(x, n);
  switch (act) {
    case Activation::kNone:
      break;
    case Activation::kGeluErf:
      a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
      break;
    case Activation::kGeluTanh: {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      a = 0.5f * a * (1.0f + (k * (a + 0.044715f * a.cube())).tanh());
      break;
    }
    case Activation::kRelu:
      a = a.max(0.0f);
      break;
    case Activation::kTanh:
      a = a.tanh();
      break;
  }
}

void bias_activate(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                   Activation act) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ldy;
    if (bias) Row(row, cols) += ConstRow(bias, cols);
    activate_row(row, cols, act);
  }
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

void pool(const float* x, const int64_t* mask, int64_t seq, int64_t hidden, PoolMode mode,
          float* out) {
  Row acc(out, hidden);  // (hidden)
  int64_t count = 0;
  for (int64_t s = 0; s < seq; ++s) {
    if (!mask[s]) continue;
    const ConstRow row(x + s * hidden, hidden);
    if (mode == PoolMode::kCls) {
      acc = row;
      return;
    }
    if (count == 0)
      acc = row;
    else if (mode == PoolMode::kMax)
      acc = acc.max(row);
    else
      acc += row;
    ++count;
  }
  if (count == 0) {
    acc.setZero();
  } else if (mode == PoolMode::kMean) {
    acc /= static_cast<float>(count);
  } else if (mode == PoolMode::kMeanSqrtLen) {
    acc /= std::sqrt(static_cast<float>(count));
  }
}

void l2_normalize(float* x, int64_t n, float eps) {
  Row a(x, n);
  const float norm = std::sqrt(a.square().sum());
  a /= std::max(norm, eps);
}

void sigmoid(float* x, int64_t n) {
  Row a(x, n);
  a = 1.0f / (1.0f + (-a).exp());  // exp overflows to inf for x << 0, giving exactly 0
}

// Attention without a family kernel: Eigen products around a (len, len) score matrix.
int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  (void)d_head;
  return len * len;
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  matmul_nt(q, ld_qkv, k, ld_qkv, len, len, d_head, scratch, len);  // scores = q k^T
  for (int64_t i = 0; i < len; ++i) softmax(scratch + i * len, len, scale);
  matmul_nn(scratch, len, v, ld_qkv, len, d_head, len, out, ld_out);  // out = probs v
}

}  // namespace
}  // namespace eigen

constexpr VectorMath kEigenVectorMath{
    eigen::layer_norm, eigen::softmax, eigen::activate_row,     eigen::bias_activate, eigen::matmul_nt,
    eigen::matmul_nn,  eigen::pool,    eigen::l2_normalize, eigen::sigmoid};
constexpr AttentionKernels kEigenAttention{eigen::attention_scratch_floats, eigen::attention_head};

}  // namespace pybert::kernels
