// Pooling token vectors into sentence vectors.
#include <algorithm>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "ops/pooling.h"

namespace pybert::bindings {

void register_pooling(py::module_& m) {
  m.def(
      "pool",
      [](FloatArray hidden_states, IdArray attention_mask, const std::vector<std::string>& modes,
         bool normalize, int num_threads) {
        require_ndim(hidden_states, 3, "hidden_states");
        require_ndim(attention_mask, 2, "attention_mask");
        const py::ssize_t batch = hidden_states.shape(0), seq = hidden_states.shape(1),
                          hidden = hidden_states.shape(2);
        if (attention_mask.shape(0) != batch || attention_mask.shape(1) != seq)
          throw py::value_error("attention_mask must have shape (batch, seq) = (" +
                                std::to_string(batch) + ", " + std::to_string(seq) + ")");
        std::vector<kernels::PoolMode> parsed;
        for (const std::string& name : modes) parsed.push_back(kernels::pool_mode_from_name(name));
        if (parsed.empty()) throw py::value_error("pool needs at least one mode");
        FloatArray out({batch, static_cast<py::ssize_t>(parsed.size()) * hidden});
        float* y = out.mutable_data();
        compute(num_threads, [&] {
          ops::pool(hidden_states.data(), attention_mask.data(), batch, seq, hidden, parsed,
                    normalize, y);
        });
        return out;
      },
      py::arg("hidden_states"), py::arg("attention_mask"), py::arg("modes"), py::kw_only(),
      py::arg("normalize") = false, py::arg("num_threads") = 0,
      "hidden_states (batch, seq, hidden), attention_mask (batch, seq) -> (batch, len(modes) * "
      "hidden): the modes' vectors side by side, L2-normalized when asked. Padded positions "
      "never contribute. num_threads: 0 for the process default.\n\n>>> pybert._core.pool(h, mask, ['mean'], normalize=True)");

  m.def(
      "normalize_rows",
      [](FloatArray rows, int64_t width, int num_threads) {
        require_ndim(rows, 2, "rows");
        const py::ssize_t n = rows.shape(0), dim = rows.shape(1);
        if (width < 0) throw py::value_error("width must be >= 0 (0: every column)");
        const py::ssize_t w = width > 0 ? std::min<py::ssize_t>(width, dim) : dim;
        FloatArray out({n, w});
        float* y = out.mutable_data();
        const float* x = rows.data();
        for (py::ssize_t r = 0; r < n; ++r) std::copy(x + r * dim, x + r * dim + w, y + r * w);
        compute(num_threads, [&] { ops::l2_normalize_rows(y, n, w); });
        return out;
      },
      py::arg("rows"), py::kw_only(), py::arg("width") = 0, py::arg("num_threads") = 0,
      "rows (n, dim) -> (n, width): each row's first width features (0: all), divided by their "
      "L2 norm (at least 1e-12), as torch.nn.functional.normalize of the slice.");
}

}  // namespace pybert::bindings
