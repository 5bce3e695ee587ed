// Sentence embeddings in one call (SentenceEncoder) and their quantization.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "model/sentence.h"
#include "ops/quantize.h"

namespace pybert::bindings {
namespace {

using model::BertConfig;
using model::SentenceEncoder;
using model::WeightStore;
using CoreSentence = Held<SentenceEncoder>;

std::vector<kernels::PoolMode> pool_modes(const std::vector<std::string>& names) {
  std::vector<kernels::PoolMode> modes;
  for (const std::string& name : names) modes.push_back(kernels::pool_mode_from_name(name));
  return modes;
}

// The per-call options, checked.
model::SentenceOptions sentence_options(const std::optional<std::vector<std::string>>& modes,
                                        bool pooler, bool normalize_modules, bool normalize_last,
                                        int64_t prompt_length, int64_t truncate_dim) {
  model::SentenceOptions options;
  if (modes) {
    if (modes->empty()) throw py::value_error("modes must name at least one pooling mode");
    options.modes = pool_modes(*modes);
  }
  if (prompt_length < 0) throw py::value_error("prompt_length must be >= 0");
  if (truncate_dim < 0) throw py::value_error("truncate_dim must be >= 0 (0: all dimensions)");
  options.pooler = pooler;
  options.normalize_modules = normalize_modules;
  options.normalize_last = normalize_last;
  options.prompt_length = prompt_length;
  options.truncate_dim = truncate_dim;
  return options;
}

// The model of a SentenceEncoder being assembled (add_* at load time); ValueError once closed.
SentenceEncoder& assembling(CoreSentence& self) {
  if (!self.model) throw py::value_error("this model is closed; load it again to use it");
  return *self.model;
}

// (n, dim) float32 rows of x, checked.
void require_rows(const FloatArray& x, const char* what) {
  require_ndim(x, 2, what);
}

}  // namespace

void register_sentence(py::module_& m) {
  py::class_<CoreSentence>(m, "SentenceEncoder",
                           "A sentence-transformers embedding model in one call: body, pooling "
                           "on the packed real tokens, Dense / LayerNorm / Normalize modules.")
      .def(py::init([](const BertConfig& config, const WeightStore& store,
                       const std::vector<std::string>& modes, std::optional<std::string> prefix,
                       int num_threads, const std::string& precision) {
             const ops::Precision p = ops::precision_from_name(precision);
             const std::string pre =
                 prefix ? *prefix : model::BertModel::detect_prefix(config, store);
             CoreSentence core{
                 std::make_shared<SentenceEncoder>(config, store, pre, pool_modes(modes), p),
                 num_threads};
             store.drop_resident_pages();
             return core;
           }),
           py::arg("config"), py::arg("store"), py::kw_only(), py::arg("modes"),
           py::arg("prefix") = py::none(), py::arg("num_threads") = 0,
           py::arg("precision") = "fp32",
           "modes: the configured pooling modes, concatenated in order.")
      .def(
          "add_dense",
          [](CoreSentence& self, const WeightStore& store, int64_t in_features,
             int64_t out_features, bool bias, const std::string& activation, bool residual) {
            const ops::Activation act = activation == "none"
                                            ? ops::Activation::kNone
                                            : kernels::activation_from_name(activation);
            assembling(self).add_dense(store, in_features, out_features, bias, act, residual);
          },
          py::arg("store"), py::kw_only(), py::arg("in_features"), py::arg("out_features"),
          py::arg("bias") = true, py::arg("activation") = "tanh", py::arg("residual") = false,
          "A Dense module (linear.weight, linear.bias[, residual.weight] in store).")
      .def(
          "add_layer_norm",
          [](CoreSentence& self, const WeightStore& store, int64_t dimension, float eps) {
            assembling(self).add_layer_norm(store, dimension, eps);
          },
          py::arg("store"), py::kw_only(), py::arg("dimension"), py::arg("eps") = 1e-5f,
          "A LayerNorm module (norm.weight, norm.bias in store).")
      .def("add_normalize", [](CoreSentence& self) { assembling(self).add_normalize(); },
           "A Normalize module (L2, eps 1e-12).")
      .def_readwrite("num_threads", &CoreSentence::num_threads)
      .def("close", [](CoreSentence& s) { s.model.reset(); }, "Drop the model and its weights.")
      .def_property_readonly("closed", [](const CoreSentence& s) { return !s.model; })
      .def_property_readonly("has_pooler",
                             [](const CoreSentence& s) { return s.live()->bert().has_pooler(); })
      .def_property_readonly(
          "max_sequence_length",
          [](const CoreSentence& s) { return s.live()->bert().max_sequence_length(); })
      .def(
          "width",
          [](const CoreSentence& self, std::optional<std::vector<std::string>> modes, bool pooler,
             int64_t truncate_dim) {
            return self.live()->result_width(
                sentence_options(modes, pooler, true, false, 0, truncate_dim));
          },
          py::kw_only(), py::arg("modes") = py::none(), py::arg("pooler") = false,
          py::arg("truncate_dim") = 0, "The width of forward's rows for these options.")
      .def(
          "forward",
          [](const CoreSentence& self, IdArray ids, std::optional<IdArray> mask,
             std::optional<IdArray> types, std::optional<std::vector<std::string>> modes,
             bool pooler, bool normalize_modules, bool normalize_last, int64_t prompt_length,
             int64_t truncate_dim) {
            const model::BertInputs in = bert_inputs(ids, mask, types);
            const std::shared_ptr<const SentenceEncoder> held = self.live();
            const SentenceEncoder& model = *held;
            const model::SentenceOptions options = sentence_options(
                modes, pooler, normalize_modules, normalize_last, prompt_length, truncate_dim);
            FloatArray out({static_cast<py::ssize_t>(in.batch),
                            static_cast<py::ssize_t>(model.result_width(options))});
            float* o = out.mutable_data();
            compute(self.num_threads, [&] { model.forward(in, options, o); });
            return out;
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none(),
          py::arg("token_type_ids") = py::none(), py::kw_only(), py::arg("modes") = py::none(),
          py::arg("pooler") = false, py::arg("normalize_modules") = true,
          py::arg("normalize_last") = false, py::arg("prompt_length") = 0,
          py::arg("truncate_dim") = 0,
          "input_ids (batch, seq) -> (batch, width) sentence vectors, in one call: modes "
          "overrides the pooling (pooler: the body's pooler instead), normalize_modules runs the "
          "Normalize modules, truncate_dim keeps the first dimensions, normalize_last "
          "L2-normalizes the result; prompt_length leading tokens are left out of pooling.");

  m.def(
      "quantize_embeddings",
      [](FloatArray x, const std::string& precision, std::optional<FloatArray> ranges,
         int num_threads) {
        require_rows(x, "embeddings");
        const int64_t n = x.shape(0), dim = x.shape(1);
        if (precision == "binary" || precision == "ubinary") {
          const int32_t offset = precision == "binary" ? 128 : 0;
          py::array out = precision == "binary"
                              ? py::array(py::array_t<int8_t>({n, (dim + 7) / 8}))
                              : py::array(py::array_t<uint8_t>({n, (dim + 7) / 8}));
          auto* bits = static_cast<uint8_t*>(out.mutable_data());
          compute(num_threads, [&] { ops::quantize_binary(x.data(), n, dim, offset, bits); });
          return out;
        }
        if (precision != "int8" && precision != "uint8")
          throw py::value_error("precision must be 'int8', 'uint8', 'binary' or 'ubinary', got '" +
                                precision + "'");
        if (!ranges) throw py::value_error("int8 / uint8 quantization needs ranges (2, dim)");
        if (ranges->ndim() != 2 || ranges->shape(0) != 2 || ranges->shape(1) != dim)
          throw py::value_error("ranges must have shape (2, " + std::to_string(dim) +
                                "): the minimum and maximum of each dimension");
        const int32_t offset = precision == "int8" ? 128 : 0;
        py::array out = precision == "int8" ? py::array(py::array_t<int8_t>({n, dim}))
                                            : py::array(py::array_t<uint8_t>({n, dim}));
        auto* q = static_cast<uint8_t*>(out.mutable_data());
        const float* lo = ranges->data();
        compute(num_threads,
                [&] { ops::quantize_scalar(x.data(), n, dim, lo, lo + dim, offset, q); });
        return out;
      },
      py::arg("embeddings"), py::arg("precision"), py::kw_only(), py::arg("ranges") = py::none(),
      py::arg("num_threads") = 0,
      "embeddings (n, dim) float32 -> int8 / uint8 (n, dim) with ranges (2, dim), or binary "
      "(int8) / ubinary (uint8) (n, ceil(dim / 8)) bits, as sentence-transformers' "
      "quantize_embeddings.");

  m.def(
      "column_ranges",
      [](FloatArray x) {
        require_rows(x, "embeddings");
        if (x.shape(0) < 1) throw py::value_error("ranges need at least one embedding");
        const int64_t n = x.shape(0), dim = x.shape(1);
        FloatArray out({py::ssize_t{2}, static_cast<py::ssize_t>(dim)});
        float* r = out.mutable_data();
        compute(0, [&] { ops::column_ranges(x.data(), n, dim, r, r + dim); });
        return out;
      },
      py::arg("embeddings"),
      "embeddings (n, dim) -> (2, dim): each dimension's minimum and maximum.");
}

}  // namespace pybert::bindings
