#include "model/bert.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>

#include "parallel.h"

namespace pybert::model {
namespace {

// Loads tensors by HF name under one prefix and remembers which ones it took, so that left-over
// body tensors can be reported.
class Loader {
 public:
  Loader(const WeightStore& store, std::string prefix, ops::Precision precision)
      : store_(store), prefix_(std::move(prefix)), precision_(precision) {}

  Tensor get(const std::string& name, const Shape& shape) {
    taken_.insert(prefix_ + name);
    return store_.get(prefix_ + name, shape);
  }
  // LayerNorm parameters are "weight"/"bias" in current checkpoints, "gamma"/"beta" in old ones.
  ops::LayerNorm layer_norm(const std::string& name, int64_t hidden, double eps) {
    const bool old = !store_.contains(prefix_ + name + ".weight") &&
                     store_.contains(prefix_ + name + ".gamma");
    Tensor g = get(name + (old ? ".gamma" : ".weight"), {hidden});
    Tensor b = get(name + (old ? ".beta" : ".bias"), {hidden});
    return ops::LayerNorm(std::move(g), std::move(b), static_cast<float>(eps));
  }
  ops::Linear linear(const std::string& name, int64_t out, int64_t in) {
    Tensor w = get(name + ".weight", {out, in});
    Tensor b = get(name + ".bias", {out});
    return ops::Linear(std::move(w), std::move(b), ops::Linear::Layout::kPacked, precision_);
  }
  // Q, K, V projections fused once into one (3 * hidden, hidden) weight.
  ops::Linear fused_qkv(const std::string& q, const std::string& k, const std::string& v,
                        int64_t hidden) {
    std::shared_ptr<float> w = make_aligned_floats(3 * hidden * hidden);
    std::shared_ptr<float> b = make_aligned_floats(3 * hidden);
    const std::string* parts[] = {&q, &k, &v};
    for (int i = 0; i < 3; ++i) {
      Tensor pw = get(*parts[i] + ".weight", {hidden, hidden});
      Tensor pb = get(*parts[i] + ".bias", {hidden});
      std::memcpy(w.get() + i * hidden * hidden, pw.data, hidden * hidden * sizeof(float));
      std::memcpy(b.get() + i * hidden, pb.data, hidden * sizeof(float));
    }
    return ops::Linear(Tensor{w.get(), {3 * hidden, hidden}, w},
                       Tensor{b.get(), {3 * hidden}, b}, ops::Linear::Layout::kPacked,
                       precision_);
  }
  bool has(const std::string& name) const { return store_.contains(prefix_ + name); }
  // Attention's products: bf16 for the bf16 and int8_bf16_attention models, three bf16 terms
  // (close to fp32, see ops::AttentionMath) on long sequences for int8, else fp32.
  ops::AttentionMath attention_math() const {
    switch (precision_) {
      case ops::Precision::kBf16:
      case ops::Precision::kInt8Bf16Attention: return ops::AttentionMath::kBf16;
      case ops::Precision::kInt8: return ops::AttentionMath::kBf16SplitLong;
      default: return ops::AttentionMath::kFp32;
    }
  }

  // Body tensors (under a root of the family's names, e.g. embeddings./encoder./pooler.) that
  // no layer took.
  void check_all_taken(const NameTable& names) const {
    static const std::set<std::string> buffers = {"embeddings.position_ids",
                                                  "embeddings.token_type_ids"};
    std::set<std::string> roots;
    for (const std::string* n : {&names.word_embeddings, &names.embedding_projection,
                                 &names.layer, &names.final_norm, &names.pooler})
      if (!n->empty()) roots.insert(n->substr(0, n->find('.')) + ".");
    for (const std::string& name : store_.names()) {
      if (name.compare(0, prefix_.size(), prefix_) != 0) continue;
      const std::string rest = name.substr(prefix_.size());
      const bool body = roots.count(rest.substr(0, rest.find('.')) + ".") != 0;
      if (body && !taken_.count(name) && !buffers.count(rest))
        throw std::invalid_argument("unexpected tensor '" + name + "' of shape " +
                                    shape_str(store_.shape(name)) +
                                    " in the checkpoint: it matches no layer of this config "
                                    "(check num_hidden_layers and the architecture)");
    }
  }

