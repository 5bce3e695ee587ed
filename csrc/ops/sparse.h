// Dense rows to compressed sparse rows (CSR): what a sparse (SPLADE) embedding keeps.
#pragma once

#include <cstdint>

namespace pybert::ops {

// x (n, cols) -> counts (n): the entries row r keeps: its nonzeros, at most max_active of them
// when max_active > 0 (sentence-transformers' max_active_dims).
void sparse_counts(const float* x, int64_t n, int64_t cols, int64_t max_active, int64_t* counts);

// x (n, cols) -> row r's kept entries at [indptr[r], indptr[r + 1]) of indices / values, in
// column order: every nonzero, or with max_active > 0 the max_active largest by |value| (the
// lower column first among equals). indptr (n + 1): the prefix sums of sparse_counts.
void sparse_fill(const float* x, int64_t n, int64_t cols, int64_t max_active,
                 const int64_t* indptr, int32_t* indices, float* values);

// sentence-transformers' SparseStaticEmbedding (the query side of inference-free SPLADE):
// ids, mask (n, seq) -> x (n, cols) with x[r, c] = weight[c] when token c occurs in row r at a
// position of mask 1, else 0. Throws std::invalid_argument for an id outside [0, cols).
void token_presence(const int64_t* ids, const int64_t* mask, int64_t n, int64_t seq,
                    const float* weight, int64_t cols, float* x);

}  // namespace pybert::ops
