#include "model/heads.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/pooling.h"
#include "parallel.h"

namespace pybert::model {
namespace {

// Reads a head's tensors (no prefix: HF keeps heads beside "bert."); errors name the model
// whose head is incomplete as well as the tensor.
class HeadLoader {
 public:
  HeadLoader(const WeightStore& store, std::string model) : store_(store), model_(std::move(model)) {}

  Tensor get(const std::string& name, const Shape& shape) const {
    try {
      return store_.get(name, shape);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(model_ + " head: " + e.what());
    }
  }
  // The first of `names` the checkpoint holds (HF saves tied tensors under one of them).
  Tensor first_of(const std::vector<std::string>& names, const Shape& shape) const {
    for (const std::string& name : names)
      if (store_.contains(name)) return get(name, shape);
    return get(names.back(), shape);  // throws, naming the usual one
  }
  ops::Linear linear(const std::string& name, int64_t out, int64_t in) const {
    Tensor weight = get(name + ".weight", {out, in});
    Tensor bias = get(name + ".bias", {out});
    return ops::Linear(std::move(weight), std::move(bias));
  }

 private:
  const WeightStore& store_;
  std::string model_;
};

// How errors name a family's task model: "RobertaForSequenceClassification", ...
std::string task_name(const BertConfig& config, const std::string& task) {
  return name_table(config.model_type).architecture + task;
}

// Activations and scratch of one head call, reused by the next call on the same thread.
struct HeadWorkspace {
  Buffer pooled;       // (batch, hidden)  the pooler's or the head's dense output
  Buffer rows;         // (m, hidden)  the positions the head runs on (first tokens: m = batch)
  Buffer transformed;  // (m, hidden)  masked-LM transform output

