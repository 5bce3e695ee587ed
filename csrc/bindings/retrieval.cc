// Retrieval models: SPLADE (sparse vectors over the vocabulary), multi-vector (a vector per
// token), and MaxSim scoring of multi-vector embeddings.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "model/heads.h"
#include "ops/maxsim.h"
#include "ops/sparse.h"
#include "ops/token_pooling.h"

namespace pybert::bindings {
namespace {

using model::BertConfig;
using model::WeightStore;

// sentence-transformers' SpladePooling activation_function -> the activation of the logits:
// "relu" means log(1 + relu(x)), "log1p_relu" one more log1p.
ops::Activation splade_activation(const std::string& name) {
  if (name == "relu") return ops::Activation::kLog1pRelu;
  if (name == "log1p_relu") return ops::Activation::kLog1pLog1pRelu;
  throw py::value_error("unknown SPLADE activation_function '" + name +
                        "'; expected one of: relu, log1p_relu");
}

ops::RowPool splade_pooling(const std::string& name) {
  if (name == "max") return ops::RowPool::kMax;
  if (name == "sum") return ops::RowPool::kSum;
  throw py::value_error("unknown SPLADE pooling_strategy '" + name +
                        "'; expected one of: max, sum");
}

// Dense activations sentence-transformers' multi-vector checkpoints use, by torch class name.
ops::Activation dense_activation(const std::string& name) {
  if (name == "Identity") return ops::Activation::kNone;
  if (name == "Tanh") return ops::Activation::kTanh;
  if (name == "ReLU") return ops::Activation::kRelu;
  if (name == "GELU") return ops::Activation::kGeluErf;
  throw py::value_error("unsupported Dense activation_function '" + name +
                        "'; expected one of: Identity, Tanh, ReLU, GELU");
}

std::string prefix_or_detected(const std::optional<std::string>& prefix, const BertConfig& config,
                               const WeightStore& store) {
  return prefix ? *prefix : model::BertModel::detect_prefix(config, store);
}

// pooled (batch, vocab) -> CSR (indptr (batch + 1) int64, indices int32, values float32) of each
// row's nonzeros, at most max_active_dims of them (the largest) when it is > 0.
py::tuple csr_rows(const std::vector<float>& pooled, int64_t batch, int64_t vocab,
                   int64_t max_active_dims, int num_threads) {
  py::array_t<int64_t> indptr(batch + 1);
  int64_t* ptr = indptr.mutable_data();
  compute(num_threads, [&] {
    ptr[0] = 0;
    ops::sparse_counts(pooled.data(), batch, vocab, max_active_dims, ptr + 1);
    for (int64_t r = 0; r < batch; ++r) ptr[r + 1] += ptr[r];
  });
  py::array_t<int32_t> indices(ptr[batch]);
  FloatArray values(ptr[batch]);
  int32_t* idx = indices.mutable_data();
  float* val = values.mutable_data();
  compute(num_threads, [&] {
    ops::sparse_fill(pooled.data(), batch, vocab, ptr, idx, val);
  });
  return py::make_tuple(indptr, indices, values);
}

void check_max_active_dims(int64_t max_active_dims) {
  if (max_active_dims < 0)
    throw py::value_error("max_active_dims must be positive (or 0 for no limit), got " +
                          std::to_string(max_active_dims));
}

// A masked-LM with its decoder packed for pooling: its own Python type, apart from
// BertForMaskedLM's (the same held model type).
struct CoreSplade : Held<model::BertForMaskedLM> {};

// offsets (n_docs + 1) of documents over `rows` rows: from 0 to rows, never decreasing.
void check_offsets(const IdArray& offsets, py::ssize_t rows) {
  require_ndim(offsets, 1, "offsets");
  if (offsets.shape(0) < 1) throw py::value_error("offsets needs at least one entry (0)");
  const int64_t* off = offsets.data();
  const py::ssize_t n_docs = offsets.shape(0) - 1;
  if (off[0] != 0 || off[n_docs] != rows)
    throw py::value_error("offsets must run from 0 to the number of document rows");
  for (py::ssize_t d = 0; d < n_docs; ++d)
    if (off[d + 1] < off[d]) throw py::value_error("offsets must not decrease");
}

}  // namespace

void register_retrieval(py::module_& m) {
  using model::BertForMaskedLM;
  py::class_<CoreSplade>(m, "SpladeModel",
                         "BertForMaskedLM whose logits are pooled into one sparse vector per "
                         "sequence in the decoder's epilogue (SPLADE).")
      .def(py::init([](const BertConfig& config, const WeightStore& store,
                       bool tie_word_embeddings, std::optional<std::string> prefix,
                       int num_threads, const std::string& precision) {
             const ops::Precision p = ops::precision_from_name(precision);
             CoreSplade core{{std::make_shared<BertForMaskedLM>(
                                  config, store, prefix_or_detected(prefix, config, store),
                                  tie_word_embeddings, p, /*packed_decoder=*/true),
                              num_threads}};
             store.drop_resident_pages();
             return core;
           }),
           py::arg("config"), py::arg("store"), py::kw_only(),
           py::arg("tie_word_embeddings") = true, py::arg("prefix") = py::none(),
           py::arg("num_threads") = 0, py::arg("precision") = "fp32")
      .def_readwrite("num_threads", &CoreSplade::num_threads)
      .def("close", [](CoreSplade& s) { s.model.reset(); }, "Drop the model and its weights.")
      .def_property_readonly("closed", [](const CoreSplade& s) { return !s.model; })
      .def(
          "encode",
          [](const CoreSplade& self, IdArray ids, std::optional<IdArray> mask,
             std::optional<IdArray> types, const std::string& pooling_strategy,
             const std::string& activation_function, int64_t max_active_dims) {
            const model::BertInputs in = bert_inputs(ids, mask, types);
            const ops::Activation act = splade_activation(activation_function);
            const ops::RowPool pool = splade_pooling(pooling_strategy);
            check_max_active_dims(max_active_dims);
            const std::shared_ptr<const BertForMaskedLM> held = self.live();
            const int64_t vocab = held->bert().config().vocab_size;
            std::vector<float> pooled(in.batch * vocab);  // (batch, vocab)
            compute(self.num_threads,
                    [&] { held->forward_pooled(in, pooled.data(), act, pool); });
            return csr_rows(pooled, in.batch, vocab, max_active_dims, self.num_threads);
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none(),
          py::arg("token_type_ids") = py::none(), py::kw_only(),
          py::arg("pooling_strategy") = "max", py::arg("activation_function") = "relu",
          py::arg("max_active_dims") = 0,
          "input_ids (batch, seq) -> CSR (indptr (batch + 1) int64, indices int32, values "
          "float32) of the (batch, vocab_size) SPLADE vectors: log(1 + relu(logits)) (one more "
          "log1p for 'log1p_relu'), max or sum over each sequence's real tokens; with "
          "max_active_dims > 0 only that many largest entries a row.");

  struct SparseAutoEncoder {
    ops::Linear encoder;  // (hidden, in) + latent_bias
    Tensor pre_bias;      // (in)
    bool normalize;
  };
  using CoreSae = Held<SparseAutoEncoder>;
  py::class_<CoreSae>(m, "SparseAutoEncoder",
                      "sentence-transformers' SparseAutoEncoder (CSR) on sentence embeddings.")
      .def(py::init([](FloatArray encoder_weight, FloatArray latent_bias, FloatArray pre_bias,
                       bool normalize, int num_threads) {
             require_ndim(encoder_weight, 2, "encoder_weight");
             require_ndim(latent_bias, 1, "latent_bias");
             require_ndim(pre_bias, 1, "pre_bias");
             if (latent_bias.shape(0) != encoder_weight.shape(0) ||
                 pre_bias.shape(0) != encoder_weight.shape(1))
               throw py::value_error("latent_bias must have encoder_weight's rows (" +
                                     std::to_string(encoder_weight.shape(0)) +
                                     ") and pre_bias its columns (" +
                                     std::to_string(encoder_weight.shape(1)) + ")");
             return CoreSae{std::make_shared<SparseAutoEncoder>(SparseAutoEncoder{
                                ops::Linear(owned_copy(encoder_weight), owned_copy(latent_bias)),
                                owned_copy(pre_bias), normalize}),
                            num_threads};
           }),
           py::arg("encoder_weight"), py::arg("latent_bias"), py::arg("pre_bias"), py::kw_only(),
           py::arg("normalize") = false, py::arg("num_threads") = 0,
           "encoder_weight (hidden, in), latent_bias (hidden), pre_bias (in); all copied.")
      .def_readwrite("num_threads", &CoreSae::num_threads)
      .def("close", [](CoreSae& s) { s.model.reset(); }, "Drop the weights.")
      .def_property_readonly("closed", [](const CoreSae& s) { return !s.model; })
      .def_property_readonly(
          "dim", [](const CoreSae& s) { return s.live()->encoder.out_features(); })
      .def(
          "encode",
          [](const CoreSae& self, FloatArray x, int64_t k) {
            const std::shared_ptr<const SparseAutoEncoder> held = self.live();
            const int64_t in = held->encoder.in_features(), hidden = held->encoder.out_features();
            require_ndim(x, 2, "x");
            if (x.shape(1) != in)
              throw py::value_error("x has " + std::to_string(x.shape(1)) +
                                    " features, the encoder expects " + std::to_string(in));
            const int64_t n = x.shape(0);
            std::vector<float> scratch(n * in);    // (n, in)
            std::vector<float> latents(n * hidden);  // (n, hidden)
            compute(self.num_threads, [&] {
              ops::sparse_autoencoder(x.data(), n, held->pre_bias.data, held->encoder,
                                      held->normalize, k, scratch.data(), latents.data());
            });
            return csr_rows(latents, n, hidden, 0, self.num_threads);
          },
          py::arg("x"), py::arg("k"),
          "x (n, in) sentence embeddings -> CSR (indptr, indices int32, values float32) of the "
          "(n, hidden) relu'd k largest latents of each row.");

  using model::BertMultiVector;
  using CoreMultiVector = Held<BertMultiVector>;
  py::class_<CoreMultiVector>(m, "MultiVectorModel",
                              "BERT + a Dense projection and L2 normalization of every kept "
                              "token (multi-vector / ColBERT-style).")
      .def(py::init([](const BertConfig& config, const WeightStore& store, FloatArray dense_weight,
                       std::optional<FloatArray> dense_bias, const std::string& activation,
                       bool normalize, std::optional<std::string> prefix, int num_threads,
                       const std::string& precision) {
             require_ndim(dense_weight, 2, "dense_weight");
             if (dense_bias) {
               require_ndim(*dense_bias, 1, "dense_bias");
               if (dense_bias->shape(0) != dense_weight.shape(0))
                 throw py::value_error("dense_bias must have dense_weight's out_features (" +
                                       std::to_string(dense_weight.shape(0)) + ") entries");
             }
             const ops::Precision p = ops::precision_from_name(precision);
             CoreMultiVector core{
                 std::make_shared<BertMultiVector>(
                     config, store, prefix_or_detected(prefix, config, store),
                     owned_copy(dense_weight), dense_bias ? owned_copy(*dense_bias) : Tensor{},
                     dense_activation(activation), normalize, p),
                 num_threads};
             store.drop_resident_pages();
             return core;
           }),
           py::arg("config"), py::arg("store"), py::arg("dense_weight"),
           py::arg("dense_bias") = py::none(), py::kw_only(), py::arg("activation") = "Identity",
           py::arg("normalize") = true, py::arg("prefix") = py::none(), py::arg("num_threads") = 0,
           py::arg("precision") = "fp32")
      .def_readwrite("num_threads", &CoreMultiVector::num_threads)
      .def("close", [](CoreMultiVector& s) { s.model.reset(); }, "Drop the model and its weights.")
      .def_property_readonly("closed", [](const CoreMultiVector& s) { return !s.model; })
      .def_property_readonly("dim", [](const CoreMultiVector& s) { return s.live()->dim(); })
      .def(
          "encode",
          [](const CoreMultiVector& self, IdArray ids, std::optional<IdArray> mask,
             std::optional<IdArray> types, IdArray keep, std::optional<IdArray> query_only,
             int64_t truncate_dim, bool normalize_embeddings) {
            model::BertInputs in = bert_inputs(ids, mask, types);
            check_same_shape(keep, ids, "keep");
            if (query_only) {
              check_same_shape(*query_only, ids, "query_only");
              in.query_only = query_only->data();
            }
            if (truncate_dim < 0)
              throw py::value_error("truncate_dim must be positive (or 0 for none), got " +
                                    std::to_string(truncate_dim));
            const int64_t* k = keep.data();
            py::ssize_t kept = 0;
            for (py::ssize_t i = 0; i < keep.size(); ++i) kept += k[i] != 0;
            const std::shared_ptr<const BertMultiVector> held = self.live();
            const int64_t dim = held->dim();
            const int64_t width = truncate_dim > 0 ? std::min(truncate_dim, dim) : dim;
            FloatArray out({kept, static_cast<py::ssize_t>(width)});
            float* o = out.mutable_data();
            // A truncate_dim of dim or more keeps every feature, renormalized (as slicing does).
            const bool normalize = normalize_embeddings || truncate_dim > 0;
            compute(self.num_threads, [&] { held->forward(in, k, o, width, normalize); });
            return out;
          },
          py::arg("input_ids"), py::arg("attention_mask"), py::arg("token_type_ids"),
          py::arg("keep"), py::arg("query_only") = py::none(), py::kw_only(),
          py::arg("truncate_dim") = 0, py::arg("normalize_embeddings") = false,
          "input_ids, keep (batch, seq) -> (kept, dim): the vectors of the kept tokens (keep "
          "nonzero; real or query-only tokens) in (sequence, position) order; with "
          "truncate_dim > 0 their first truncate_dim features, L2-normalized (so are all with "
          "normalize_embeddings). query_only "
          "(batch, seq): tokens with mask 0 that attend to their row's real tokens, unattended, "
          "after every real token of the row (ColBERT's query expansion).");

  m.def(
      "token_presence",
      [](IdArray ids, IdArray mask, FloatArray weight, int64_t max_active_dims, int num_threads) {
        require_ndim(ids, 2, "input_ids");
        check_same_shape(mask, ids, "attention_mask");
        require_ndim(weight, 1, "weight");
        check_max_active_dims(max_active_dims);
        const int64_t n = ids.shape(0), seq = ids.shape(1), vocab = weight.shape(0);
        std::vector<float> dense(n * vocab);  // (n, vocab)
        compute(num_threads, [&] {
          ops::token_presence(ids.data(), mask.data(), n, seq, weight.data(), vocab,
                              dense.data());
        });
        return csr_rows(dense, n, vocab, max_active_dims, num_threads);
      },
      py::arg("input_ids"), py::arg("attention_mask"), py::arg("weight"), py::kw_only(),
      py::arg("max_active_dims") = 0, py::arg("num_threads") = 0,
      "sentence-transformers' SparseStaticEmbedding: input_ids, attention_mask (n, seq), weight "
      "(vocab) -> CSR (indptr, indices int32, values float32) of the (n, vocab) rows holding "
      "weight[t] at each token t present under mask 1; with max_active_dims > 0 only that many "
      "largest entries a row.");

  m.def(
      "sparse_similarity",
      [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> a_indptr,
         py::array_t<int32_t, py::array::c_style | py::array::forcecast> a_indices,
         FloatArray a_values,
         py::array_t<int64_t, py::array::c_style | py::array::forcecast> b_indptr,
         py::array_t<int32_t, py::array::c_style | py::array::forcecast> b_indices,
         FloatArray b_values, int64_t cols, const std::string& similarity, int num_threads) {
        const ops::Similarity sim = ops::similarity_from_name(similarity);
        auto rows = [](const py::array& indptr, const py::array& indices, const py::array& values,
                       int64_t cols, const char* what) {
          require_ndim(indptr, 1, what);
          require_ndim(indices, 1, what);
          require_ndim(values, 1, what);
          if (indptr.shape(0) < 1 || indices.shape(0) != values.shape(0))
            throw py::value_error(std::string(what) + ": indptr needs at least one entry and "
                                  "indices must match values in length");
          return ops::CsrRows{nullptr, nullptr, nullptr, indptr.shape(0) - 1, cols};
        };
        ops::CsrRows a = rows(a_indptr, a_indices, a_values, cols, "a");
        ops::CsrRows b = rows(b_indptr, b_indices, b_values, cols, "b");
        a.indptr = a_indptr.data();
        a.indices = a_indices.data();
        a.values = a_values.data();
        b.indptr = b_indptr.data();
        b.indices = b_indices.data();
        b.values = b_values.data();
        if (cols < 1) throw py::value_error("cols must be positive");
        a.check(a_values.shape(0), "a");
        b.check(b_values.shape(0), "b");
        FloatArray scores({a.rows, b.rows});
        float* s = scores.mutable_data();
        compute(num_threads, [&] { ops::sparse_similarity(a, b, sim, s); });
        return scores;
      },
      py::arg("a_indptr"), py::arg("a_indices"), py::arg("a_values"), py::arg("b_indptr"),
      py::arg("b_indices"), py::arg("b_values"), py::kw_only(), py::arg("cols"),
      py::arg("similarity") = "dot", py::arg("num_threads") = 0,
      "Two sets of CSR rows over cols columns (columns ascending in each row) -> scores (a rows, "
      "b rows) by similarity: 'dot', 'cosine', 'euclidean' (-distance) or 'manhattan' "
      "(-L1 distance), as sentence-transformers computes them.");

  m.def(
      "maxsim",
      [](FloatArray query, FloatArray documents, IdArray offsets, bool length_normalize,
         int num_threads) {
        require_ndim(query, 2, "query");
        require_ndim(documents, 2, "documents");
        require_ndim(offsets, 1, "offsets");
        const py::ssize_t dim = query.shape(1);
        if (documents.shape(1) != dim)
          throw py::value_error("documents have " + std::to_string(documents.shape(1)) +
                                " features, the query " + std::to_string(dim));
        check_offsets(offsets, documents.shape(0));
        const int64_t* off = offsets.data();
        const py::ssize_t n_docs = offsets.shape(0) - 1;
        FloatArray scores(n_docs);
        float* s = scores.mutable_data();
        const int64_t q_tokens = query.shape(0);
        compute(num_threads, [&] {
          ops::maxsim(query.data(), q_tokens, documents.data(), off, n_docs, dim, s);
          if (length_normalize && q_tokens > 0)
            for (py::ssize_t d = 0; d < n_docs; ++d) s[d] /= static_cast<float>(q_tokens);
        });
        return scores;
      },
      py::arg("query"), py::arg("documents"), py::arg("offsets"), py::kw_only(),
      py::arg("length_normalize") = false, py::arg("num_threads") = 0,
      "query (q, dim), documents (rows, dim) with document d in rows [offsets[d], "
      "offsets[d + 1]) -> scores (n_docs,): sum over query tokens of the largest dot product "
      "with the document's tokens (-1e9 for a document without tokens); divided by the query's "
      "token count with length_normalize (MeanMaxSim).");

  m.def(
      "token_pool",
      [](FloatArray rows, IdArray offsets, int64_t protected_tokens, double pool_factor,
         int64_t max_tokens, std::optional<double> distance_threshold, bool normalize,
         int num_threads) {
        require_ndim(rows, 2, "rows");
        check_offsets(offsets, rows.shape(0));
        if (protected_tokens < 0)
          throw py::value_error("num_protected_tokens must be >= 0, got " +
                                std::to_string(protected_tokens));
        if (!std::isfinite(pool_factor) || pool_factor < 1.0)
          throw py::value_error("pool_factor must be >= 1 and finite, got " +
                                std::to_string(pool_factor));
        if (max_tokens < 0 || (max_tokens > 0 && max_tokens <= protected_tokens))
          throw py::value_error("max_tokens must exceed num_protected_tokens (or be 0: none)");
        if (distance_threshold &&
            (!std::isfinite(*distance_threshold) || *distance_threshold < 0.0))
          throw py::value_error("distance_threshold must be finite and >= 0");
        const float* x = rows.data();
        for (py::ssize_t i = 0; i < rows.size(); ++i)
          if (!std::isfinite(x[i]))
            throw py::value_error("token pooling needs finite token vectors; row " +
                                  std::to_string(i / std::max<py::ssize_t>(rows.shape(1), 1)) +
                                  " holds a NaN or an infinity");
        const ops::TokenPoolSpec spec{protected_tokens, pool_factor, max_tokens,
                                      distance_threshold.value_or(-1.0), normalize};
        const py::ssize_t n_docs = offsets.shape(0) - 1, dim = rows.shape(1);
        std::vector<float> out(static_cast<size_t>(rows.size()));
        IdArray out_offsets(n_docs + 1);
        int64_t* o = out_offsets.mutable_data();
        compute(num_threads, [&] {
          ops::token_pool(x, offsets.data(), n_docs, dim, spec, out.data(), o);
        });
        FloatArray pooled({static_cast<py::ssize_t>(o[n_docs]), dim});
        std::copy(out.begin(), out.begin() + o[n_docs] * dim, pooled.mutable_data());
        return py::make_tuple(pooled, out_offsets);
      },
      py::arg("rows"), py::arg("offsets"), py::kw_only(), py::arg("num_protected_tokens") = 1,
      py::arg("pool_factor") = 1.0, py::arg("max_tokens") = 0,
      py::arg("distance_threshold") = py::none(), py::arg("normalize") = true,
      py::arg("num_threads") = 0,
      "sentence-transformers' HierarchicalTokenPooling: rows (n, dim) with document d in rows "
      "[offsets[d], offsets[d + 1]) -> (pooled (m, dim), pooled offsets): per document its "
      "first num_protected_tokens rows, then the means of the Ward clusters of the rest "
      "(distance 1 - cosine; max_tokens, distance_threshold or pool_factor sets the cut), "
      "L2-normalized with normalize.");
}

}  // namespace pybert::bindings
