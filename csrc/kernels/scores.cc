#include "kernels/scores.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/fixed_order.h"

namespace pybert::kernels {

void sigmoid(float* x, int64_t n) {
  // exp overflows to inf for x << 0, giving exactly 0; x may lie anywhere (fixed_order.h).
  map_fixed_order(x, n, [](auto& a) { a = 1.0f / (1.0f + (-a).exp()); });
}

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
