// The row kernels and small products on Eigen (see vector_math.h).  Build: the architecture's
// SIMD flags (x86-64: -mavx2 -mfma; aarch64: the armv8-a baseline, NEON).
//
// ODR: Eigen's templates are instantiated here only, in files built with one flag set: no other
// family includes Eigen, so the linker never picks an AVX2 instance for a generic caller.
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <algorithm>
#include <cmath>

#include "kernels/eigen/fixed_order.h"
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
    // Two passes (mean, then centred variance) keep fp32 close to torch's result; both sums in
    // a fixed order, so the result does not depend on where y lies.
    const float mean = sum_fixed_order(out.data(), cols) / static_cast<float>(cols);
    out -= mean;
    const float var = sum_squares_fixed_order(out.data(), cols) / static_cast<float>(cols);
    const float inv_std = 1.0f / std::sqrt(var + eps);
    out = out * inv_std * g + b;
  }
}

void softmax(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  Row a(x, n);
  const float max = a.maxCoeff();
  map_fixed_order(x, n, [&](auto& v) { v = ((v - max) * scale).exp(); });  // x may lie anywhere
  a *= 1.0f / sum_fixed_order(x, n);
}

// a <- act(a) on one aligned block.
template <typename Block>
void activate_block(Block& a, Activation act) {
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
    case Activation::kLog1pRelu:
      a = a.max(0.0f).log1p();
      break;
    case Activation::kLog1pLog1pRelu:
      a = a.max(0.0f).log1p().log1p();
      break;
  }
}

void activate_row(float* x, int64_t n, Activation act) {
  if (act == Activation::kNone) return;
  // Through fixed-size aligned blocks: the result must not depend on where x lies.
  map_fixed_order(x, n, [act](auto& a) { activate_block(a, act); });
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

void pool_tokens(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                 int64_t hidden, PoolMode mode, int64_t skip, float* out) {
  Row acc(out, hidden);  // (hidden)
  auto vector_of = [&](int64_t t) { return ConstRow(x + (row ? row[t] : t) * hidden, hidden); };
  // Tokens [first, n) are pooled: the prompt's tokens come first.
  int64_t first = 0;
  while (first < n && position[first] - position[0] < skip) ++first;
  const int64_t count = n - first;
  if (count == 0) {
    if (mode == PoolMode::kCls && n > 0)
      acc = vector_of(0);
    else
      acc.setZero();
    return;
  }
  switch (mode) {
    case PoolMode::kCls:
      acc = vector_of(first);
      return;
    case PoolMode::kLastToken:
      acc = vector_of(n - 1);
      return;
    case PoolMode::kMax:
      acc = vector_of(first);
      for (int64_t t = first + 1; t < n; ++t) acc = acc.max(vector_of(t));
      return;
    case PoolMode::kWeightedMean: {
      acc.setZero();
      float weight_sum = 0.0f;
      for (int64_t t = first; t < n; ++t) {
        const float w = static_cast<float>(position[t] - position[0] + 1);
        acc += w * vector_of(t);
        weight_sum += w;
      }
      acc /= weight_sum;
      return;
    }
    case PoolMode::kMean:
    case PoolMode::kMeanSqrtLen:
      acc = vector_of(first);
      for (int64_t t = first + 1; t < n; ++t) acc += vector_of(t);
      acc /= mode == PoolMode::kMean ? static_cast<float>(count)
                                     : std::sqrt(static_cast<float>(count));
      return;
  }
}

void l2_normalize(float* x, int64_t n, float eps) {
  Row a(x, n);
  const float norm = std::sqrt(sum_squares_fixed_order(x, n));  // x may lie anywhere
  a /= std::max(norm, eps);
}

void sigmoid(float* x, int64_t n) {
  // exp overflows to inf for x << 0, giving exactly 0; x may lie anywhere (fixed_order.h).
  map_fixed_order(x, n, [](auto& a) { a = 1.0f / (1.0f + (-a).exp()); });
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
    eigen::layer_norm, eigen::softmax,     eigen::activate_row, eigen::bias_activate,
    eigen::matmul_nt,  eigen::matmul_nn,   eigen::pool_tokens,  eigen::l2_normalize,
    eigen::sigmoid};
constexpr AttentionKernels kEigenAttention{eigen::attention_scratch_floats, eigen::attention_head};

}  // namespace pybert::kernels
