// Token pooling for multi-vector (ColBERT-style) documents: sentence-transformers'
// HierarchicalTokenPooling, Ward clustering of each document's token vectors with every cluster
// replaced by its mean.
#pragma once

#include <cstdint>

namespace pybert::ops {

// What to pool, as HierarchicalTokenPooling's config names it. Of a document's len rows the
// first p = min(protected_tokens, len) stay as they are; the other n = len - p are clustered into
//   max_tokens > 0:           k = min(max_tokens - p, n) clusters
//   distance_threshold >= 0:  the clusters of the Ward tree cut at that height
//   otherwise:                k = floor(n / pool_factor) clusters,
// each k clamped to [1, n] (n <= 1, or k == n: nothing merges).
struct TokenPoolSpec {
  int64_t protected_tokens = 1;
  double pool_factor = 1.0;
  int64_t max_tokens = 0;           // 0: none
  double distance_threshold = -1.0;  // < 0: none
  bool normalize = true;            // L2-normalize every output row (protected ones included)
};

// rows (offsets[n_docs], dim), document d in rows [offsets[d], offsets[d + 1]) ->
//   out (out_offsets[n_docs], dim): per document its protected rows, then its cluster means in
//   the order scipy's fcluster numbers the clusters; out_offsets (n_docs + 1).
// The clustering is scipy's: linkage(squareform(D), "ward") on
//   D_ij = clamp(1 - x_i . x_j, 0, 2)   (float32, as the reference computes it; then double)
// by the nearest-neighbour chain, merges sorted by height (stable), then fcluster "maxclust"
// (the lowest merge height that leaves at most k clusters) or "distance". Same merge order and
// same cluster numbering, ties included, so the output rows match row for row.
// out must hold offsets[n_docs] rows (the output never has more rows than the input).
// Documents are split over threads. Rows must be finite (checked by the caller).
void token_pool(const float* rows, const int64_t* offsets, int64_t n_docs, int64_t dim,
                const TokenPoolSpec& spec, float* out, int64_t* out_offsets);

}  // namespace pybert::ops
