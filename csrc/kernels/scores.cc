#include "kernels/scores.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace pybert::kernels {

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return i;
    if (x[i] > x[best]) best = i;
  }
  return best;
}

void top_k(const float* x, int64_t n, int64_t k, int64_t* index, float* value) {
  thread_local std::vector<int64_t> order;
  order.resize(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  const auto before = [x](int64_t a, int64_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  for (int64_t i = 0; i < k; ++i) {
    index[i] = order[i];
    value[i] = x[order[i]];
  }
}

}  // namespace pybert::kernels