 private:
  const WeightStore& store_;
  std::string prefix_;
  ops::Precision precision_;
  std::set<std::string> taken_;
};

// The real tokens of a batch, packed back to back; reused per calling thread.
struct PackedBatch {
  std::vector<int64_t> offsets;    // (batch + 1)
  std::vector<int64_t> keys;       // (batch) real tokens of each sequence, when some are
                                   // query-only (BertInputs::query_only); else empty
  std::vector<int64_t> source;     // (tokens) flat index b * seq + s in the padded batch
  std::vector<int64_t> positions;  // (tokens) s
  std::vector<int64_t> ids;        // (tokens)
  std::vector<int64_t> types;      // (tokens)
  std::vector<int64_t> head_rows;  // the rows a HeadRows selects, one per non-empty sequence
  std::vector<int64_t> head_seqs;  // and their sequences

  // head_rows / head_seqs <- what `which` selects (see HeadRows) -> their view for the encoder.
  layers::RowSelection select(const HeadRows& which) {
    head_rows.clear();
    head_seqs.clear();
    for (int64_t b = 0; b + 1 < static_cast<int64_t>(offsets.size()); ++b) {
      const int64_t o = offsets[b], n = offsets[b + 1] - o;
      if (n == 0) continue;
      int64_t row = n - 1;
      if (which.kind == HeadRows::Kind::kFirst) {
        row = 0;  // as pooling's "cls": the first row at least `skip` positions after the first
        while (row < n && source[o + row] - source[o] < which.skip) ++row;
        if (row == n) row = 0;
      }
      head_rows.push_back(o + row);
      head_seqs.push_back(b);
    }
    return {head_rows.data(), head_seqs.data(), static_cast<int64_t>(head_rows.size())};
  }

  ops::SequenceLayout layout() const {
    return ops::SequenceLayout{offsets.data(), static_cast<int64_t>(offsets.size()) - 1,
                               keys.empty() ? nullptr : keys.data()};
  }
  int64_t tokens() const { return offsets.back(); }

  // Packs positions whose mask is 1 (validates the mask first) with their position ids, made
  // from the whole padded row of `ids` as the family does (names.h PositionIds).
  // Query-only positions (query_only nonzero, mask 0) are packed after their row's real tokens.
  void pack(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq,
            PositionIds scheme, int64_t pad_token_id, const int64_t* query_only = nullptr) {
    if (mask) {
      for (int64_t i = 0; i < batch * seq; ++i)
        if (mask[i] != 0 && mask[i] != 1)
          throw std::invalid_argument("attention_mask values must be 0 or 1, found " +
                                      std::to_string(mask[i]));
    }
    offsets.assign(1, 0);
    keys.clear();
    source.clear();
    positions.clear();
    for (int64_t b = 0; b < batch; ++b) {
      int64_t non_pad = 0;  // non-pad ids in row b up to s, masked ones included
      int64_t real = 0;     // real tokens of row b packed so far
      bool after_query_only = false;
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t i = b * seq + s;
        const bool is_pad = ids && ids[i] == pad_token_id;
        non_pad += is_pad ? 0 : 1;
        const bool is_real = !mask || mask[i] != 0;
        const bool is_query_only = query_only && query_only[i] != 0;
        if (is_real && is_query_only)
          throw std::invalid_argument("query_only marks a real token (attention_mask 1) at row " +
                                      std::to_string(b) + ", position " + std::to_string(s));
        if (is_real && after_query_only)
          throw std::invalid_argument("query-only tokens must follow every real token of their "
                                      "row; row " + std::to_string(b) + " has a real token at " +
                                      std::to_string(s) + " after one");
        if (!is_real && !is_query_only) continue;
        real += is_real;
        after_query_only = after_query_only || is_query_only;
        source.push_back(b * seq + s);
        if (scheme == PositionIds::kFromZero)
          positions.push_back(s);
        else
          positions.push_back(is_pad ? pad_token_id : pad_token_id + non_pad);
      }
      offsets.push_back(static_cast<int64_t>(source.size()));
      if (query_only) keys.push_back(real);
    }
  }
  void gather(const int64_t* padded, std::vector<int64_t>& packed) const {
    packed.resize(source.size());
    for (size_t t = 0; t < source.size(); ++t) packed[t] = padded[source[t]];
  }
  // out (batch, seq, hidden) <- zeros, then the packed rows x (tokens, hidden) at their places.
  void scatter(const float* x, int64_t hidden, int64_t padded_rows, float* out) const {
    std::memset(out, 0, padded_rows * hidden * sizeof(float));
    for (size_t t = 0; t < source.size(); ++t)
      std::memcpy(out + source[t] * hidden, x + t * hidden, hidden * sizeof(float));
  }

