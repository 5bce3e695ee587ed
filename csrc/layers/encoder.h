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
  // output, so after_layer must not be given too.  head_rows->seqs must not decrease.
  // Each layer runs over the batch in chunks of whole sequences of at most
  // chunk_tokens(thread_budget()) tokens (a longer sequence alone), chunk after chunk, before
  // the next layer: the same values, every op but attention working row by row and attention
  // within a sequence.
  void forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
               const std::function<void(int64_t, const float*)>& after_layer = {},
               const RowSelection* head_rows = nullptr) const;

  // The most tokens a layer runs at once on `threads` threads.  A large batch's activations do
  // not stay in the caches from one op to the next; in chunks they stay in each core's caches
  // through a layer's ops, while the layer's weights stay in the shared last-level cache from
  // one chunk to the next.  2 threads, chunks against the whole batch at once, alternating in
  // one process: BERT-base int8 32x128 -22%, 16x128 -15%, var32 -19%; bf16 -8%, -4%, -10%;
  // MiniLM int8 -22%, -5%, -15%; bf16 -13%, -6%, -7%; fp32 MiniLM -2..-4%, BERT-base 0 / -5%
  // (32x128 / var32).  256 rows a thread: BERT-base int8 32x128 4% faster still, but 8x128
  // (then two chunks) 2% slower and bf16 8x128 5% slower.  (Each chunk through all the layers
  // in turn instead measured the same at 512 rows, and reads all the weights again per chunk.)
  static int64_t chunk_tokens(int threads);

 private:
  static constexpr int64_t kChunkRowsPerThread = 512;
};

}  // namespace pybert::layers
