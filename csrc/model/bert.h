// BertModel: the BERT family's encoder (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA, ALBERT,
// Megatron-BERT): embeddings -> [projection] -> encoder -> [pooler], loaded from a weight store
// through its family's strict name table (model/names.h), run on the real tokens of a batch only
// (padding removed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/embeddings.h"
#include "layers/encoder.h"
#include "layers/pooler.h"
#include "model/config.h"
#include "model/names.h"
#include "model/weights.h"

namespace pybert::model {

// A batch of token ids, row-major (batch, seq). Mask values are 0 (padding) or 1; a null mask
// means all ones, null token types all zeros.
struct BertInputs {
  const int64_t* input_ids = nullptr;
  const int64_t* attention_mask = nullptr;
  const int64_t* token_type_ids = nullptr;
  int64_t batch = 0;
  int64_t seq = 0;
  // (batch, seq) or null: nonzero marks a query-only token, computed although its mask is 0: it
  // attends to its sequence's real tokens and none attends to it (ColBERT's query expansion with
  // attention_mask 0). Query-only tokens must follow every real token of their row.
  const int64_t* query_only = nullptr;
};

// Where forward writes. Padded positions of the (batch, seq, hidden) outputs are zeros.
struct BertOutputs {
  float* last_hidden_state = nullptr;  // (batch, seq, hidden), or null when only the pooled /
                                       // first-token rows are wanted
  float* pooler_output = nullptr;      // (batch, hidden), or null to skip the pooler
  float* first_token = nullptr;        // (batch, hidden) each sequence's first real token (zeros
                                       // for an empty one), what the pooler reads; or null
  std::vector<float*> hidden_states;   // num_hidden_layers + 1 of (batch, seq, hidden), or none
};

// The last hidden state of a batch's real tokens, packed back to back as the encoder computed
// them: what heads and pooling read without a padded copy.
struct PackedRows {
  const float* x = nullptr;         // (tokens, hidden)
  ops::SequenceLayout layout;       // sequence b's rows are [offsets[b], offsets[b + 1])
  const int64_t* position = nullptr;  // (tokens) each row's flat place b * seq + s in the batch
  int64_t batch = 0, seq = 0;       // the padded batch's shape

  // first (batch, hidden) <- each sequence's first real row; zeros for an empty sequence.
  void first_rows(int64_t hidden, float* first) const;
};

// The rows of the last layer a head reads. kAll: every row. kFirst: one a sequence, its first
// real token after the first `skip` positions (what pooling's "cls" mode reads past a prompt;
// its first token when the sequence is no longer than that). kLast: its last real token.
// With kFirst or kLast the last layer computes those rows only (every row still gives its key
// and value): PackedRows' other rows then hold the layer below's output.
struct HeadRows {
  enum class Kind { kAll, kFirst, kLast };
  Kind kind = Kind::kAll;
  int64_t skip = 0;  // kFirst only
};

class BertModel {
 public:
  // Reads every body tensor from `store` under `prefix` (see detect_prefix) with the name table
  // of config.model_type. Missing, mis-shaped and unexpected body tensors throw
  // std::invalid_argument naming the tensor, the shape found and the shape expected. Every
  // Linear of the body computes at `precision` (norms, softmax, GELU, residuals stay fp32).
  BertModel(const BertConfig& config, const WeightStore& store, const std::string& prefix,
            ops::Precision precision = ops::Precision::kFp32);

  // "" when the body tensors have no prefix (saved from the base model), the family's prefix
  // ("bert.", "roberta.", ...) when saved from a *For* model; throws when neither holds the word
  // embeddings.
  static std::string detect_prefix(const BertConfig& config, const WeightStore& store);

  void forward(const BertInputs& in, const BertOutputs& out) const;

  // Runs the body on the real tokens of `in` and hands their last hidden state, still packed, to
  // `head` (which runs on the calling thread, before this returns; the rows live in the thread's
  // layers::Workspace, whose `pooled` buffer alone is free for the head). hidden_states: none, or num_hidden_layers + 1 padded buffers, as forward.
  // head_rows: the rows `head` reads (with hidden_states, every row is computed anyway).
  void forward_packed(const BertInputs& in, const std::vector<float*>& hidden_states,
                      const std::function<void(const PackedRows&)>& head,
                      HeadRows head_rows = {}) const;

  // first (batch, hidden) -> out (batch, hidden) = tanh(first W^T + b); needs has_pooler().
  void pool_first(const float* first, int64_t batch, float* out) const;

  // The embedding layer alone on every position: out (batch, seq, embedding_size), before any
  // projection to hidden_size.
  void embed(const int64_t* input_ids, const int64_t* token_type_ids, int64_t batch, int64_t seq,
             float* out) const;

  // The encoder stack alone: hidden (batch, seq, hidden) -> out (batch, seq, hidden).
  void encode(const float* hidden, const int64_t* attention_mask, int64_t batch, int64_t seq,
              float* out) const;

  const BertConfig& config() const { return config_; }
  bool has_pooler() const { return pooler_.has_value(); }
  const Tensor& word_embeddings() const { return embeddings_.word_embeddings; }
  // Longest sequence the position table covers (RoBERTa's positions start after pad_token_id).
  int64_t max_sequence_length() const;
  // Distinct layer weight sets in memory: num_hidden_layers, or ALBERT's num_hidden_groups.
  int64_t distinct_layers() const;

 private:
  void check_batch(int64_t batch, int64_t seq) const;

  BertConfig config_;
  const NameTable* names_;
  layers::Embeddings embeddings_;
  std::optional<ops::Linear> projection_;  // (hidden, embedding_size): ALBERT, some ELECTRAs
  layers::Encoder encoder_;
  std::optional<layers::Pooler> pooler_;
};

}  // namespace pybert::model
