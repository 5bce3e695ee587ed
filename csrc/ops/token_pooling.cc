#include "ops/token_pooling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/pooling.h"
#include "parallel.h"
#include "tensor.h"

namespace pybert::ops {
namespace {

// Position of (i, j), i != j, in a condensed (upper-triangle, row-major) distance vector of n
// points: scipy's squareform layout.
inline int64_t condensed(int64_t n, int64_t i, int64_t j) {
  if (i > j) std::swap(i, j);
  return n * i - i * (i + 1) / 2 + (j - i - 1);
}

// Ward's distance from cluster i to the union of x and y (Lance-Williams), with the operations
// in scipy's order so that the heights, and so the merge order on near ties, are the same:
//   d = sqrt(((n_i + n_x) d_xi^2 + (n_i + n_y) d_yi^2 - n_i d_xy^2) / (n_x + n_y + n_i))
inline double ward(double d_xi, double d_yi, double d_xy, int64_t nx, int64_t ny, int64_t ni) {
  const double t = 1.0 / static_cast<double>(nx + ny + ni);
  return std::sqrt(static_cast<double>(ni + nx) * t * d_xi * d_xi +
                   static_cast<double>(ni + ny) * t * d_yi * d_yi -
                   static_cast<double>(ni) * t * d_xy * d_xy);
}

struct Merge {
  int64_t left, right;  // slots (nearest-neighbour chain) or node ids (after labelling)
  double height;
};

// The merges of n >= 2 points by the nearest-neighbour chain on condensed distances D
// (n (n - 1) / 2, overwritten), in the order the chain finds them: merges[k] joins slots
// left < right, and slot right holds the union from then on. size, chain: (n) scratch.
void ward_chain(double* D, int64_t n, int64_t* size, int64_t* chain, Merge* merges) {
  std::fill(size, size + n, int64_t{1});
  int64_t chain_length = 0;
  for (int64_t k = 0; k < n - 1; ++k) {
    if (chain_length == 0) {
      for (int64_t i = 0; i < n; ++i)
        if (size[i] > 0) {
          chain[0] = i;
          break;
        }
      chain_length = 1;
    }
    int64_t x, y = -1;
    double current;
    for (;;) {
      x = chain[chain_length - 1];
      // The previous link wins ties, so the chain cannot cycle.
      if (chain_length > 1) {
        y = chain[chain_length - 2];
        current = D[condensed(n, x, y)];
      } else {
        y = -1;
        current = std::numeric_limits<double>::infinity();
      }
      for (int64_t i = 0; i < n; ++i) {
        if (size[i] == 0 || i == x) continue;
        const double d = D[condensed(n, x, i)];
        if (d < current) {
          current = d;
          y = i;
        }
      }
      if (y < 0) throw std::runtime_error("token pooling: a distance is not finite");
      if (chain_length > 1 && y == chain[chain_length - 2]) break;
      if (chain_length == n) throw std::runtime_error("token pooling: the chain cycled");
      chain[chain_length++] = y;
    }
    chain_length -= 2;
    if (x > y) std::swap(x, y);
    const int64_t nx = size[x], ny = size[y];
    merges[k] = {x, y, current};
    size[x] = 0;
    size[y] = nx + ny;
    for (int64_t i = 0; i < n; ++i) {
      if (size[i] == 0 || i == y) continue;
      D[condensed(n, i, y)] =
          ward(D[condensed(n, i, x)], D[condensed(n, i, y)], current, nx, ny, size[i]);
    }
  }
}

// The chain's merges as a linkage tree: sorted by height (stable), children named as scipy
// names them (points 0..n-1, the j-th merge n + j; the smaller id left).
void label_tree(const Merge* merges, int64_t n, int64_t* order, int64_t* parent, Merge* tree) {
  std::iota(order, order + n - 1, int64_t{0});
  std::stable_sort(order, order + n - 1,
                   [&](int64_t a, int64_t b) { return merges[a].height < merges[b].height; });
  std::iota(parent, parent + 2 * n - 1, int64_t{0});
  auto root = [&](int64_t v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  for (int64_t j = 0; j < n - 1; ++j) {
    const Merge& m = merges[order[j]];
    const int64_t a = root(m.left), b = root(m.right);
    tree[j] = {std::min(a, b), std::max(a, b), m.height};
    parent[a] = parent[b] = n + j;
  }
}

// scipy's fcluster numbering: walking the tree from the root, left subtree first, each
// subtree whose height is <= cutoff is one cluster and every point outside such a subtree its
// own; clusters are numbered in the order the walk closes them. labels (n): 0-based.
// stack (n), seen (2n - 1): scratch.
int64_t cut_tree(const Merge* tree, int64_t n, double cutoff, int64_t* labels, int64_t* stack,
                 unsigned char* seen) {
  std::memset(seen, 0, static_cast<size_t>(2 * n - 1));
  int64_t depth = 0, clusters = 0, leader = -1;
  stack[0] = 2 * n - 2;
  while (depth >= 0) {
    const int64_t node = stack[depth] - n;
    const int64_t left = tree[node].left, right = tree[node].right;
    if (leader == -1 && tree[node].height <= cutoff) {
      leader = node;
      ++clusters;
    }
    if (left >= n && !seen[left]) {
      seen[left] = 1;
      stack[++depth] = left;
      continue;
    }
    if (right >= n && !seen[right]) {
      seen[right] = 1;
      stack[++depth] = right;
      continue;
    }
    if (left < n) {
      if (leader == -1) ++clusters;
      labels[left] = clusters - 1;
    }
    if (right < n) {
      if (leader == -1) ++clusters;
      labels[right] = clusters - 1;
    }
    if (leader == node) leader = -1;
    --depth;
  }
  return clusters;
}

// Per-thread scratch, grown only.
struct PoolScratch {
  Buffer similarity;  // (n, n)
  std::vector<double> distances;  // (n (n - 1) / 2)
  std::vector<int64_t> ints;
  std::vector<Merge> merges, tree;  // (n - 1)
  std::vector<unsigned char> seen;
};

// One document: x (len, dim) -> out (the returned number of rows, dim).
int64_t pool_document(const float* x, int64_t len, int64_t dim, const TokenPoolSpec& spec,
                      PoolScratch& s, float* out) {
  const int64_t p = std::min(spec.protected_tokens, len), n = len - p;
  const float* pooled = x + p * dim;
  std::memcpy(out, x, sizeof(float) * static_cast<size_t>(p * dim));
  float* means = out + p * dim;
  // labels (n: each row's cluster), then the tree's scratch: size (n), parent (2n - 1),
  // order (n); counts (k <= n) reuses size once the tree is cut.
  const int64_t n1 = std::max<int64_t>(n, 1);
  s.ints.resize(static_cast<size_t>(5 * n1));
  int64_t* labels = s.ints.data();
  int64_t* size = labels + n1;
  int64_t* parent = size + n1;
  int64_t* order = parent + (2 * n1 - 1);
  const bool by_height = spec.distance_threshold >= 0.0;
  int64_t target = n;
  if (!by_height && n > 0) {
    target = spec.max_tokens > 0 ? spec.max_tokens - p
                                 : static_cast<int64_t>(std::floor(n / spec.pool_factor));
    target = std::min(std::max<int64_t>(target, 1), n);
  }
  int64_t k;
  if (n <= 1 || (!by_height && target >= n)) {  // nothing merges
    k = n;
    std::iota(labels, labels + n, int64_t{0});
  } else if (!by_height && target == 1) {  // one cluster: no tree needed
    k = 1;
    std::fill(labels, labels + n, int64_t{0});
  } else {
    // D_ij = clamp(1 - x_i . x_j, 0, 2) for i < j, in float32, then double.
    float* sim = s.similarity.reserve(n * n);
    kernels::matmul_nt(pooled, dim, pooled, dim, n, n, dim, sim, n);
    s.distances.resize(static_cast<size_t>(n * (n - 1) / 2));
    double* D = s.distances.data();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j)
        D[condensed(n, i, j)] = std::min(std::max(1.0f - sim[i * n + j], 0.0f), 2.0f);
    s.merges.resize(static_cast<size_t>(n - 1));
    s.tree.resize(static_cast<size_t>(n - 1));
    ward_chain(D, n, size, order, s.merges.data());
    label_tree(s.merges.data(), n, order, parent, s.tree.data());
    // Heights ascend along the tree, so each node's largest height below it is its own.
    double cutoff = spec.distance_threshold;
    if (!by_height) {
      // The lowest height whose cut leaves <= target clusters: cutting at tree[j].height
      // leaves n - #{i : height_i <= height_j} (scipy's maxclust bisection over the nodes).
      int64_t lo = -1, hi = n - 1;
      while (hi - lo > 1) {
        const int64_t mid = (lo + hi) >> 1;
        const double h = s.tree[mid].height;
        const int64_t merged =
            std::upper_bound(s.tree.begin(), s.tree.end(), h,
                             [](double v, const Merge& m) { return v < m.height; }) -
            s.tree.begin();
        if (n - merged > target) lo = mid; else hi = mid;
      }
      cutoff = s.tree[hi].height;
    }
    s.seen.resize(static_cast<size_t>(2 * n - 1));
    k = cut_tree(s.tree.data(), n, cutoff, labels, size, s.seen.data());
  }
  // means (k, dim): each cluster's sum over its members in token order, over its size.
  std::fill(means, means + k * dim, 0.0f);
  int64_t* counts = size;  // (k)
  std::fill(counts, counts + k, int64_t{0});
  for (int64_t i = 0; i < n; ++i) {
    float* m = means + labels[i] * dim;
    const float* v = pooled + i * dim;
    for (int64_t c = 0; c < dim; ++c) m[c] += v[c];
    ++counts[labels[i]];
  }
  for (int64_t c = 0; c < k; ++c) {
    const float size = static_cast<float>(counts[c]);
    for (int64_t j = 0; j < dim; ++j) means[c * dim + j] /= size;
  }
  const int64_t rows = p + k;
  if (spec.normalize)  // as torch.nn.functional.normalize
    for (int64_t r = 0; r < rows; ++r) kernels::l2_normalize(out + r * dim, dim, 1e-12f);
  return rows;
}

}  // namespace

void token_pool(const float* rows, const int64_t* offsets, int64_t n_docs, int64_t dim,
                const TokenPoolSpec& spec, float* out, int64_t* out_offsets) {
  // Each document's output goes where its input starts (it has no more rows), then the
  // outputs close up. Documents are dealt round-robin: callers pass them sorted by length
  // and the cost grows with its square.
  std::vector<int64_t> counts(static_cast<size_t>(n_docs));
  const int64_t teams = std::min<int64_t>(std::max(thread_budget(), 1), std::max<int64_t>(n_docs, 1));
  parallel_for(0, teams, 1, [&](int64_t t0, int64_t t1) {
    thread_local PoolScratch scratch;
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t d = t; d < n_docs; d += teams)
        counts[d] = pool_document(rows + offsets[d] * dim, offsets[d + 1] - offsets[d], dim,
                                  spec, scratch, out + offsets[d] * dim);
  });
  out_offsets[0] = 0;
  for (int64_t d = 0; d < n_docs; ++d) {
    out_offsets[d + 1] = out_offsets[d] + counts[d];
    if (out_offsets[d] != offsets[d])
      std::memmove(out + out_offsets[d] * dim, out + offsets[d] * dim,
                   sizeof(float) * static_cast<size_t>(counts[d] * dim));
  }
}

}  // namespace pybert::ops