  static PackedBatch& for_this_thread() {
    thread_local PackedBatch packed;
    return packed;
  }
};

}  // namespace

std::string BertModel::detect_prefix(const BertConfig& config, const WeightStore& store) {
  const NameTable& names = name_table(config.model_type);
  const std::string word = names.word_embeddings + ".weight";
  std::string tried;
  for (const std::string& prefix : names.prefixes) {
    if (store.contains(prefix + word)) return prefix;
    tried += (tried.empty() ? "'" : " and '") + prefix + word + "'";
  }
  throw std::invalid_argument("no " + config.model_type +
                              " embeddings in the checkpoint: looked for " + tried);
}

namespace {

layers::EncoderLayer load_layer(Loader& load, const NameTable& t, const std::string& p,
                                const BertConfig& config) {
  const int64_t h = config.hidden_size, inner = config.intermediate_size;
  const double eps = config.layer_norm_eps;
  layers::EncoderLayer layer;
  layer.attention.qkv = load.fused_qkv(p + t.query, p + t.key, p + t.value, h);
  layer.attention.output = load.linear(p + t.attention_output, h, h);
  layer.attention.num_heads = config.num_attention_heads;
  layer.attention.attention_math = load.attention_math();
  layer.attention_norm = load.layer_norm(p + t.attention_norm, h, eps);
  layer.feed_forward.intermediate = load.linear(p + t.intermediate, inner, h);
  layer.feed_forward.output = load.linear(p + t.output, h, inner);
  layer.feed_forward.activation = kernels::activation_from_name(config.hidden_act);
  layer.output_norm = load.layer_norm(p + t.output_norm, h, eps);
  layer.pre_layer_norm = t.pre_layer_norm;
  return layer;
}

}  // namespace

