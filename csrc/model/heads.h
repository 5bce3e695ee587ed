// The BERT family with a task head, the Hugging Face *For* models: the body is a BertModel read
// from the weight store under its prefix, the head's tensors are read from the same store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "layers/heads.h"
#include "model/bert.h"

namespace pybert::model {

// The body plus a classifier (num_labels, hidden): what sequence and token classification share.
class BertWithClassifier {
 public:
  const BertModel& bert() const { return bert_; }
  int64_t num_labels() const { return classifier_.linear.out_features(); }

 protected:
  // Reads `classifier`.weight (num_labels, hidden) + .bias; errors name `model`.
  // The body computes at `precision`; the classifier in fp32.
  BertWithClassifier(const BertConfig& config, const WeightStore& store, const std::string& prefix,
                     int64_t num_labels, const std::string& model, const std::string& classifier,
                     ops::Precision precision);

  BertModel bert_;
  layers::LinearHead classifier_;
};

// HF *ForSequenceClassification of the config's family, with the family's names (names.h):
// each sequence's first real token -> the body's pooler (BERT, ALBERT, Megatron-BERT) or the
// head's own dense + activation (RoBERTa / XLM-R: tanh, ELECTRA: GELU, DistilBERT: ReLU) -> the
// classifier. A sequence without real tokens starts from a zero vector.
class BertForSequenceClassification : public BertWithClassifier {
 public:
  BertForSequenceClassification(const BertConfig& config, const WeightStore& store,
                                const std::string& prefix, int64_t num_labels,
                                ops::Precision precision = ops::Precision::kFp32);

  // in -> scores (batch, num_labels); hidden_states: none, or num_hidden_layers + 1 buffers of
  // (batch, seq, hidden) as in BertModel::forward.
  void forward(const BertInputs& in, float* scores, ops::Scores kind,
               const std::vector<float*>& hidden_states = {}) const;

 private:
  std::optional<ops::Linear> dense_;  // (hidden, hidden); none: the pooler does this part
  ops::Activation activation_ = ops::Activation::kTanh;
};

// HF *ForTokenClassification (every family names it `classifier`): the classifier on every token.
class BertForTokenClassification : public BertWithClassifier {
 public:
  BertForTokenClassification(const BertConfig& config, const WeightStore& store,
                             const std::string& prefix, int64_t num_labels,
                             ops::Precision precision = ops::Precision::kFp32);

  // in -> scores (batch, seq, num_labels); padded positions are zeros.
  void forward(const BertInputs& in, float* scores, ops::Scores kind,
               const std::vector<float*>& hidden_states = {}) const;
};

// HF *ForMaskedLM of the config's family (BERT, Megatron-BERT, RoBERTa, XLM-R, DistilBERT), with
// the family's head names (names.h): the transform (dense + activation + LayerNorm), then the
// decoder to the vocabulary. With tied embeddings (the default) the decoder weight is the
// body's word-embedding tensor itself, not a copy; only its bias comes from the head. The body
// computes at `precision`, the head in fp32 (the tied decoder must stay the embeddings' memory).
// The head runs on the body's packed rows of real tokens.
class BertForMaskedLM {
 public:
  // packed_decoder: the decoder weight repacked for the GEMM kernel (a copy of vocab x hidden
  // floats), as forward_pooled needs; otherwise it is used in place.
  BertForMaskedLM(const BertConfig& config, const WeightStore& store, const std::string& prefix,
                  bool tie_word_embeddings, ops::Precision precision = ops::Precision::kFp32,
                  bool packed_decoder = false);

  // in -> scores (batch, seq, vocab_size); padded positions are zeros.
  void forward(const BertInputs& in, float* scores, ops::Scores kind,
               const std::vector<float*>& hidden_states = {}) const;

  // The head only where asked (the [MASK]s): positions (m) flat indices b * seq + s of real
  // tokens of the batch -> scores (m, vocab_size).
  void forward_at(const BertInputs& in, const int64_t* positions, int64_t m, float* scores,
                  ops::Scores kind) const;

  // SPLADE (sentence-transformers' SpladePooling): in -> pooled (batch, vocab_size), each
  // sequence's real tokens' logits through `act` and folded by `pool` (max or sum) in the decoder
  // GEMM's epilogue, on the packed rows of the real tokens: no (tokens, vocab) logits exist. A
  // sequence without real tokens gets zeros. Needs packed_decoder.
  void forward_pooled(const BertInputs& in, float* pooled, ops::Activation act,
                      ops::RowPool pool) const;

  const BertModel& bert() const { return bert_; }
  const Tensor& decoder_weight() const { return head_.decoder.linear.weight(); }

 private:
  // rows (m, hidden) -> y (m, vocab_size)
  void run_head(const float* rows, int64_t m, float* y, ops::Scores kind) const;

  BertModel bert_;
  layers::MaskedLMHead head_;
};

// sentence-transformers' multi-vector (ColBERT-style) encoder: the body, then per kept token a
// Dense projection (hidden -> dim, optional bias, activation) and an L2 normalization, on the
// packed rows of the real tokens.
class BertMultiVector {
 public:
  // dense_weight (dim, hidden), dense_bias (dim) or empty.
  BertMultiVector(const BertConfig& config, const WeightStore& store, const std::string& prefix,
                  Tensor dense_weight, Tensor dense_bias, ops::Activation dense_activation,
                  bool normalize, ops::Precision precision = ops::Precision::kFp32);

  // in, keep (batch, seq; nonzero: output this token, which must be a real or query-only
  // token) -> out (kept, width): the kept tokens' vectors in (sequence, position) order, their
  // first `width` <= dim features; L2-normalized when the model normalizes, when
  // normalize_embeddings, or when truncated (width < dim).
  void forward(const BertInputs& in, const int64_t* keep, float* out, int64_t width,
               bool normalize_embeddings = false) const;

  const BertModel& bert() const { return bert_; }
  int64_t dim() const { return dense_.out_features(); }

 private:
  BertModel bert_;
  ops::Linear dense_;
  ops::Activation activation_;
  bool normalize_;
};

}  // namespace pybert::model