  static HeadWorkspace& for_this_thread() {
    thread_local HeadWorkspace ws;
    return ws;
  }
};

// Flat indices b * seq + s of the real tokens of a batch (mask 1, or every position).
std::vector<int64_t> real_positions(const BertInputs& in) {
  std::vector<int64_t> positions;
  positions.reserve(in.batch * in.seq);
  for (int64_t i = 0; i < in.batch * in.seq; ++i)
    if (!in.attention_mask || in.attention_mask[i] != 0) positions.push_back(i);
  return positions;
}

// scores: m packed rows (m, cols) at the front -> (batch * seq, cols) with row t moved to
// positions[t] (ascending, positions[t] >= t) and zeros elsewhere. Moving from the last row
// down never overwrites a row still to be moved.
void spread_rows(const int64_t* positions, int64_t m, int64_t total_rows, int64_t cols,
                 float* scores) {
  int64_t end = total_rows;  // rows [positions[t] + 1, end) are padding
  for (int64_t t = m - 1; t >= 0; --t) {
    const int64_t p = positions[t];
    std::memset(scores + (p + 1) * cols, 0, (end - p - 1) * cols * sizeof(float));
    if (p != t) std::memmove(scores + p * cols, scores + t * cols, cols * sizeof(float));
    end = p;
  }
  std::memset(scores, 0, end * cols * sizeof(float));
}

}  // namespace

BertWithClassifier::BertWithClassifier(const BertConfig& config, const WeightStore& store,
                                       const std::string& prefix, int64_t num_labels,
                                       const std::string& model, const std::string& classifier,
                                       ops::Precision precision)
    : bert_(config, store, prefix, precision) {
  classifier_.linear = HeadLoader(store, model).linear(classifier, num_labels, config.hidden_size);
}

BertForSequenceClassification::BertForSequenceClassification(const BertConfig& config,
                                                             const WeightStore& store,
                                                             const std::string& prefix,
                                                             int64_t num_labels,
                                                             ops::Precision precision)
    : BertWithClassifier(config, store, prefix, num_labels,
                         task_name(config, "ForSequenceClassification"),
                         name_table(config.model_type).classifier, precision) {
  const NameTable& t = name_table(config.model_type);
  const std::string model = task_name(config, "ForSequenceClassification");
  if (!t.classifier_dense.empty()) {
    const int64_t h = config.hidden_size;
    dense_ = HeadLoader(store, model).linear(t.classifier_dense, h, h);
    activation_ = t.classifier_activation;
  } else if (!bert_.has_pooler()) {
    throw std::invalid_argument(model + " needs the pooler: the checkpoint has no '" + prefix +
                                t.pooler + ".weight'");
  }
}

void BertForSequenceClassification::forward(const BertInputs& in, float* scores, ops::Scores kind,
                                            const std::vector<float*>& hidden_states) const {
  const int64_t h = bert_.config().hidden_size;
  HeadWorkspace& ws = HeadWorkspace::for_this_thread();
  // The body's packed rows are read in place: no padded (batch, seq, hidden) copy is made.
  BertOutputs out;
  out.hidden_states = hidden_states;
  float* pooled = ws.pooled.reserve(in.batch * h);  // (batch, hidden)
  if (dense_)
    out.first_token = ws.rows.reserve(in.batch * h);  // (batch, hidden), for the head's dense
  else
    out.pooler_output = pooled;  // the body's pooler: dense + tanh on the first token
  bert_.forward(in, out);
  if (dense_) (*dense_)(out.first_token, in.batch, pooled, activation_);  // -> (batch, hidden)
  classifier_.forward(pooled, in.batch, scores, kind);  // -> (batch, num_labels)
}

BertForTokenClassification::BertForTokenClassification(const BertConfig& config,
                                                       const WeightStore& store,
                                                       const std::string& prefix,
                                                       int64_t num_labels,
                                                       ops::Precision precision)
    : BertWithClassifier(config, store, prefix, num_labels,
                         task_name(config, "ForTokenClassification"), "classifier", precision) {}

void BertForTokenClassification::forward(const BertInputs& in, float* scores, ops::Scores kind,
                                         const std::vector<float*>& hidden_states) const {
  // The classifier reads the body's packed rows in place; their scores are then spread to the
  // rows' places in the padded (batch, seq, num_labels) output.
  bert_.forward_packed(in, hidden_states, [&](const PackedRows& rows) {
    const int64_t m = rows.layout.tokens();
    classifier_.forward(rows.x, m, scores, kind);  // (m, hidden) -> (m, num_labels)
    spread_rows(rows.position, m, in.batch * in.seq, num_labels(), scores);
  });
}

BertForMaskedLM::BertForMaskedLM(const BertConfig& config, const WeightStore& store,
                                 const std::string& prefix, bool tie_word_embeddings,
                                 ops::Precision precision, bool packed_decoder)
    : bert_(config, store, prefix, precision) {
  const int64_t h = config.hidden_size, vocab = config.vocab_size;
  const NameTable& names = name_table(config.model_type);
  const std::string model = task_name(config, "ForMaskedLM");
  if (names.mlm_transform.empty())
    throw std::invalid_argument(model + " is not supported: pybert runs the masked-LM head of "
                                "model_type " + masked_lm_families());
  const HeadLoader load(store, model);
  head_.transform = load.linear(names.mlm_transform, h, h);
  head_.activation = names.mlm_activation.value_or(
      kernels::activation_from_name(config.hidden_act));
  // LayerNorm parameters are "weight"/"bias", or "gamma"/"beta" in old BERT checkpoints.
  const std::string& norm = names.mlm_norm;
  const bool old_names = !store.contains(norm + ".weight") && store.contains(norm + ".gamma");
  head_.transform_norm =
      ops::LayerNorm(load.get(norm + (old_names ? ".gamma" : ".weight"), {h}),
                     load.get(norm + (old_names ? ".beta" : ".bias"), {h}),
                     static_cast<float>(config.layer_norm_eps));
  // Tied: the decoder weight is the very Tensor the embeddings read (same memory, same owner).
  Tensor weight = tie_word_embeddings ? bert_.word_embeddings()
                                      : load.get(names.mlm_decoder + ".weight", {vocab, h});
  // The decoder adds its own bias; checkpoints with the two tied keep only `mlm_bias`.
  std::vector<std::string> bias_names = {names.mlm_decoder + ".bias"};
  if (!names.mlm_bias.empty()) bias_names.push_back(names.mlm_bias);
  Tensor bias = load.first_of(bias_names, {vocab});
  // Used in place (not repacked): tied, it must stay the embeddings' memory; either way a
  // vocab-sized copy would double the largest tensor for a product run on [MASK] rows only.
  // SPLADE runs it on every token: there the packed kernel (and its pooling epilogue) pays.
  head_.decoder.linear = ops::Linear(
      std::move(weight), std::move(bias),
      packed_decoder ? ops::Linear::Layout::kPacked : ops::Linear::Layout::kShared);
}

void BertForMaskedLM::forward_pooled(const BertInputs& in, float* pooled, ops::Activation act,
                                     ops::RowPool pool) const {
  const int64_t h = bert_.config().hidden_size;
  HeadWorkspace& ws = HeadWorkspace::for_this_thread();
  std::vector<int32_t> segment;  // (tokens) the sequence of each packed row
  bert_.forward_packed(in, {}, [&](const PackedRows& rows) {
    const ops::SequenceLayout& layout = rows.layout;
    const int64_t n = layout.tokens();
    segment.resize(n);
    for (int64_t b = 0; b < layout.batch; ++b)
      std::fill(segment.begin() + layout.offsets[b], segment.begin() + layout.offsets[b + 1],
                static_cast<int32_t>(b));
    float* scratch = ws.transformed.reserve(n * h);  // (tokens, hidden)
    head_.pooled(rows.x, n, scratch, segment.data(), in.batch, pooled, act, pool);
  });
}

BertMultiVector::BertMultiVector(const BertConfig& config, const WeightStore& store,
                                 const std::string& prefix, Tensor dense_weight,
                                 Tensor dense_bias, ops::Activation dense_activation,
                                 bool normalize, ops::Precision precision)
    : bert_(config, store, prefix, precision),
      dense_(std::move(dense_weight), std::move(dense_bias)),  // fp32, as the heads
      activation_(dense_activation),
      normalize_(normalize) {
  if (dense_.in_features() != config.hidden_size)
    throw std::invalid_argument("Dense in_features (" + std::to_string(dense_.in_features()) +
                                ") must equal the model's hidden_size (" +
                                std::to_string(config.hidden_size) + ")");
}

void BertMultiVector::forward(const BertInputs& in, const int64_t* keep, float* out,
                              int64_t width, bool normalize_embeddings) const {
  const int64_t h = bert_.config().hidden_size, dim = dense_.out_features();
  if (width < 1 || width > dim)
    throw std::invalid_argument("width must be between 1 and the projection's " +
                                std::to_string(dim) + " features, got " + std::to_string(width));
  // Packed row of each kept token: computed tokens (real, then query-only) are packed in
  // (sequence, position) order.
  std::vector<int64_t> kept_rows;
  int64_t row = 0;
  for (int64_t i = 0; i < in.batch * in.seq; ++i) {
    const bool computed = !in.attention_mask || in.attention_mask[i] != 0 ||
                          (in.query_only && in.query_only[i] != 0);
    if (keep[i] != 0 && !computed)
      throw std::invalid_argument("keep marks a padded position (flat index " +
                                  std::to_string(i) + "); only computed tokens can be kept");
    if (keep[i] != 0) kept_rows.push_back(row);
    row += computed;
  }
  const int64_t m = static_cast<int64_t>(kept_rows.size());
  // Truncated (Matryoshka) vectors are renormalized, as sentence-transformers does.
  const bool normalize = normalize_ || normalize_embeddings || width < dim;
  HeadWorkspace& ws = HeadWorkspace::for_this_thread();
  bert_.forward_packed(in, {}, [&](const PackedRows& rows) {
    float* gathered = ws.rows.reserve(m * h);  // (kept, hidden)
    for (int64_t t = 0; t < m; ++t)
      std::memcpy(gathered + t * h, rows.x + kept_rows[t] * h, h * sizeof(float));
    float* projected = width < dim ? ws.transformed.reserve(m * dim) : out;  // (kept, dim)
    dense_(gathered, m, projected, activation_);
    parallel_for(0, m, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (width < dim) std::memcpy(out + r * width, projected + r * dim, width * sizeof(float));
        if (normalize) kernels::l2_normalize(out + r * width, width, 1e-12f);
      }
    });
  });
}

