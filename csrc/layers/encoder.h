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
  // Q K^T and P V, whatever the Linears' precision (ops/attention.h).
  ops::AttentionMath attention_math = ops::AttentionMath::kFp32;

  // y (n, hidden) = output(attention(qkv(x))) [+ residual] over the packed sequences of layout;
  // qkv_buf (qkv_floats(n)) and ctx (context_floats(n)) are scratch. y may alias x, not residual.
  // then: the Linear that runs next, if known (see ops::Linear).
  void forward(const float* x, const ops::SequenceLayout& layout, float* qkv_buf, float* ctx,
               float* y, const float* residual = nullptr,
               const ops::Linear* then = nullptr) const;
  int64_t qkv_floats(int64_t n) const;
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

// Rows of the packed batch that a head reads: row rows[i] belongs to sequence seqs[i], i < count.
struct RowSelection {
  const int64_t* rows = nullptr;
  const int64_t* seqs = nullptr;
  int64_t count = 0;
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

  // The same for the selected rows of x only: every row still gives its key and value, but only
  // the selected rows are queries, and only they go through the output projection, the norms and
  // the feed-forward. x's selected rows <- the rows forward would write; the others are left.
  void forward_rows(float* x, const ops::SequenceLayout& layout, const RowSelection& selected,
                    Workspace& ws) const;
};

struct Encoder {
  // One entry per depth; entries may share one layer's weights (ALBERT).
  std::vector<std::shared_ptr<const EncoderLayer>> layers;
  std::optional<ops::LayerNorm> final_norm;  // after the last layer (pre-LN stacks)

  // x (tokens, hidden) -> x, in place. after_layer(i, x) is called after layer i when given
  // (after the final norm for the last layer).  With `head_rows`, the last layer computes the
  // selected rows only (EncoderLayer::forward_rows): x's other rows then hold the layer below's
  // output, so after_layer must not be given too.
  void forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
               const std::function<void(int64_t, const float*)>& after_layer = {},
               const RowSelection* head_rows = nullptr) const;
};

}  // namespace pybert::layers