BertModel::BertModel(const BertConfig& config, const WeightStore& store,
                     const std::string& prefix, ops::Precision precision)
    : config_(config), names_(&name_table(config.model_type)) {
  config_.validate();
  const NameTable& t = *names_;
  const int64_t h = config.hidden_size, e = config.embedding_dim();
  const int64_t num_layers = config.num_hidden_layers;
  const double eps = config.layer_norm_eps;
  Loader load(store, prefix, precision);

  // embeddings (embedding_size wide) -> projection to hidden_size where the family has one
  embeddings_.word_embeddings = load.get(t.word_embeddings + ".weight", {config.vocab_size, e});
  embeddings_.position_embeddings =
      load.get(t.position_embeddings + ".weight", {config.max_position_embeddings, e});
  if (!t.token_type_embeddings.empty())
    embeddings_.token_type_embeddings =
        load.get(t.token_type_embeddings + ".weight", {config.type_vocab_size, e});
  if (!t.embedding_norm.empty()) embeddings_.layer_norm = load.layer_norm(t.embedding_norm, e, eps);
  if (!t.embedding_projection.empty() && (t.projection_always || e != h))
    projection_ = load.linear(t.embedding_projection, h, e);
  else if (e != h)
    throw std::invalid_argument("model_type '" + t.model_type + "' has no embedding projection: "
                                "embedding_size (" + std::to_string(e) +
                                ") must equal hidden_size (" + std::to_string(h) + ")");

  // One weight set per layer, or ALBERT's num_hidden_groups sets shared across the depth.
  const int64_t sets = t.grouped_layers ? config.num_hidden_groups : num_layers;
  std::vector<std::shared_ptr<const layers::EncoderLayer>> weight_sets;
  for (int64_t g = 0; g < sets; ++g)
    weight_sets.push_back(
        std::make_shared<layers::EncoderLayer>(load_layer(load, t, t.layer_prefix(g), config)));
  for (int64_t i = 0; i < num_layers; ++i) {
    // transformers' group of layer i: int(i / (num_hidden_layers / num_hidden_groups))
    const int64_t g = t.grouped_layers
                          ? static_cast<int64_t>(i / (static_cast<double>(num_layers) / sets))
                          : i;
    encoder_.layers.push_back(weight_sets[g]);
  }
  if (!t.final_norm.empty()) encoder_.final_norm = load.layer_norm(t.final_norm, h, eps);
  if (!t.pooler.empty() && load.has(t.pooler + ".weight"))
    pooler_ = layers::Pooler{load.linear(t.pooler, h, h)};
  load.check_all_taken(t);
}

int64_t BertModel::max_sequence_length() const {
  const int64_t first = names_->positions == PositionIds::kAfterPadding
                            ? config_.pad_token_id + 1 : 0;
  return std::max<int64_t>(0, config_.max_position_embeddings - first);
}

int64_t BertModel::distinct_layers() const {
  std::set<const layers::EncoderLayer*> distinct;
  for (const auto& layer : encoder_.layers) distinct.insert(layer.get());
  return static_cast<int64_t>(distinct.size());
}

void BertModel::check_batch(int64_t batch, int64_t seq) const {
  if (batch < 0 || seq < 0) throw std::invalid_argument("negative batch or sequence size");
  if (seq > max_sequence_length()) {
    const std::string max_pos = std::to_string(config_.max_position_embeddings);
    throw std::invalid_argument(
        "sequence length " + std::to_string(seq) + " exceeds " +
        (names_->positions == PositionIds::kAfterPadding
             ? "the " + std::to_string(max_sequence_length()) +
                   " positions left after pad_token_id (max_position_embeddings " + max_pos +
                   " less pad_token_id + 1, where RoBERTa-style positions start)"
             : "max_position_embeddings (" + max_pos + ")"));
  }
}

void PackedRows::first_rows(int64_t hidden, float* first) const {
  for (int64_t b = 0; b < batch; ++b) {  // first (batch, hidden)
    if (layout.offsets[b + 1] > layout.offsets[b])
      std::memcpy(first + b * hidden, x + layout.offsets[b] * hidden, hidden * sizeof(float));
    else
      std::memset(first + b * hidden, 0, hidden * sizeof(float));
  }
}