void BertForMaskedLM::run_head(const float* rows, int64_t m, float* y, ops::Scores kind) const {
  float* scratch =
      HeadWorkspace::for_this_thread().transformed.reserve(m * bert_.config().hidden_size);
  head_.forward(rows, m, scratch, y, kind);  // (m, hidden) -> (m, vocab)
}

void BertForMaskedLM::forward(const BertInputs& in, float* scores, ops::Scores kind,
                              const std::vector<float*>& hidden_states) const {
  // The head reads the body's packed rows in place; their scores are then spread to the rows'
  // places in the padded (batch, seq, vocab) output.
  bert_.forward_packed(in, hidden_states, [&](const PackedRows& rows) {
    const int64_t m = rows.layout.tokens();
    run_head(rows.x, m, scores, kind);  // (m, hidden) -> (m, vocab)
    spread_rows(rows.position, m, in.batch * in.seq, bert_.config().vocab_size, scores);
  });
}

void BertForMaskedLM::forward_at(const BertInputs& in, const int64_t* positions, int64_t m,
                                 float* scores, ops::Scores kind) const {
  // Packed row of each asked position: real tokens are packed in flat (b * seq + s) order.
  const std::vector<int64_t> real = real_positions(in);
  std::vector<int64_t> packed_row(m);
  for (int64_t i = 0; i < m; ++i) {
    if (positions[i] < 0 || positions[i] >= in.batch * in.seq)
      throw std::out_of_range("position " + std::to_string(positions[i]) +
                              " is outside the batch of " + std::to_string(in.batch * in.seq) +
                              " tokens");
    const auto at = std::lower_bound(real.begin(), real.end(), positions[i]);
    if (at == real.end() || *at != positions[i])
      throw std::invalid_argument("position " + std::to_string(positions[i]) +
                                  " is a padded token (attention_mask 0); the head runs on real "
                                  "tokens only");
    packed_row[i] = at - real.begin();
  }
  const int64_t h = bert_.config().hidden_size;
  bert_.forward_packed(in, {}, [&](const PackedRows& rows) {
    float* gathered = HeadWorkspace::for_this_thread().rows.reserve(m * h);  // (m, hidden)
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(gathered + i * h, rows.x + packed_row[i] * h, h * sizeof(float));
    run_head(gathered, m, scores, kind);  // (m, hidden) -> (m, vocab)
  });
}

}  // namespace pybert::model
