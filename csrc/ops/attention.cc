#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/gemm_lowp.h"
#include "kernels/matmul.h"
#include "kernels/softmax.h"
#include "parallel.h"
#include "tensor.h"

namespace pybert::ops {

int64_t SequenceLayout::max_length() const {
  int64_t m = 0;
  for (int64_t b = 0; b < batch; ++b) m = std::max(m, offsets[b + 1] - offsets[b]);
  return m;
}

namespace {

// The query-only rows of one (sequence, head): q (m, d_head) against the sequence's first
// `keys` rows k, v (keys, d_head), all with row stride ld -> out (m, d_head), row stride ld_out:
// softmax(q k^T * scale) v, in fp32. No keys: zeros. scratch: m * keys floats.
void attend_query_only(const float* q, const float* k, const float* v, int64_t ld, int64_t m,
                       int64_t keys, int64_t d_head, float scale, float* out, int64_t ld_out,
                       float* scratch) {
  if (keys == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(out + i * ld_out, out + i * ld_out + d_head, 0.0f);
    return;
  }
  kernels::matmul_nt(q, ld, k, ld, m, keys, d_head, scratch, keys);  // (m, keys)
  for (int64_t i = 0; i < m; ++i) kernels::softmax(scratch + i * keys, keys, scale);
  kernels::matmul_nn(scratch, keys, v, ld, m, d_head, keys, out, ld_out);
}

// d_head of `hidden` split over `num_heads`; throws when it does not divide.
int64_t head_size(int64_t hidden, int64_t num_heads) {
  if (num_heads <= 0 || hidden % num_heads != 0)
    throw std::invalid_argument("hidden_size " + std::to_string(hidden) +
                                " is not divisible by num_attention_heads " +
                                std::to_string(num_heads));
  return hidden / num_heads;
}

// AttentionMath::kBf16SplitLong splits the heads of keys x d_head >= kMinSplitWork.  One head
// alone, 8 sequences' rows (benchmarks/attention_head.cc), split vs fp32 microseconds: d_head 64:
// 32 keys 4.0 / 3.4, 64 keys 8.1 / 10.5, 128 keys 23.9 / 31.1; d_head 32: 64 keys 6.0 / 5.7,
// 96 keys 9.4 / 9.6, 128 keys 15.9 / 17.1.  Whole model, int8, 2 threads, thresholds
// alternating in one process: BERT-base (d_head 64) var32 0.92 from 64 keys and 0.94 from 128
// against from 256, 8x128 0.95; MiniLM (d_head 32) within noise (0.98-1.03).  (Before the
// encoder ran large batches in chunks, splitting 128-key heads measured 0.96-1.05: their rows
// came from memory.)
constexpr int64_t kMinSplitWork = 4096;

// attend's input, rows [q | k | v]: fp32 (row stride 3 hidden), or bf16 as a bf16 QKV Linear
// stages them (row stride bf16_padded_k(3 hidden); math kBf16 only).
struct QkvRows {
  const float* fp32 = nullptr;
  const uint16_t* bf16 = nullptr;
};

// Shared body: ctx fp32 (ld hidden) or, with ctx_bf16, bf16 staged rows (ld bf16_padded_k).
// Query-only rows (layout.keys) need qkv and ctx in fp32.
void attend(QkvRows qkv, const SequenceLayout& layout, int64_t hidden, int64_t num_heads,
            float* ctx, uint16_t* ctx_bf16, AttentionMath math) {
  const int64_t d_head = head_size(hidden, num_heads);
  const int64_t ld = qkv.bf16 ? kernels::bf16_padded_k(3 * hidden) : 3 * hidden;
  const int64_t ld_out = ctx_bf16 ? kernels::bf16_padded_k(hidden) : hidden;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_head));
  const int64_t max_len = layout.max_length();
  const kernels::KernelSet& family = kernels::kernel_set();
  const kernels::AttentionKernels& fp32_kernels = *family.attention;
  const kernels::Bf16Gemm* bf16_kernels = family.bf16;
  const bool split = math == AttentionMath::kBf16Split || math == AttentionMath::kBf16SplitLong;
  // The bf16-tile kernel a head of `len` keys runs (split or not), or null: fp32's.
  const auto tile_head = [&](int64_t len) -> decltype(kernels::Bf16Gemm::attention_head) {
    if (!bf16_kernels || math == AttentionMath::kFp32) return nullptr;
    if (!split) return bf16_kernels->attention_head;
    return math == AttentionMath::kBf16Split || len * d_head >= kMinSplitWork
               ? bf16_kernels->attention_head_split
               : nullptr;
  };
  if (layout.keys && (ctx_bf16 || qkv.bf16))
    throw std::logic_error("query-only rows need the attention's input and output in fp32");
  if (ctx_bf16 && !tile_head(0))
    throw std::logic_error("a bf16 attention output needs bf16 kernels");
  if (qkv.bf16 && (math != AttentionMath::kBf16 || !tile_head(0)))
    throw std::logic_error("a bf16 attention input needs the bf16 arithmetic and its kernels");
  const int64_t scratch_floats = std::max(  // the longest head's, for either kernel
      {tile_head(max_len) ? (bf16_kernels->attention_scratch_bytes(max_len, d_head, split) + 3) / 4
                          : 0,
       tile_head(0) ? 0 : fp32_kernels.scratch_floats(max_len, d_head),
       layout.keys ? max_len * max_len : int64_t{0}});
  const int64_t items = layout.batch * num_heads;
  const int64_t parts = std::min<int64_t>(thread_budget(), items);
  const std::vector<int64_t> bounds = attention_split(layout, num_heads, d_head, parts);
  parallel_for(0, parts, 1, [&](int64_t t0, int64_t t1) {
    thread_local Buffer scores;  // the kernel's scratch, reused across calls
    float* scratch = scores.reserve(scratch_floats);
    for (int64_t w = bounds[t0]; w < bounds[t1]; ++w) {
      const int64_t b = w / num_heads, h = w % num_heads;
      const int64_t start = layout.offsets[b], rows = layout.offsets[b + 1] - start;
      const int64_t len = layout.keys ? layout.keys[b] : rows;  // the attended rows
      const int64_t out_at = start * ld_out + h * d_head;
      float* out = ctx ? ctx + out_at : nullptr;
      uint16_t* out_bf16 = ctx_bf16 ? ctx_bf16 + out_at : nullptr;
      if (qkv.bf16) {
        const uint16_t* q = qkv.bf16 + start * ld + h * d_head;
        if (len > 0)
          bf16_kernels->attention_head_bf16(q, q + hidden, q + 2 * hidden, ld, len, d_head,
                                            scale, out, out_bf16, ld_out, scratch);
        continue;
      }
      const float* q = qkv.fp32 + start * ld + h * d_head;
      if (rows > len)
        attend_query_only(q + len * ld, q + hidden, q + 2 * hidden, ld, rows - len, len, d_head,
                          scale, out + len * ld_out, ld_out, scratch);
      if (len == 0) continue;
      if (const auto head = tile_head(len))
        head(q, q + hidden, q + 2 * hidden, ld, len, d_head, scale, out, out_bf16, ld_out,
             scratch);
      else
        fp32_kernels.head(q, q + hidden, q + 2 * hidden, ld, len, d_head, scale, out, ld_out,
                          scratch);
    }
  });
}

}  // namespace

