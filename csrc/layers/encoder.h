// The BERT encoder: transformer layers (post-LN as in BERT, or pre-LN) stacked
// num_hidden_layers times.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "layers/workspace.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace pybert::layers {

struct SelfAttention {
  ops::Linear qkv;     // (3 * hidden, hidden): query, key, value fused at load
  ops::Linear output;  // (hidden, hidden)
  int64_t num_heads = 0;
  // Q K^T and P V: kBf16 (AMX; fp32 without it) or kFp32, whatever the Linears' precision.
  ops::Precision attention_precision = ops::Precision::kFp32;

  // y (n, hidden) = output(attention(qkv(x))) [+ residual] over the packed sequences of layout;
  // qkv_buf (n, 3 hidden) and ctx (context_floats(n)) are scratch. y may alias x, not residual.
  // then: the Linear that runs next, if known (see ops::Linear).
  void forward(const float* x, const ops::SequenceLayout& layout, float* qkv_buf, float* ctx,
               float* y, const float* residual = nullptr,
               const ops::Linear* then = nullptr) const;
  int64_t context_floats(int64_t n) const;
};

struct FeedForward {
  ops::Linear intermediate;  // (intermediate_size, hidden)
  ops::Linear output;        // (hidden, intermediate_size)
  ops::Activation activation = ops::Activation::kGeluErf;

  // y (n, hidden) = output(act(intermediate(x))) [+ residual]; mid: scratch of
  // mid_floats(n) floats. y may alias x, not residual.
  void forward(const float* x, int64_t n, float* mid, float* y, const float* residual = nullptr,
               const ops::Linear* then = nullptr) const;
  int64_t mid_floats(int64_t n) const;
};

struct EncoderLayer {
  SelfAttention attention;
  ops::LayerNorm attention_norm;  // after attention + residual (pre-LN: before attention)
  FeedForward feed_forward;
  ops::LayerNorm output_norm;     // after feed-forward + residual (pre-LN: before feed-forward)
  bool pre_layer_norm = false;    // x += Attn(LN(x)); x += FFN(LN(x))

  // x (tokens, hidden) -> x, in place.  then: the Linear that runs next (the next layer's qkv).
  void forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
               const ops::Linear* then = nullptr) const;
};

struct Encoder {
  // One entry per depth; entries may share one layer's weights (ALBERT).
  std::vector<std::shared_ptr<const EncoderLayer>> layers;
  std::optional<ops::LayerNorm> final_norm;  // after the last layer (pre-LN stacks)

  // x (tokens, hidden) -> x, in place. after_layer(i, x) is called after layer i when given
  // (after the final norm for the last layer).
  void forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
               const std::function<void(int64_t, const float*)>& after_layer = {}) const;
};

}  // namespace pybert::layers
