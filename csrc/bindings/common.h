// Shared by the binding files: array aliases and the registration entry points.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

namespace pybert::bindings {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IdArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

void register_ops(py::module_& m);
void register_model(py::module_& m);
void register_runtime(py::module_& m);
void register_pooling(py::module_& m);

// Throws ValueError unless `a` has exactly `ndim` dimensions.
inline void require_ndim(const py::array& a, py::ssize_t ndim, const char* what) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(what) + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
}

}  // namespace pybert::bindings
