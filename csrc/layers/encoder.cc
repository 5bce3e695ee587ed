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

  if (pre_layer_norm) {
    // attention: h1 = LN(x) (n, hidden) -> qkv (n, 3 hidden) -> ctx (n, hidden) -> h1; x += h1
    attention_norm(x, nullptr, h1, n);
    attention.qkv(h1, n, qkv);
    ops::self_attention(qkv, layout, hidden, attention.num_heads, ctx);
    attention.output(ctx, n, h1);
    ops::add_residual(x, h1, n, hidden);
    // feed-forward: h1 = LN(x) (n, hidden) -> mid (n, inner) -> h1 (n, hidden); x += h1
    output_norm(x, nullptr, h1, n);
    feed_forward.intermediate(h1, n, mid, feed_forward.activation);
    feed_forward.output(mid, n, h1);
    ops::add_residual(x, h1, n, hidden);
    return;
  }

  // attention: x (n, hidden) -> qkv (n, 3 hidden) -> ctx (n, hidden) -> h1 (n, hidden)
  attention.qkv(x, n, qkv);
  ops::self_attention(qkv, layout, hidden, attention.num_heads, ctx);
  attention.output(ctx, n, h1, ops::Activation::kNone, /*residual=*/x);  // h1 = ctx Wo^T + b + x
  attention_norm(h1, nullptr, h1, n);                                     // h1 = LayerNorm(h1)

  // feed-forward: h1 (n, hidden) -> mid (n, inner) -> x (n, hidden)
  feed_forward.intermediate(h1, n, mid, feed_forward.activation);  // bias + GELU in the GEMM
  feed_forward.output(mid, n, x, ops::Activation::kNone, /*residual=*/h1);
  output_norm(x, nullptr, x, n);  // x = LayerNorm(mid Wout^T + b + h1)
}

void Encoder::forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
                      const std::function<void(int64_t, const float*)>& after_layer) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i]->forward(x, layout, ws);
    if (final_norm && i + 1 == layers.size()) (*final_norm)(x, nullptr, x, layout.tokens());
    if (after_layer) after_layer(static_cast<int64_t>(i), x);
  }
}

}  // namespace pybert::layers
