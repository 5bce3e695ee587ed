#include "layers/encoder.h"

namespace pybert::layers {

void EncoderLayer::forward(float* x, const ops::SequenceLayout& layout, Workspace& ws) const {
  const int64_t n = layout.tokens();
  const int64_t hidden = attention.output.out_features();
  const int64_t inner = feed_forward.intermediate.out_features();
  float* qkv = ws.qkv.reserve(n * 3 * hidden);
  float* ctx = ws.context.reserve(n * hidden);
  float* h1 = ws.attn_out.reserve(n * hidden);
  float* mid = ws.intermediate.reserve(n * inner);

  // attention: x (n, hidden) -> qkv (n, 3 hidden) -> ctx (n, hidden) -> h1 (n, hidden)
  attention.qkv(x, n, qkv);
  ops::self_attention(qkv, layout, hidden, attention.num_heads, ctx);
  attention.output(ctx, n, h1);
  attention_norm(h1, x, h1, n);  // h1 = LayerNorm(h1 + x)

  // feed-forward: h1 (n, hidden) -> mid (n, inner) -> x (n, hidden)
  feed_forward.intermediate(h1, n, mid, feed_forward.activation);
  feed_forward.output(mid, n, x);
  output_norm(x, h1, x, n);  // x = LayerNorm(x + h1)
}

void Encoder::forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
                      const std::function<void(int64_t, const float*)>& after_layer) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i].forward(x, layout, ws);
    if (after_layer) after_layer(static_cast<int64_t>(i), x);
  }
}

}  // namespace pybert::layers
