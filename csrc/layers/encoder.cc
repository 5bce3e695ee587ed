#include "layers/encoder.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "parallel.h"

namespace pybert::layers {
namespace {

// Floats of a buffer that holds either n fp32 rows of `features` or the same rows staged in bf16
// for a bf16 GEMM (padded rows and columns, see gemm_lowp.h).
int64_t fp32_or_bf16_rows_floats(int64_t n, int64_t features) {
  const auto bf16_rows = static_cast<int64_t>(kernels::bf16_rows_bytes(n, features) / 4);
  return std::max(n * features, bf16_rows);
}

}  // namespace

void FeedForward::forward(const float* x, int64_t n, float* mid, float* y,
                          const float* residual, const ops::Linear* then) const {
  if (intermediate.precision() == ops::Precision::kBf16 &&
      output.precision() == ops::Precision::kBf16) {
    // bf16 kernels: GELU's output goes straight into the second GEMM's bf16 input rows.
    auto* mid_bf16 = reinterpret_cast<uint16_t*>(mid);
    intermediate.forward_to_bf16(x, n, mid_bf16, activation);
    output.forward_from_bf16(mid_bf16, n, y, ops::Activation::kNone, residual);
    return;
  }
  if (intermediate.int8_strips(n, output)) {
    // int8 kernels: GELU's output quantized into the second GEMM's staged rows from L2.
    intermediate.forward_to_int8(x, n, mid, activation, output);
    output.forward_from_int8(mid, n, y, ops::Activation::kNone, residual);
    return;
  }
  intermediate(x, n, mid, activation, nullptr, &output);  // bias + GELU in the GEMM
  output(mid, n, y, ops::Activation::kNone, residual, then);
}

void SelfAttention::forward(const float* x, const ops::SequenceLayout& layout, float* qkv_buf,
                            float* ctx, float* y, const float* residual,
                            const ops::Linear* then) const {
  const int64_t n = layout.tokens(), hidden = output.out_features();
  if (qkv.precision() == ops::Precision::kBf16 && output.precision() == ops::Precision::kBf16 &&
      !layout.keys) {  // query-only rows are attended in fp32
    // bf16 kernels: q, k, v go to the heads in bf16 (rounded by the QKV GEMM as the heads would
    // round them), and the heads write the output projection's bf16 input rows directly.
    auto* qkv_rows = reinterpret_cast<uint16_t*>(qkv_buf);
    auto* ctx_rows = reinterpret_cast<uint16_t*>(ctx);
    qkv.forward_to_bf16(x, n, qkv_rows, ops::Activation::kNone);
    ops::self_attention_bf16(qkv_rows, layout, hidden, num_heads, nullptr, ctx_rows);
    output.forward_from_bf16(ctx_rows, n, y, ops::Activation::kNone, residual);
    return;
  }
  qkv(x, n, qkv_buf, ops::Activation::kNone, nullptr, &output);
  ops::self_attention(qkv_buf, layout, hidden, num_heads, ctx, attention_math);
  output(ctx, n, y, ops::Activation::kNone, residual, then);
}

int64_t SelfAttention::qkv_floats(int64_t n) const {
  return fp32_or_bf16_rows_floats(n, qkv.out_features());
}

int64_t SelfAttention::context_floats(int64_t n) const {
  return fp32_or_bf16_rows_floats(n, output.in_features());
}

int64_t FeedForward::mid_floats(int64_t n) const {
  const int64_t staged_int8 =
      static_cast<int64_t>(ops::Linear::int8_staged_bytes(n, intermediate.out_features()) + 3) / 4;
  return std::max(fp32_or_bf16_rows_floats(n, intermediate.out_features()), staged_int8);
}

void EncoderLayer::forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
                           const ops::Linear* then) const {
  const int64_t n = layout.tokens();
  const int64_t hidden = attention.output.out_features();
  float* qkv = ws.qkv.reserve(attention.qkv_floats(n));
  float* ctx = ws.context.reserve(attention.context_floats(n));
  float* h1 = ws.attn_out.reserve(n * hidden);
  float* mid = ws.intermediate.reserve(feed_forward.mid_floats(n));

  if (pre_layer_norm) {
    // attention: h1 = LN(x) (n, hidden) -> qkv (n, 3 hidden) -> ctx (n, hidden) -> h1; x += h1
    attention_norm(x, nullptr, h1, n);
    attention.forward(h1, layout, qkv, ctx, h1, nullptr, &feed_forward.intermediate);
    ops::add_residual(x, h1, n, hidden);
    // feed-forward: h1 = LN(x) (n, hidden) -> mid (n, inner) -> h1 (n, hidden); x += h1
    output_norm(x, nullptr, h1, n);
    feed_forward.forward(h1, n, mid, h1, nullptr, then);
    ops::add_residual(x, h1, n, hidden);
    return;
  }

  // attention: x (n, hidden) -> qkv (n, 3 hidden) -> ctx (n, hidden) -> h1 (n, hidden)
  attention.forward(x, layout, qkv, ctx, h1, /*residual=*/x,  // h1 = ctx Wo^T + b + x
                    &feed_forward.intermediate);
  attention_norm(h1, nullptr, h1, n);                         // h1 = LayerNorm(h1)

  // feed-forward: h1 (n, hidden) -> mid (n, inner) -> x (n, hidden)
  feed_forward.forward(h1, n, mid, x, /*residual=*/h1, then);
  output_norm(x, nullptr, x, n);  // x = LayerNorm(mid Wout^T + b + h1)
}

