#include "ops/head.h"

#include <stdexcept>

#include "kernels/activation.h"
#include "kernels/scores.h"
#include "kernels/softmax.h"
#include "parallel.h"

namespace pybert::ops {
namespace {

// Rows per thread below which splitting a row loop costs more than it saves.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(cols, 1)); }

}  // namespace

Scores scores_from_name(const std::string& name) {
  if (name == "logits") return Scores::kLogits;
  if (name == "softmax") return Scores::kSoftmax;
  if (name == "sigmoid") return Scores::kSigmoid;
  if (name == "tanh") return Scores::kTanh;
  throw std::invalid_argument("unknown scores '" + name +
                              "'; expected one of: logits, softmax, sigmoid, tanh");
}

void linear_scores(const Linear& linear, const float* x, int64_t n, float* y, Scores scores) {
  // The product splits over output columns (each thread reads its slice of W once, which is
  // what matters for a vocabulary-sized W); the normalization then splits over rows.
  linear(x, n, y);
  if (scores == Scores::kLogits) return;
  const int64_t cols = linear.out_features();
  parallel_for(0, n, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (scores == Scores::kSoftmax)
        kernels::softmax(y + r * cols, cols, 1.0f);
      else if (scores == Scores::kTanh)
        kernels::activate(y + r * cols, cols, kernels::Activation::kTanh);
      else
        kernels::sigmoid(y + r * cols, cols);
    }
  });
}

void argmax_rows(const float* y, int64_t n, int64_t cols, int64_t* index) {
  if (cols <= 0) throw std::invalid_argument("argmax over rows of 0 columns");
  parallel_for(0, n, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) index[r] = kernels::argmax(y + r * cols, cols);
  });
}

void top_k_rows(const float* y, int64_t n, int64_t cols, int64_t k, int64_t* index, float* value) {
  if (k < 1 || k > cols)
    throw std::invalid_argument("top_k must be between 1 and the number of columns (" +
                                std::to_string(cols) + "), got " + std::to_string(k));
  parallel_for(0, n, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      kernels::top_k(y + r * cols, cols, k, index + r * k, value + r * k);
  });
}

}  // namespace pybert::ops
