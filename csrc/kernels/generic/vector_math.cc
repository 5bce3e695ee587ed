// The generic family's row kernels (vector_math.h) in portable C++: no Eigen here (its instances
// belong to the Eigen family's flags, see eigen/vector_math.cc).  Sums accumulate in double,
// which keeps the sequential loops as close to torch as Eigen's vectorized reductions are.
#include <math.h>

#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert::kernels {
namespace generic {
namespace {

void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* out = y + r * cols;
    const float* in = x + r * cols;
    const float* res = residual ? residual + r * cols : nullptr;
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      out[c] = res ? in[c] + res[c] : in[c];
      sum += out[c];
    }
    const float mean = float(sum / double(cols));
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      out[c] -= mean;
      sq += double(out[c]) * double(out[c]);
    }
    const float inv_std = 1.0f / sqrtf(float(sq / double(cols)) + eps);
    for (int64_t c = 0; c < cols; ++c) out[c] = out[c] * inv_std * gamma[c] + beta[c];
  }
}

void softmax(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = expf((x[i] - max) * scale);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void activate_row(float* x, int64_t n, Activation act) {
  const int code = static_cast<int>(act);
  for (int64_t i = 0; i < n; ++i) x[i] = activate_scalar(x[i], code);
}

void bias_activate(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                   Activation act) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ldy;
    if (bias)
      for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
    activate_row(row, cols, act);
  }
}

void matmul_nt(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) C[i * ldc + j] = dot_lanes(A + i * lda, B + j * ldb, k);
}

void matmul_nn(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* c = C + i * ldc;
    for (int64_t j = 0; j < n; ++j) c[j] = 0.0f;
    for (int64_t t = 0; t < k; ++t) {
      const float a = A[i * lda + t];
      const float* b = B + t * ldb;
      for (int64_t j = 0; j < n; ++j) c[j] += a * b[j];
    }
  }
}

void pool_tokens(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                 int64_t hidden, PoolMode mode, int64_t skip, float* out) {
  auto vector_of = [&](int64_t t) { return x + (row ? row[t] : t) * hidden; };
  auto copy = [&](const float* v) {
    for (int64_t h = 0; h < hidden; ++h) out[h] = v[h];
  };
  // Tokens [first, n) are pooled: the prompt's tokens come first.
  int64_t first = 0;
  while (first < n && position[first] - position[0] < skip) ++first;
  const int64_t count = n - first;
  if (count == 0) {
    if (mode == PoolMode::kCls && n > 0)
      copy(vector_of(0));
    else
      for (int64_t h = 0; h < hidden; ++h) out[h] = 0.0f;
    return;
  }
  switch (mode) {
    case PoolMode::kCls:
      copy(vector_of(first));
      return;
    case PoolMode::kLastToken:
      copy(vector_of(n - 1));
      return;
    case PoolMode::kMax:
      copy(vector_of(first));
      for (int64_t t = first + 1; t < n; ++t) {
        const float* v = vector_of(t);
        for (int64_t h = 0; h < hidden; ++h) out[h] = v[h] > out[h] ? v[h] : out[h];
      }
      return;
    case PoolMode::kWeightedMean: {
      for (int64_t h = 0; h < hidden; ++h) out[h] = 0.0f;
      float weight_sum = 0.0f;
      for (int64_t t = first; t < n; ++t) {
        const float w = float(position[t] - position[0] + 1);
        const float* v = vector_of(t);
        for (int64_t h = 0; h < hidden; ++h) out[h] += w * v[h];
        weight_sum += w;
      }
      for (int64_t h = 0; h < hidden; ++h) out[h] /= weight_sum;
      return;
    }
    case PoolMode::kMean:
    case PoolMode::kMeanSqrtLen: {
      copy(vector_of(first));
      for (int64_t t = first + 1; t < n; ++t) {
        const float* v = vector_of(t);
        for (int64_t h = 0; h < hidden; ++h) out[h] += v[h];
      }
      const float div = mode == PoolMode::kMean ? float(count) : sqrtf(float(count));
      for (int64_t h = 0; h < hidden; ++h) out[h] /= div;
      return;
    }
  }
}

void l2_normalize(float* x, int64_t n, float eps) {
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += double(x[i]) * double(x[i]);
  const float norm = sqrtf(float(sq));
  const float d = norm > eps ? norm : eps;
  for (int64_t i = 0; i < n; ++i) x[i] /= d;
}

void sigmoid(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

}  // namespace
}  // namespace generic

constexpr VectorMath kGenericVectorMath{
    generic::layer_norm, generic::softmax,   generic::activate_row, generic::bias_activate,
    generic::matmul_nt,  generic::matmul_nn, generic::pool_tokens,  generic::l2_normalize,
    generic::sigmoid};

}  // namespace pybert::kernels
