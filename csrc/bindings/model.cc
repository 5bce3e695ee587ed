// Weight store, config and BertModel.
#include <optional>
#include <vector>

#include "bindings/common.h"
#include "model/bert.h"
#include "model/weights.h"
#include "parallel.h"

namespace pybert::bindings {
namespace {

using model::BertConfig;
using model::BertModel;
using model::WeightStore;

FloatArray new_hidden(py::ssize_t batch, py::ssize_t seq, py::ssize_t hidden) {
  return FloatArray({batch, seq, hidden});
}

using CoreModel = Held<BertModel>;

}  // namespace

void register_model(py::module_& m) {
  py::class_<BertConfig>(m, "BertConfig", "The config.json fields the core reads.")
      .def(py::init<>())
      .def_readwrite("vocab_size", &BertConfig::vocab_size)
      .def_readwrite("hidden_size", &BertConfig::hidden_size)
      .def_readwrite("num_hidden_layers", &BertConfig::num_hidden_layers)
      .def_readwrite("num_attention_heads", &BertConfig::num_attention_heads)
      .def_readwrite("intermediate_size", &BertConfig::intermediate_size)
      .def_readwrite("max_position_embeddings", &BertConfig::max_position_embeddings)
      .def_readwrite("type_vocab_size", &BertConfig::type_vocab_size)
      .def_readwrite("layer_norm_eps", &BertConfig::layer_norm_eps)
      .def_readwrite("hidden_act", &BertConfig::hidden_act)
      .def_readwrite("model_type", &BertConfig::model_type)
      .def_readwrite("embedding_size", &BertConfig::embedding_size)
      .def_readwrite("pad_token_id", &BertConfig::pad_token_id)
      .def_readwrite("num_hidden_groups", &BertConfig::num_hidden_groups)
      .def("validate", &BertConfig::validate);

  py::class_<WeightStore, std::shared_ptr<WeightStore>>(m, "WeightStore",
                                                        "Checkpoint tensors by name.")
      .def_static(
          "from_safetensors",
          [](const std::string& path, uint64_t data_offset, py::list records) {
            std::vector<model::TensorRecord> recs;
            recs.reserve(records.size());
            for (py::handle item : records) {
              auto t = item.cast<py::tuple>();
              if (t.size() != 5) throw py::value_error("a record is (name, dtype, shape, begin, end)");
              recs.push_back(model::TensorRecord{t[0].cast<std::string>(), t[1].cast<std::string>(),
                                                 t[2].cast<Shape>(), t[3].cast<uint64_t>(),
                                                 t[4].cast<uint64_t>()});
            }
            py::gil_scoped_release release;
            return WeightStore::from_safetensors(path, data_offset, recs);
          },
          py::arg("path"), py::arg("data_offset"), py::arg("records"),
          "Map a safetensors file; records are (name, dtype, shape, begin, end) from its header.")
      .def_static("empty", &WeightStore::empty)
      .def(
          "add",
          [](WeightStore& self, const std::string& name, FloatArray values) {
            Shape shape(values.shape(), values.shape() + values.ndim());
            std::vector<float> copy(values.data(), values.data() + values.size());
            self.add(name, std::move(shape), std::move(copy));
          },
          py::arg("name"), py::arg("values"), "Add an fp32 tensor (copied).")
      .def("names", &WeightStore::names)
      .def("shape", &WeightStore::shape, py::arg("name"))
      .def("__contains__", &WeightStore::contains)
      .def(
          "get",
          [](const WeightStore& self, const std::string& name) {
            Tensor t = self.get(name, self.shape(name));
            std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
            FloatArray out(shape);
            std::copy(t.data, t.data + t.numel(), out.mutable_data());
            return out;
          },
          py::arg("name"), "A copy of tensor `name` as float32.");

  py::class_<CoreModel>(m, "BertModel",
                        "BERT-family encoder: embeddings -> encoder -> pooler.")
      .def(py::init([](const BertConfig& config, const WeightStore& store,
                       std::optional<std::string> prefix, int num_threads,
                       const std::string& precision) {
             const ops::Precision p = ops::precision_from_name(precision);
             const std::string pre = prefix ? *prefix : BertModel::detect_prefix(config, store);
             CoreModel core{std::make_shared<BertModel>(config, store, pre, p), num_threads};
             store.drop_resident_pages();
             return core;
           }),
           py::arg("config"), py::arg("store"), py::kw_only(), py::arg("prefix") = py::none(),
           py::arg("num_threads") = 0, py::arg("precision") = "fp32",
           "precision: 'fp32', 'bf16' or 'int8', the arithmetic of the body's Linear layers.")
      .def_property_readonly("has_pooler",
                             [](const CoreModel& s) { return s.live()->has_pooler(); })
      .def_property_readonly("max_sequence_length",
                             [](const CoreModel& s) { return s.live()->max_sequence_length(); })
      .def_property_readonly(
          "distinct_layers", [](const CoreModel& s) { return s.live()->distinct_layers(); },
          "Layer weight sets in memory (ALBERT shares one set across all layers).")
      .def("close", [](CoreModel& s) { s.model.reset(); },
           "Drop the model and its weights (the file mapping goes when no call is running).")
      .def_property_readonly("closed", [](const CoreModel& s) { return !s.model; })
      .def_readwrite("num_threads", &CoreModel::num_threads)
      .def(
          "forward",
          [](const CoreModel& self, IdArray ids, std::optional<IdArray> mask,
             std::optional<IdArray> types, bool output_hidden_states) {
            const model::BertInputs in = bert_inputs(ids, mask, types);
            const std::shared_ptr<const BertModel> held = self.live();
            const BertModel& model = *held;
            const py::ssize_t b = ids.shape(0), s = ids.shape(1),
                              h = model.config().hidden_size;
            FloatArray last = new_hidden(b, s, h);
            py::object pooled = py::none();
            model::BertOutputs out;
            out.last_hidden_state = last.mutable_data();
            if (model.has_pooler()) {
              FloatArray p({b, h});
              out.pooler_output = p.mutable_data();
              pooled = p;
            }
            HiddenStates hidden(output_hidden_states, model.config(), b, s);
            out.hidden_states = hidden.buffers;
            compute(self.num_threads, [&] { model.forward(in, out); });
            return py::make_tuple(last, pooled, hidden.arrays);
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none(),
          py::arg("token_type_ids") = py::none(), py::kw_only(),
          py::arg("output_hidden_states") = false,
          "input_ids (batch, seq) -> (last_hidden_state, pooler_output or None, hidden_states "
          "or None). Padded positions of the outputs are zeros.")
      .def(
          "embed",
          [](const CoreModel& self, IdArray ids, std::optional<IdArray> types) {
            require_ndim(ids, 2, "input_ids");
            if (types) check_same_shape(*types, ids, "token_type_ids");
            const std::shared_ptr<const BertModel> held = self.live();
            const BertModel& model = *held;
            FloatArray out =
                new_hidden(ids.shape(0), ids.shape(1), model.config().embedding_dim());
            float* o = out.mutable_data();
            compute(self.num_threads, [&] {
              model.embed(ids.data(), types ? types->data() : nullptr, ids.shape(0), ids.shape(1), o);
            });
            return out;
          },
          py::arg("input_ids"), py::arg("token_type_ids") = py::none(),
          "The embedding layer alone: (batch, seq) ids -> (batch, seq, embedding_size).")
      .def(
          "encode",
          [](const CoreModel& self, FloatArray hidden, std::optional<IdArray> mask) {
            require_ndim(hidden, 3, "hidden_states");
            const std::shared_ptr<const BertModel> held = self.live();
            const BertModel& model = *held;
            if (hidden.shape(2) != model.config().hidden_size)
              throw py::value_error("hidden_states has " + std::to_string(hidden.shape(2)) +
                                    " features, expected hidden_size=" +
                                    std::to_string(model.config().hidden_size));
            if (mask && (mask->ndim() != 2 || mask->shape(0) != hidden.shape(0) ||
                         mask->shape(1) != hidden.shape(1)))
              throw py::value_error("attention_mask must have shape (batch, seq) of hidden_states");
            FloatArray out = new_hidden(hidden.shape(0), hidden.shape(1), hidden.shape(2));
            float* o = out.mutable_data();
            compute(self.num_threads, [&] {
              model.encode(hidden.data(), mask ? mask->data() : nullptr, hidden.shape(0),
                           hidden.shape(1), o);
            });
            return out;
          },
          py::arg("hidden_states"), py::arg("attention_mask") = py::none(),
          "The encoder stack alone: (batch, seq, hidden) -> (batch, seq, hidden).");
}

}  // namespace pybert::bindings
