// Multi-head self-attention over packed sequences (padding removed).
#pragma once

#include <cstdint>
#include <vector>

namespace pybert::ops {

// Tokens of a batch packed back to back: sequence b owns rows offsets[b] .. offsets[b+1].
// With `keys`, only the first keys[b] rows of sequence b are attended to; its rows after them are
// query-only tokens: they attend to those keys, nothing attends to them (ColBERT's query
// expansion [MASK]s with attention_mask 0).
struct SequenceLayout {
  const int64_t* offsets = nullptr;  // (batch + 1)
  int64_t batch = 0;
  const int64_t* keys = nullptr;     // (batch) or null: every row is a key
  int64_t tokens() const { return offsets[batch]; }
  int64_t max_length() const;
};

// The arithmetic of attention's two products, Q K^T and P V (softmax is fp32 in every one).
enum class AttentionMath {
  kFp32,
  // q, k, v and the probabilities rounded to bf16, fp32 accumulation (with bf16 kernels, see
  // Linear::precision; else fp32). The bf16 precision's.
  kBf16,
  // Each input split into three bf16 terms (Bf16Gemm::attention_head_split, AMX): an error of
  // ~2^-15 of sum |a| |b|, where int8's Linears err by ~2^-8; fp32 where the family has no split
  // kernel.
  kBf16Split,
  // kBf16Split for heads of keys x d_head >= 4096 (d_head 64: from 64 keys, 32: from 128),
  // fp32 for shorter ones (where the split is no faster). The int8 precision's.
  kBf16SplitLong,
};

// qkv (tokens, 3 * hidden): per row [q | k | v], head h in columns h*d_head .. (h+1)*d_head.
// ctx (tokens, hidden) = per sequence and head softmax(q k^T / sqrt(d_head)) v, heads
// concatenated, in the arithmetic `math`. Tokens attend only within their own sequence.
void self_attention(const float* qkv, const SequenceLayout& layout, int64_t hidden,
                    int64_t num_heads, float* ctx, AttentionMath math = AttentionMath::kFp32);

// Selected rows as the only queries: for i < m, row rows[i] of sequence seqs[i] attends to that
// sequence's keys (all its rows, or its first keys[b] with layout.keys), in fp32:
//   ctx (m, hidden) row i = the row self_attention writes at rows[i], heads concatenated.
// What the last layer of an encoder computes when its head reads one row per sequence.
void attend_rows(const float* qkv, const SequenceLayout& layout, const int64_t* rows,
                 const int64_t* seqs, int64_t m, int64_t hidden, int64_t num_heads, float* ctx);

// How self_attention splits its work over `parts` threads: the (sequence, head) items
// w = b * num_heads + h in contiguous ranges [bounds[t], bounds[t + 1]) of equal work, a head
// costing ~ rows x (keys + d_head) (its two products and the packing of its keys and values),
// so that a batch of uneven lengths does not leave one thread with most of it (an even split of
// the items would); sequences of one length get the even split.  Depends on its arguments only.
std::vector<int64_t> attention_split(const SequenceLayout& layout, int64_t num_heads,
                                     int64_t d_head, int64_t parts);

// bf16 kernels only (kernels::kernel_set().bf16): self_attention in AttentionMath::kBf16 from
// q, k, v already in bf16, as a bf16 QKV Linear writes them (Linear::forward_to_bf16: row stride
// kernels::bf16_padded_k(3 * hidden)), with the same result as from their fp32 values; no
// query-only rows (layout.keys).  The result goes to ctx (fp32, as self_attention's) or to
// ctx_rows: rounded to bf16 and written as the staged input rows of a bf16 Linear (row stride
// kernels::bf16_padded_k(hidden), padding zeroed), ready for Linear::forward_from_bf16.  Exactly
// one of ctx and ctx_rows.
void self_attention_bf16(const uint16_t* qkv_rows, const SequenceLayout& layout, int64_t hidden,
                         int64_t num_heads, float* ctx, uint16_t* ctx_rows = nullptr);

}  // namespace pybert::ops
