// A sentence-transformers embedding model in one call: the BERT-family body, pooling on its packed
// real tokens, then the modules that follow pooling (Dense, LayerNorm, Normalize), truncation to
// the first dimensions (Matryoshka) and a last optional normalization.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/pooling.h"
#include "model/bert.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace pybert::model {

// One module after pooling, applied to the (batch, width) sentence vectors in order.
struct SentenceStep {
  enum class Kind { kDense, kLayerNorm, kNormalize };
  Kind kind = Kind::kNormalize;
  // kDense: y = act(x W^T + b) [+ x, or + x R^T when the widths differ (use_residual)]
  std::optional<ops::Linear> linear;    // (out_features, in_features)
  ops::Activation activation = ops::Activation::kNone;
  bool residual = false;
  std::optional<ops::Linear> residual_projection;  // (out_features, in_features), no bias
  // kLayerNorm
  std::optional<ops::LayerNorm> norm;
  int64_t in_width = 0, out_width = 0;
};

// What one call asks for beyond the configured model.
struct SentenceOptions {
  std::vector<kernels::PoolMode> modes;  // empty: the configured pooling
  bool pooler = false;             // instead of pooling: the body's pooler (dense + tanh on [CLS])
  bool normalize_modules = true;   // run the Normalize steps (false: skip them)
  bool normalize_last = false;     // L2-normalize the (truncated) output rows at the end
  int64_t prompt_length = 0;       // leading tokens pooling leaves out (include_prompt = false)
  int64_t truncate_dim = 0;        // keep the first truncate_dim dimensions; 0: all
};

class SentenceEncoder {
 public:
  SentenceEncoder(const BertConfig& config, const WeightStore& store, const std::string& prefix,
                  std::vector<kernels::PoolMode> modes, ops::Precision precision);

  // Modules after pooling, in order; each checks that its input width is the current one.
  void add_dense(const WeightStore& store, int64_t in_features, int64_t out_features, bool bias,
                 ops::Activation activation, bool residual);
  void add_layer_norm(const WeightStore& store, int64_t dimension, float eps);
  void add_normalize();

  // Width of the rows the steps produce for a call (before truncation).
  int64_t output_width(const SentenceOptions& options) const;
  // Width of the rows forward writes: output_width, or truncate_dim when smaller.
  int64_t result_width(const SentenceOptions& options) const;

  // in -> out (batch, result_width(options)).
  void forward(const BertInputs& in, const SentenceOptions& options, float* out) const;

  const BertModel& bert() const { return bert_; }
  const std::vector<kernels::PoolMode>& modes() const { return modes_; }

 private:
  int64_t pooled_width(const SentenceOptions& options) const;

  BertModel bert_;
  std::vector<kernels::PoolMode> modes_;
  std::vector<SentenceStep> steps_;
};

}  // namespace pybert::model