std::vector<int64_t> attention_split(const SequenceLayout& layout, int64_t num_heads,
                                     int64_t d_head, int64_t parts) {
  const auto cost = [&](int64_t b) {  // one head of sequence b
    const int64_t rows = layout.offsets[b + 1] - layout.offsets[b];
    const int64_t keys = layout.keys ? layout.keys[b] : rows;
    return rows * (keys + d_head) + 1;  // + 1: an empty sequence still takes a step
  };
  int64_t total = 0;
  for (int64_t b = 0; b < layout.batch; ++b) total += cost(b) * num_heads;
  std::vector<int64_t> bounds(parts + 1, layout.batch * num_heads);
  bounds[0] = 0;
  int64_t t = 1, done = 0;  // done: the cost of items [0, w)
  for (int64_t w = 0; w < layout.batch * num_heads && t < parts; ++w) {
    while (t < parts && done * parts >= t * total) bounds[t++] = w;
    done += cost(w / num_heads);
  }
  return bounds;
}

void self_attention(const float* qkv, const SequenceLayout& layout, int64_t hidden,
                    int64_t num_heads, float* ctx, AttentionMath math) {
  attend({qkv, nullptr}, layout, hidden, num_heads, ctx, nullptr, math);
}

void attend_rows(const float* qkv, const SequenceLayout& layout, const int64_t* rows,
                 const int64_t* seqs, int64_t m, int64_t hidden, int64_t num_heads, float* ctx) {
  const int64_t d_head = head_size(hidden, num_heads), ld = 3 * hidden;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d_head));
  const int64_t max_len = layout.max_length();
  parallel_for(0, m * num_heads, 1, [&](int64_t w0, int64_t w1) {
    thread_local Buffer scores;  // (1, keys) probabilities, reused across calls
    float* scratch = scores.reserve(max_len);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t i = w / num_heads, h = w % num_heads, b = seqs[i];
      const int64_t start = layout.offsets[b];
      const int64_t keys = layout.keys ? layout.keys[b] : layout.offsets[b + 1] - start;
      const float* first = qkv + start * ld + h * d_head;  // the sequence's q of head h
      attend_query_only(qkv + rows[i] * ld + h * d_head, first + hidden, first + 2 * hidden, ld,
                        1, keys, d_head, scale, ctx + i * hidden + h * d_head, hidden, scratch);
    }
  });
}

void self_attention_bf16(const uint16_t* qkv_rows, const SequenceLayout& layout, int64_t hidden,
                         int64_t num_heads, float* ctx, uint16_t* ctx_rows) {
  if (!kernels::kernel_set().bf16)
    throw std::logic_error("self_attention_bf16 needs bf16 kernels");
  if (!ctx == !ctx_rows) throw std::logic_error("self_attention_bf16: one of ctx and ctx_rows");
  if (ctx_rows) kernels::zero_bf16_padding(ctx_rows, layout.tokens(), hidden);
  attend({nullptr, qkv_rows}, layout, hidden, num_heads, ctx, ctx_rows, AttentionMath::kBf16);
}

}  // namespace pybert::ops
