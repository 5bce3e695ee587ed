// Heads: LinearHead on any features, the BertFor* models, and top-k / argmax over scores.
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "bindings/common.h"
#include "layers/heads.h"
#include "model/heads.h"
#include "parallel.h"

namespace pybert::bindings {
namespace {

using model::BertConfig;
using model::WeightStore;

// An owned, aligned copy of a float array, as a weight Tensor.
Tensor owned_copy(const FloatArray& a) {
  std::shared_ptr<float> data = make_aligned_floats(a.size());
  std::memcpy(data.get(), a.data(), a.size() * sizeof(float));
  return Tensor{data.get(), Shape(a.shape(), a.shape() + a.ndim()), data};
}

// x (..., cols) -> the leading shape (...) and the number of rows prod(...).
std::vector<py::ssize_t> leading_shape(const py::array& x, py::ssize_t cols, const char* what,
                                       const char* cols_name, py::ssize_t* rows) {
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) != cols)
    throw py::value_error(std::string(what) + " has " +
                          (x.ndim() < 1 ? std::string("no feature axis")
                                        : std::to_string(x.shape(x.ndim() - 1)) + " features") +
                          " on its last axis, expected " + cols_name + "=" + std::to_string(cols));
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim() - 1);
  *rows = 1;
  for (py::ssize_t d : shape) *rows *= d;
  return shape;
}

std::vector<py::ssize_t> with_last(std::vector<py::ssize_t> shape, py::ssize_t last) {
  shape.push_back(last);
  return shape;
}

template <typename Model>
using CoreTask = Held<Model>;  // a BertFor* model and its threads

// Registers the parts every BertFor* binding shares: the constructor (config, store, *, option,
// prefix=None, num_threads=0, precision="fp32") where `option` is the Model's fourth argument,
// num_threads, forward and the body's data pointers. `out_shape(model, batch, seq)` is the
// shape of the scores forward returns.
template <typename Model, typename Option, typename OptionArg, typename OutShape>
py::class_<CoreTask<Model>> register_task(py::module_& m, const char* name, const char* doc,
                                          OptionArg option_arg, OutShape out_shape) {
  using Core = CoreTask<Model>;
  py::class_<Core> cls(m, name, doc);
  cls.def(py::init([](const BertConfig& config, const WeightStore& store, Option option,
                      std::optional<std::string> prefix, int num_threads,
                      const std::string& precision) {
            const ops::Precision p = ops::precision_from_name(precision);
            const std::string pre =
                prefix ? *prefix : model::BertModel::detect_prefix(config, store);
            Core core{std::make_shared<Model>(config, store, pre, option, p), num_threads};
            store.drop_resident_pages();  // the packed copies replace the pages they came from
            return core;
          }),
          py::arg("config"), py::arg("store"), py::kw_only(), option_arg,
          py::arg("prefix") = py::none(), py::arg("num_threads") = 0,
          py::arg("precision") = "fp32")
      .def_readwrite("num_threads", &Core::num_threads)
      .def("close", [](Core& s) { s.model.reset(); },
           "Drop the model and its weights (the file mapping goes when no call is running).")
      .def_property_readonly("closed", [](const Core& s) { return !s.model; })
      .def_property_readonly(
          "max_sequence_length",
          [](const Core& s) { return s.live()->bert().max_sequence_length(); },
          "Longest sequence the body's position table covers.")
      .def_property_readonly(
          "word_embeddings_ptr",
          [](const Core& s) { return reinterpret_cast<uintptr_t>(s.live()->bert().word_embeddings().data); },
          "Address of the word-embedding matrix the body reads (to check sharing).")
      .def(
          "forward",
          [out_shape](const Core& self, IdArray ids, std::optional<IdArray> mask,
                      std::optional<IdArray> types, const std::string& scores,
                      bool output_hidden_states) {
            const model::BertInputs in = bert_inputs(ids, mask, types);
            const std::shared_ptr<const Model> held = self.live();
            const Model& model = *held;
            const ops::Scores kind = ops::scores_from_name(scores);
            FloatArray out(out_shape(model, in.batch, in.seq));
            HiddenStates hidden(output_hidden_states, model.bert().config(), in.batch, in.seq);
            float* o = out.mutable_data();
            compute(self.num_threads, [&] { model.forward(in, o, kind, hidden.buffers); });
            return py::make_tuple(out, hidden.arrays);
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none(),
          py::arg("token_type_ids") = py::none(), py::kw_only(), py::arg("scores") = "logits",
          py::arg("output_hidden_states") = false,
          "input_ids (batch, seq) -> (scores, hidden_states or None); scores is 'logits', "
          "'softmax' or 'sigmoid'.");
  return cls;
}

}  // namespace

