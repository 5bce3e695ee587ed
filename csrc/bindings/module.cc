#include "bindings/common.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "pybert's C++ core: fp32 BERT kernels, layers and models";
  pybert::bindings::register_runtime(m);
  pybert::bindings::register_ops(m);
  pybert::bindings::register_model(m);
  pybert::bindings::register_pooling(m);
  pybert::bindings::register_heads(m);
  pybert::bindings::register_sentence(m);
}
