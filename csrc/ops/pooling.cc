#include "ops/pooling.h"

#include <algorithm>
#include <stdexcept>

#include "parallel.h"

namespace pybert::ops {
namespace {

constexpr float kNormEps = 1e-12f;  // torch.nn.functional.normalize's default

// Sequences per thread: one sequence is about tokens * hidden floats of reading.
int64_t sequence_grain(int64_t tokens_per_sequence, int64_t hidden) {
  return std::max<int64_t>(1, (int64_t{1} << 16) /
                                  std::max<int64_t>(1, tokens_per_sequence * hidden));
}

void check_modes(const std::vector<kernels::PoolMode>& modes, int64_t hidden) {
  if (hidden <= 0) throw std::invalid_argument("pool needs hidden > 0");
  if (modes.empty()) throw std::invalid_argument("pool needs at least one mode");
}

}  // namespace

void pool(const float* hidden_states, const int64_t* mask, int64_t batch, int64_t seq,
          int64_t hidden, const std::vector<kernels::PoolMode>& modes, bool normalize,
          float* out) {
  if (batch < 0 || seq < 0) throw std::invalid_argument("pool needs batch, seq >= 0");
  check_modes(modes, hidden);
  const int64_t n_modes = static_cast<int64_t>(modes.size());
  const int64_t width = n_modes * hidden;  // one output row
  parallel_for(0, batch, sequence_grain(seq, hidden), [&](int64_t b0, int64_t b1) {
    std::vector<int64_t> real(seq);  // (n) the real positions s of one sequence
    for (int64_t b = b0; b < b1; ++b) {
      int64_t n = 0;
      for (int64_t s = 0; s < seq; ++s)
        if (mask[b * seq + s]) real[n++] = s;
      const float* x = hidden_states + b * seq * hidden;  // (seq, hidden)
      float* y = out + b * width;                         // (n_modes * hidden)
      for (int64_t m = 0; m < n_modes; ++m)
        kernels::pool_tokens(x, real.data(), real.data(), n, hidden, modes[m], 0, y + m * hidden);
      if (normalize) kernels::l2_normalize(y, width, kNormEps);
    }
  });
}

void pool_packed(const float* x, const SequenceLayout& layout, const int64_t* position,
                 int64_t hidden, const std::vector<kernels::PoolMode>& modes, int64_t skip,
                 float* out) {
  check_modes(modes, hidden);
  if (skip < 0) throw std::invalid_argument("pool: the prompt length must be >= 0");
  const int64_t n_modes = static_cast<int64_t>(modes.size());
  const int64_t width = n_modes * hidden;
  const int64_t mean_length = layout.batch ? layout.tokens() / layout.batch : 0;
  parallel_for(0, layout.batch, sequence_grain(mean_length, hidden), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = layout.offsets[b], n = layout.offsets[b + 1] - begin;
      for (int64_t m = 0; m < n_modes; ++m)
        kernels::pool_tokens(x + begin * hidden, nullptr, position + begin, n, hidden, modes[m],
                             skip, out + b * width + m * hidden);
    }
  });
}

void l2_normalize_rows(float* x, int64_t n, int64_t width) {
  parallel_for(0, n, sequence_grain(1, width), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) kernels::l2_normalize(x + r * width, width, kNormEps);
  });
}

}  // namespace pybert::ops