void EncoderLayer::forward_rows(float* x, const ops::SequenceLayout& layout,
                                const RowSelection& selected, Workspace& ws) const {
  const int64_t n = layout.tokens(), m = selected.count;
  const int64_t hidden = attention.output.out_features();
  float* qkv = ws.qkv.reserve(n * 3 * hidden);
  float* ctx = ws.context.reserve(attention.context_floats(m));
  // normed (tokens, hidden; pre-LN only), then rows (m, hidden) and h1 (m, hidden)
  float* normed = ws.attn_out.reserve((pre_layer_norm ? n * hidden : 0) + 2 * m * hidden);
  float* rows = normed + (pre_layer_norm ? n * hidden : 0);
  float* h1 = rows + m * hidden;
  float* mid = ws.intermediate.reserve(feed_forward.mid_floats(m));
  for (int64_t i = 0; i < m; ++i)  // rows (m, hidden) <- the selected rows of x
    std::memcpy(rows + i * hidden, x + selected.rows[i] * hidden, hidden * sizeof(float));

  // keys and values of every row, queries of the selected rows -> ctx (m, hidden)
  const float* attended = x;
  if (pre_layer_norm) {
    attention_norm(x, nullptr, normed, n);
    attended = normed;
  }
  attention.qkv(attended, n, qkv);
  ops::attend_rows(qkv, layout, selected.rows, selected.seqs, m, hidden, attention.num_heads,
                   ctx);
  if (pre_layer_norm) {
    attention.output(ctx, m, h1, ops::Activation::kNone, rows);   // h1 = rows + Attn
    output_norm(h1, nullptr, rows, m);
    feed_forward.forward(rows, m, mid, rows, /*residual=*/h1);    // rows = h1 + FFN(LN(h1))
  } else {
    attention.output(ctx, m, h1, ops::Activation::kNone, rows);   // h1 = ctx Wo^T + b + rows
    attention_norm(h1, nullptr, h1, m);
    feed_forward.forward(h1, m, mid, rows, /*residual=*/h1);
    output_norm(rows, nullptr, rows, m);
  }
  for (int64_t i = 0; i < m; ++i)  // the selected rows of x <- rows
    std::memcpy(x + selected.rows[i] * hidden, rows + i * hidden, hidden * sizeof(float));
}

namespace {

// A run of whole sequences [b0, b1) of a batch: rows [start, start + tokens) of x, with the
// batch's layout and head rows shifted to them (layout and selected view the vectors).
struct Chunk {
  int64_t start = 0;
  std::vector<int64_t> offsets, rows, seqs;
  ops::SequenceLayout layout;
  RowSelection selected;
};

// The batch in chunks of at most `cap` tokens (a longer sequence alone), in order.
std::vector<Chunk> chunks_of(const ops::SequenceLayout& layout, const RowSelection* head_rows,
                             int64_t cap) {
  std::vector<Chunk> chunks;
  int64_t i = 0;  // head rows go in sequence order
  for (int64_t b0 = 0; b0 < layout.batch;) {
    const int64_t start = layout.offsets[b0];
    int64_t b1 = b0 + 1;
    while (b1 < layout.batch && layout.offsets[b1 + 1] - start <= cap) ++b1;
    Chunk& c = chunks.emplace_back();
    c.start = start;
    c.offsets.assign(layout.offsets + b0, layout.offsets + b1 + 1);
    for (int64_t& o : c.offsets) o -= start;
    for (; head_rows && i < head_rows->count && head_rows->seqs[i] < b1; ++i) {
      c.rows.push_back(head_rows->rows[i] - start);
      c.seqs.push_back(head_rows->seqs[i] - b0);
    }
    c.layout.keys = layout.keys ? layout.keys + b0 : nullptr;
    b0 = b1;
  }
  for (Chunk& c : chunks) {  // the views, once no vector moves any more
    c.layout.offsets = c.offsets.data();
    c.layout.batch = static_cast<int64_t>(c.offsets.size()) - 1;
    c.selected = RowSelection{c.rows.data(), c.seqs.data(), static_cast<int64_t>(c.rows.size())};
  }
  return chunks;
}

}  // namespace

void Encoder::forward(float* x, const ops::SequenceLayout& layout, Workspace& ws,
                      const std::function<void(int64_t, const float*)>& after_layer,
                      const RowSelection* head_rows) const {
  if (head_rows && after_layer)
    throw std::logic_error("Encoder::forward: a head-rows-only last layer leaves the other rows "
                           "stale, and after_layer would read them");
  if (layers.empty()) return;
  const std::vector<Chunk> chunks = chunks_of(layout, head_rows, chunk_tokens(thread_budget()));
  const int64_t hidden = layers.front()->attention.output.out_features();
  for (size_t i = 0; i < layers.size(); ++i) {
    const bool last = i + 1 == layers.size();
    for (size_t c = 0; c < chunks.size(); ++c) {
      const Chunk& chunk = chunks[c];
      float* xc = x + chunk.start * hidden;
      if (last && head_rows) {
        layers[i]->forward_rows(xc, chunk.layout, chunk.selected, ws);
      } else {
        // The Linear that runs next: this layer's QKV on the next chunk, or the next layer's.
        const ops::Linear* then = c + 1 < chunks.size() ? &layers[i]->attention.qkv
                                  : last                ? nullptr
                                                        : &layers[i + 1]->attention.qkv;
        layers[i]->forward(xc, chunk.layout, ws, then);
      }
      if (final_norm && last) (*final_norm)(xc, nullptr, xc, chunk.layout.tokens());
    }
    if (after_layer) after_layer(static_cast<int64_t>(i), x);
  }
}

int64_t Encoder::chunk_tokens(int threads) {
  return kChunkRowsPerThread * std::max(threads, 1);
}

}  // namespace pybert::layers
