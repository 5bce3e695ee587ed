// Heads on top of the encoder: a Linear to labels (classification), and BERT's masked-LM head
// whose decoder is the word-embedding matrix itself.
#pragma once

#include <cstdint>

#include "ops/head.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace pybert::layers {

struct LinearHead {
  ops::Linear linear;  // (out_features, in_features): num_labels or vocab_size outputs

  // x (n, in_features) -> y (n, out_features): logits, or probabilities per row
  void forward(const float* x, int64_t n, float* y, ops::Scores scores) const {
    ops::linear_scores(linear, x, n, y, scores);
  }
};

struct MaskedLMHead {
  ops::Linear transform;  // (hidden, hidden), then `activation`, then `transform_norm`
  ops::Activation activation = ops::Activation::kGeluErf;
  ops::LayerNorm transform_norm;
  LinearHead decoder;  // weight (vocab, hidden): the word embeddings, shared; bias (vocab)

  // x (n, hidden) -> scratch (n, hidden) transformed -> y (n, vocab)
  void forward(const float* x, int64_t n, float* scratch, float* y, ops::Scores scores) const {
    transform(x, n, scratch, activation);
    transform_norm(scratch, nullptr, scratch, n);
    decoder.forward(scratch, n, y, scores);
  }

  // x (n, hidden) -> scratch (n, hidden) transformed -> pooled (segments, vocab): act of the
  // logits folded over the rows of each segment (segment (n) in [0, segments)) in the decoder
  // GEMM's epilogue, no (n, vocab) logits stored. The decoder must be an fp32 packed Linear.
  void pooled(const float* x, int64_t n, float* scratch, const int32_t* segment,
              int64_t segments, float* pooled, ops::Activation act, ops::RowPool pool) const {
    transform(x, n, scratch, activation);
    transform_norm(scratch, nullptr, scratch, n);
    decoder.linear.pooled(scratch, n, segment, segments, pooled, act, pool);
  }
};

}  // namespace pybert::layers
