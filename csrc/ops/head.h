// Heads: a Linear to labels (or vocabulary) and, in the same op, each row of logits turned
// into probabilities; then per-row selection (argmax, top-k) of the result.
#pragma once

#include <cstdint>
#include <string>

#include "ops/linear.h"

namespace pybert::ops {

// What a head writes per row.
enum class Scores {
  kLogits,   // x W^T + b
  kSoftmax,  // softmax over the row (numerically stable: the row max is subtracted first)
  kSigmoid,  // an independent sigmoid per label (multi-label classification)
  kTanh,     // tanh per label (a cross-encoder's saved activation)
};

// "logits" | "softmax" | "sigmoid" | "tanh" -> Scores; throws std::invalid_argument naming the choices.
Scores scores_from_name(const std::string& name);

// x (n, in_features) @ W^T (in_features, out_features) + b -> y (n, out_features) logits, then
// each row normalized as `scores` asks, all in one op.
void linear_scores(const Linear& linear, const float* x, int64_t n, float* y, Scores scores);

// y (n, cols) -> index (n): each row's largest column (the first on ties).
void argmax_rows(const float* y, int64_t n, int64_t cols, int64_t* index);

// y (n, cols) -> index (n, k), value (n, k): each row's k largest, descending; 1 <= k <= cols.
void top_k_rows(const float* y, int64_t n, int64_t cols, int64_t k, int64_t* index, float* value);

}  // namespace pybert::ops