void register_heads(py::module_& m) {
  using CoreHead = Held<layers::LinearHead>;
  py::class_<CoreHead>(m, "LinearHead",
                                 "y = x W^T + b over the last axis, with the softmax or sigmoid "
                                 "of each row computed in the same op.\n\n"
                                 ">>> head = pybert._core.LinearHead(w, b)  # w (out, in)")
      .def(py::init([](FloatArray weight, std::optional<FloatArray> bias, int num_threads) {
             require_ndim(weight, 2, "weight");
             if (bias) require_ndim(*bias, 1, "bias");
             return CoreHead{std::make_shared<layers::LinearHead>(layers::LinearHead{ops::Linear(
                                 owned_copy(weight), bias ? owned_copy(*bias) : Tensor{})}),
                             num_threads};
           }),
           py::arg("weight"), py::arg("bias") = py::none(), py::kw_only(),
           py::arg("num_threads") = 0,
           "weight (out_features, in_features) as in nn.Linear; bias (out_features) or None. "
           "Both are copied. num_threads: threads a call runs with (0: the process default).")
      .def_readwrite("num_threads", &CoreHead::num_threads)
      .def("close", [](CoreHead& s) { s.model.reset(); }, "Drop the weights.")
      .def_property_readonly("closed", [](const CoreHead& s) { return !s.model; })
      .def_property_readonly("in_features",
                             [](const CoreHead& h) { return h.live()->linear.in_features(); })
      .def_property_readonly("out_features",
                             [](const CoreHead& h) { return h.live()->linear.out_features(); })
      .def(
          "forward",
          [](const CoreHead& self, FloatArray x, const std::string& scores) {
            const std::shared_ptr<const layers::LinearHead> held = self.live();
            const layers::LinearHead& head = *held;
            const ops::Scores kind = ops::scores_from_name(scores);
            py::ssize_t rows = 0;
            auto lead = leading_shape(x, head.linear.in_features(), "x", "in_features", &rows);
            FloatArray y(with_last(lead, head.linear.out_features()));
            float* out = y.mutable_data();
            compute(self.num_threads, [&] { head.forward(x.data(), rows, out, kind); });
            return y;
          },
          py::arg("x"), py::kw_only(), py::arg("scores") = "logits",
          "x (..., in_features) -> (..., out_features) logits, 'softmax' or 'sigmoid'.")
      .def(
          "predict",
          [](const CoreHead& self, FloatArray x) {
            const std::shared_ptr<const layers::LinearHead> held = self.live();
            const layers::LinearHead& head = *held;
            py::ssize_t rows = 0;
            auto lead = leading_shape(x, head.linear.in_features(), "x", "in_features", &rows);
            const int64_t cols = head.linear.out_features();
            py::array_t<int64_t> index(lead);
            int64_t* idx = index.mutable_data();
            compute(self.num_threads, [&] {
              std::vector<float> logits(rows * cols);  // (rows, out_features)
              head.forward(x.data(), rows, logits.data(), ops::Scores::kLogits);
              ops::argmax_rows(logits.data(), rows, cols, idx);
            });
            return index;
          },
          py::arg("x"), "x (..., in_features) -> (...) int64: the index of the largest logit.");

  m.def(
      "top_k",
      [](FloatArray scores, int64_t k, int num_threads) {
        if (scores.ndim() < 1) throw py::value_error("scores must have at least 1 dimension");
        const py::ssize_t cols = scores.shape(scores.ndim() - 1);
        py::ssize_t rows = 0;
        auto lead = leading_shape(scores, cols, "scores", "columns", &rows);
        py::array_t<int64_t> index(with_last(lead, k));
        FloatArray value(with_last(lead, k));
        if (k < 1 || k > cols)
          throw py::value_error("k must be between 1 and the last axis (" + std::to_string(cols) +
                                "), got " + std::to_string(k));
        int64_t* idx = index.mutable_data();
        float* val = value.mutable_data();
        compute(num_threads, [&] { ops::top_k_rows(scores.data(), rows, cols, k, idx, val); });
        return py::make_tuple(index, value);
      },
      py::arg("scores"), py::arg("k"), py::kw_only(), py::arg("num_threads") = 0,
      "scores (..., n) -> (indices (..., k) int64, values (..., k)): the k largest along the "
      "last axis, descending.");

  using model::BertForMaskedLM;
  using model::BertForSequenceClassification;
  using model::BertForTokenClassification;

  register_task<BertForSequenceClassification, int64_t>(
      m, "BertForSequenceClassification", "BERT + classifier on the pooled first token.",
      py::arg("num_labels"),
      [](const BertForSequenceClassification& model, py::ssize_t batch, py::ssize_t) {
        return std::vector<py::ssize_t>{batch, static_cast<py::ssize_t>(model.num_labels())};
      });

  register_task<BertForTokenClassification, int64_t>(
      m, "BertForTokenClassification", "BERT + classifier on every token.", py::arg("num_labels"),
      [](const BertForTokenClassification& model, py::ssize_t batch, py::ssize_t seq) {
        return std::vector<py::ssize_t>{batch, seq, static_cast<py::ssize_t>(model.num_labels())};
      });

  using CoreMLM = CoreTask<BertForMaskedLM>;
  register_task<BertForMaskedLM, bool>(
      m, "BertForMaskedLM", "BERT + the masked-LM head, decoder tied to the word embeddings.",
      py::arg("tie_word_embeddings") = true,
      [](const BertForMaskedLM& model, py::ssize_t batch, py::ssize_t seq) {
        return std::vector<py::ssize_t>{batch, seq,
                                        static_cast<py::ssize_t>(model.bert().config().vocab_size)};
      })
      .def_property_readonly(
          "decoder_weight_ptr",
          [](const CoreMLM& s) { return reinterpret_cast<uintptr_t>(s.live()->decoder_weight().data); },
          "Address of the decoder weight (equal to word_embeddings_ptr when tied).")
      .def(
          "forward_at",
          [](const CoreMLM& self, IdArray ids, std::optional<IdArray> mask,
             std::optional<IdArray> types, IdArray positions, const std::string& scores) {
            const model::BertInputs in = bert_inputs(ids, mask, types);
            require_ndim(positions, 1, "positions");
            const ops::Scores kind = ops::scores_from_name(scores);
            const std::shared_ptr<const BertForMaskedLM> held = self.live();
            const BertForMaskedLM& model = *held;
            FloatArray out({positions.shape(0),
                            static_cast<py::ssize_t>(model.bert().config().vocab_size)});
            float* o = out.mutable_data();
            compute(self.num_threads,
                    [&] { model.forward_at(in, positions.data(), positions.shape(0), o, kind); });
            return out;
          },
          py::arg("input_ids"), py::arg("attention_mask"), py::arg("token_type_ids"),
          py::arg("positions"), py::kw_only(), py::arg("scores") = "softmax",
          "The head only at positions (m) flat b * seq + s -> scores (m, vocab_size).");
}

}  // namespace pybert::bindings
