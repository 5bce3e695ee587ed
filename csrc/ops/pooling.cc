#include "ops/pooling.h"

#include <algorithm>
#include <stdexcept>

#include "parallel.h"

namespace pybert::ops {

void pool(const float* hidden_states, const int64_t* mask, int64_t batch, int64_t seq,
          int64_t hidden, const std::vector<kernels::PoolMode>& modes, bool normalize,
          float* out) {
  if (batch < 0 || seq < 0 || hidden <= 0)
    throw std::invalid_argument("pool needs batch, seq >= 0 and hidden > 0");
  if (modes.empty()) throw std::invalid_argument("pool needs at least one mode");
  const int64_t n_modes = static_cast<int64_t>(modes.size());
  const int64_t width = n_modes * hidden;  // one output row
  constexpr float kNormEps = 1e-12f;       // torch.nn.functional.normalize's default
  // One sequence is seq * hidden floats of reading: split by sequences, a few per thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, seq * hidden));
  parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* x = hidden_states + b * seq * hidden;  // (seq, hidden)
      float* y = out + b * width;                         // (n_modes * hidden)
      for (int64_t m = 0; m < n_modes; ++m)
        kernels::pool(x, mask + b * seq, seq, hidden, modes[m], y + m * hidden);
      if (normalize) kernels::l2_normalize(y, width, kNormEps);
    }
  });
}

}  // namespace pybert::ops
