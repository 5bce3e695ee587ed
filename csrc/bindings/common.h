// Shared by the binding files: array aliases and the registration entry points.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/bert.h"
#include "parallel.h"

namespace pybert::bindings {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IdArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// The one door for compute: every binding that computes runs its work as compute(n, fn).
// The GIL is released and a ThreadBudget of n threads (<= 0: the process default) is held for
// the call, so the work runs on exactly that many threads, within the process's compute slots.
// Inputs are checked and outputs allocated before, with the GIL held.
template <typename Fn>
decltype(auto) compute(int num_threads, Fn&& fn) {
  py::gil_scoped_release release;
  ThreadBudget budget(num_threads);
  return fn();
}

// A core model plus the thread count its calls use. close() drops the model (and with it the
// mapped weights); a call already running holds its own reference from live() and finishes first.
template <typename Model>
struct Held {
  std::shared_ptr<Model> model;
  int num_threads = 0;  // 0: the process default

  std::shared_ptr<const Model> live() const {
    if (!model) throw py::value_error("this model is closed; load it again to use it");
    return model;
  }
};

void register_ops(py::module_& m);
void register_model(py::module_& m);
void register_heads(py::module_& m);
void register_runtime(py::module_& m);
void register_pooling(py::module_& m);
void register_sentence(py::module_& m);

// Throws ValueError unless `a` has exactly `ndim` dimensions.
inline void require_ndim(const py::array& a, py::ssize_t ndim, const char* what) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(what) + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
}

// Throws ValueError unless `a` is 2-D with the shape of input_ids.
inline void check_same_shape(const py::array& a, const py::array& ids, const char* what) {
  if (a.ndim() != 2 || a.shape(0) != ids.shape(0) || a.shape(1) != ids.shape(1))
    throw py::value_error(std::string(what) + " must have the shape of input_ids (" +
                          std::to_string(ids.shape(0)) + ", " + std::to_string(ids.shape(1)) +
                          ")");
}

// ids (batch, seq) with an optional mask and token types of the same shape, checked, as the
// core reads them. The arrays must outlive the result.
inline model::BertInputs bert_inputs(const IdArray& ids, const std::optional<IdArray>& mask,
                                     const std::optional<IdArray>& types) {
  require_ndim(ids, 2, "input_ids");
  if (mask) check_same_shape(*mask, ids, "attention_mask");
  if (types) check_same_shape(*types, ids, "token_type_ids");
  return model::BertInputs{ids.data(), mask ? mask->data() : nullptr,
                           types ? types->data() : nullptr, ids.shape(0), ids.shape(1)};
}

// What output_hidden_states asks for: num_hidden_layers + 1 new (batch, seq, hidden) arrays,
// returned as a tuple, and their buffers for the core to fill; None and no buffers otherwise.
struct HiddenStates {
  std::vector<float*> buffers;
  py::object arrays = py::none();

  HiddenStates(bool wanted, const model::BertConfig& config, py::ssize_t batch, py::ssize_t seq) {
    if (!wanted) return;
    py::tuple t(config.num_hidden_layers + 1);
    for (int64_t i = 0; i <= config.num_hidden_layers; ++i) {
      FloatArray a({batch, seq, static_cast<py::ssize_t>(config.hidden_size)});
      buffers.push_back(a.mutable_data());
      t[i] = a;
    }
    arrays = t;
  }
};

}  // namespace pybert::bindings
