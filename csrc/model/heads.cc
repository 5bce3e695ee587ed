#include "model/heads.h"

#include <cstring>
#include <stdexcept>

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
  Buffer last_hidden;  // (batch, seq, hidden)
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

// Runs the body, then head(rows (m, hidden), m, y (m, cols)) on the hidden states at
// `positions`; y is `scores` itself.
template <typename Head>
void run_at(const BertModel& bert, const BertInputs& in, const std::vector<int64_t>& positions,
            const std::vector<float*>& hidden_states, float* scores, const Head& head) {
  const int64_t h = bert.config().hidden_size, m = static_cast<int64_t>(positions.size());
  HeadWorkspace& ws = HeadWorkspace::for_this_thread();
  BertOutputs out;
  out.last_hidden_state = ws.last_hidden.reserve(in.batch * in.seq * h);  // (batch, seq, hidden)
  out.hidden_states = hidden_states;
  bert.forward(in, out);
  float* rows = ws.rows.reserve(m * h);  // (m, hidden)
  for (int64_t t = 0; t < m; ++t)
    std::memcpy(rows + t * h, out.last_hidden_state + positions[t] * h, h * sizeof(float));
  head(rows, m, scores);
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

// Runs the body and a per-token head on every real token: scores (batch, seq, cols).
template <typename Head>
void run_per_token(const BertModel& bert, const BertInputs& in,
                   const std::vector<float*>& hidden_states, int64_t cols, float* scores,
                   const Head& head) {
  const std::vector<int64_t> positions = real_positions(in);
  run_at(bert, in, positions, hidden_states, scores, head);
  spread_rows(positions.data(), static_cast<int64_t>(positions.size()), in.batch * in.seq, cols,
              scores);
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
                                 ops::Precision precision)
    : bert_(config, store, prefix, precision) {
  const int64_t h = config.hidden_size, vocab = config.vocab_size;
  const HeadLoader load(store, "BertForMaskedLM");
  const std::string t = "cls.predictions.transform.";
  head_.transform = load.linear(t + "dense", h, h);
  head_.activation = kernels::activation_from_name(config.hidden_act);
  const bool old_names = !store.contains(t + "LayerNorm.weight") &&
                         store.contains(t + "LayerNorm.gamma");
  head_.transform_norm =
      ops::LayerNorm(load.get(t + "LayerNorm." + (old_names ? "gamma" : "weight"), {h}),
                     load.get(t + "LayerNorm." + (old_names ? "beta" : "bias"), {h}),
                     static_cast<float>(config.layer_norm_eps));
  // Tied: the decoder weight is the very Tensor the embeddings read (same memory, same owner).
  Tensor weight = tie_word_embeddings
                      ? bert_.word_embeddings()
                      : load.get("cls.predictions.decoder.weight", {vocab, h});
  // The decoder adds its own bias; checkpoints with the two tied keep only cls.predictions.bias.
  Tensor bias = load.first_of({"cls.predictions.decoder.bias", "cls.predictions.bias"}, {vocab});
  // Used in place (not repacked): tied, it must stay the embeddings' memory; either way a
  // vocab-sized copy would double the largest tensor for a product run on [MASK] rows only.
  head_.decoder.linear = ops::Linear(std::move(weight), std::move(bias), ops::Linear::Layout::kShared);
}

void BertForMaskedLM::run_head(const float* rows, int64_t m, float* y, ops::Scores kind) const {
  float* scratch =
      HeadWorkspace::for_this_thread().transformed.reserve(m * bert_.config().hidden_size);
  head_.forward(rows, m, scratch, y, kind);  // (m, hidden) -> (m, vocab)
}

void BertForMaskedLM::forward(const BertInputs& in, float* scores, ops::Scores kind,
                              const std::vector<float*>& hidden_states) const {
  run_per_token(bert_, in, hidden_states, bert_.config().vocab_size, scores,
                [&](const float* rows, int64_t m, float* y) { run_head(rows, m, y, kind); });
}

void BertForMaskedLM::forward_at(const BertInputs& in, const int64_t* positions, int64_t m,
                                 float* scores, ops::Scores kind) const {
  for (int64_t i = 0; i < m; ++i)
    if (positions[i] < 0 || positions[i] >= in.batch * in.seq)
      throw std::out_of_range("position " + std::to_string(positions[i]) +
                              " is outside the batch of " + std::to_string(in.batch * in.seq) +
                              " tokens");
  run_at(bert_, in, std::vector<int64_t>(positions, positions + m), {}, scores,
         [&](const float* rows, int64_t n, float* y) { run_head(rows, n, y, kind); });
}

}  // namespace pybert::model