void BertModel::forward_packed(const BertInputs& in, const std::vector<float*>& hidden_states,
                               const std::function<void(const PackedRows&)>& head,
                               HeadRows head_rows) const {
  check_batch(in.batch, in.seq);
  const int64_t h = config_.hidden_size, padded_rows = in.batch * in.seq;
  if (!hidden_states.empty() &&
      static_cast<int64_t>(hidden_states.size()) != config_.num_hidden_layers + 1)
    throw std::invalid_argument("hidden_states needs num_hidden_layers + 1 buffers");

  PackedBatch& packed = PackedBatch::for_this_thread();
  packed.pack(in.input_ids, in.attention_mask, in.batch, in.seq, names_->positions,
              config_.pad_token_id, in.query_only);
  packed.gather(in.input_ids, packed.ids);
  if (in.token_type_ids) packed.gather(in.token_type_ids, packed.types);
  const int64_t n = packed.tokens();
  const ops::SequenceLayout layout = packed.layout();

  layers::Workspace& ws = layers::Workspace::for_this_thread();
  float* x = ws.hidden.reserve(n * h);  // (tokens, hidden)
  // embedded (tokens, embedding_size) -> projection -> x (tokens, hidden), or straight into x
  float* embedded = projection_ ? ws.embedded.reserve(n * config_.embedding_dim()) : x;
  embeddings_.forward(packed.ids.data(), packed.positions.data(),
                      in.token_type_ids ? packed.types.data() : nullptr, n, embedded);
  if (projection_) (*projection_)(embedded, n, x);
  if (!hidden_states.empty()) packed.scatter(x, h, padded_rows, hidden_states[0]);
  if (!hidden_states.empty()) {
    encoder_.forward(x, layout, ws, [&](int64_t i, const float* y) {
      packed.scatter(y, h, padded_rows, hidden_states[i + 1]);
    });
  } else if (head_rows.kind != HeadRows::Kind::kAll) {
    const layers::RowSelection selected = packed.select(head_rows);
    encoder_.forward(x, layout, ws, {}, &selected);
  } else {
    encoder_.forward(x, layout, ws);
  }
  head(PackedRows{x, layout, packed.source.data(), in.batch, in.seq});
}

void BertModel::pool_first(const float* first, int64_t batch, float* out) const {
  if (!pooler_) throw std::invalid_argument("this checkpoint has no pooler weights");
  pooler_->forward(first, batch, out);
}

void BertModel::forward(const BertInputs& in, const BertOutputs& out) const {
  const int64_t h = config_.hidden_size;
  // Without the last hidden state the pooler and first_token read the first rows alone.
  const HeadRows head_rows{out.last_hidden_state ? HeadRows::Kind::kAll : HeadRows::Kind::kFirst};
  forward_packed(in, out.hidden_states, [&](const PackedRows& rows) {
    if (out.last_hidden_state)
      PackedBatch::for_this_thread().scatter(rows.x, h, in.batch * in.seq, out.last_hidden_state);
    const bool pool = pooler_ && out.pooler_output;
    if (pool || out.first_token) {
      // Each sequence's first real token; an empty sequence gives zeros (and tanh(bias) pooled).
      float* first = out.first_token ? out.first_token
                                     : layers::Workspace::for_this_thread().pooled.reserve(in.batch * h);
      rows.first_rows(h, first);
      if (pool) pooler_->forward(first, in.batch, out.pooler_output);
    }
  }, head_rows);
}

void BertModel::embed(const int64_t* input_ids, const int64_t* token_type_ids, int64_t batch,
                      int64_t seq, float* out) const {
  check_batch(batch, seq);
  PackedBatch& packed = PackedBatch::for_this_thread();
  packed.pack(input_ids, nullptr, batch, seq, names_->positions, config_.pad_token_id);
  embeddings_.forward(input_ids, packed.positions.data(), token_type_ids, batch * seq, out);
}

void BertModel::encode(const float* hidden, const int64_t* attention_mask, int64_t batch,
                       int64_t seq, float* out) const {
  if (batch < 0 || seq < 0) throw std::invalid_argument("negative batch or sequence size");
  const int64_t h = config_.hidden_size;
  PackedBatch& packed = PackedBatch::for_this_thread();
  packed.pack(nullptr, attention_mask, batch, seq, PositionIds::kFromZero, 0);
  const int64_t n = packed.tokens();
  layers::Workspace& ws = layers::Workspace::for_this_thread();
  float* x = ws.hidden.reserve(n * h);
  for (int64_t t = 0; t < n; ++t)
    std::memcpy(x + t * h, hidden + packed.source[t] * h, h * sizeof(float));
  encoder_.forward(x, packed.layout(), ws);
  packed.scatter(x, h, batch * seq, out);
}

}  // namespace pybert::model
