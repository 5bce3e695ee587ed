#include "ops/sparse.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.h"

namespace pybert::ops {
namespace {

int64_t nonzeros(const float* row, int64_t cols) {
  int64_t count = 0;
  for (int64_t c = 0; c < cols; ++c) count += row[c] != 0.0f;
  return count;
}

}  // namespace

void sparse_counts(const float* x, int64_t n, int64_t cols, int64_t max_active, int64_t* counts) {
  parallel_for(0, n, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t count = nonzeros(x + r * cols, cols);
      counts[r] = max_active > 0 ? std::min(count, max_active) : count;
    }
  });
}

void sparse_fill(const float* x, int64_t n, int64_t cols, int64_t max_active,
                 const int64_t* indptr, int32_t* indices, float* values) {
  parallel_for(0, n, 1, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> kept;  // the row's nonzero columns
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x + r * cols;
      kept.clear();
      for (int64_t c = 0; c < cols; ++c)
        if (row[c] != 0.0f) kept.push_back(static_cast<int32_t>(c));
      const auto keep = static_cast<size_t>(indptr[r + 1] - indptr[r]);
      if (kept.size() > keep) {  // the `keep` largest |values|, then back in column order
        std::nth_element(kept.begin(), kept.begin() + keep, kept.end(), [&](int32_t a, int32_t b) {
          const float fa = std::fabs(row[a]), fb = std::fabs(row[b]);
          return fa > fb || (fa == fb && a < b);
        });
        kept.resize(keep);
        std::sort(kept.begin(), kept.end());
      }
      for (size_t i = 0; i < kept.size(); ++i) {
        indices[indptr[r] + i] = kept[i];
        values[indptr[r] + i] = row[kept[i]];
      }
    }
  });
}

void token_presence(const int64_t* ids, const int64_t* mask, int64_t n, int64_t seq,
                    const float* weight, int64_t cols, float* x) {
  for (int64_t i = 0; i < n * seq; ++i)
    if ((!mask || mask[i] != 0) && (ids[i] < 0 || ids[i] >= cols))
      throw std::invalid_argument("token id " + std::to_string(ids[i]) +
                                  " is outside the static weights' " + std::to_string(cols) +
                                  " entries");
  parallel_for(0, n, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * cols;
      std::memset(row, 0, cols * sizeof(float));
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t i = r * seq + s;
        if (!mask || mask[i] != 0) row[ids[i]] = weight[ids[i]];
      }
    }
  });
}

}  // namespace pybert::ops
