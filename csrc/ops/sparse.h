// Dense rows to compressed sparse rows (CSR): what a sparse (SPLADE) embedding keeps.
#pragma once

#include <cstdint>
#include <string>

#include "ops/linear.h"

namespace pybert::ops {

// x (n, cols) -> counts (n): the entries row r keeps: its nonzeros, at most max_active of them
// when max_active > 0 (sentence-transformers' max_active_dims).
void sparse_counts(const float* x, int64_t n, int64_t cols, int64_t max_active, int64_t* counts);

// x (n, cols) -> row r's kept entries at [indptr[r], indptr[r + 1]) of indices / values, in
// column order: every nonzero, or where the row has more nonzeros than that (sparse_counts'
// max_active) the largest by |value| (the lower column first among equals). indptr (n + 1):
// the prefix sums of sparse_counts.
void sparse_fill(const float* x, int64_t n, int64_t cols, const int64_t* indptr, int32_t* indices,
                 float* values);

// sentence-transformers' SparseStaticEmbedding (the query side of inference-free SPLADE):
// ids, mask (n, seq) -> x (n, cols) with x[r, c] = weight[c] when token c occurs in row r at a
// position of mask 1, else 0. Throws std::invalid_argument for an id outside [0, cols).
void token_presence(const int64_t* ids, const int64_t* mask, int64_t n, int64_t seq,
                    const float* weight, int64_t cols, float* x);

// Compressed sparse rows: row r holds values[indptr[r] .. indptr[r + 1]) at columns indices[...].
struct CsrRows {
  const int64_t* indptr = nullptr;  // (rows + 1), from 0 to the number of entries
  const int32_t* indices = nullptr;  // (entries) in [0, cols)
  const float* values = nullptr;     // (entries)
  int64_t rows = 0;
  int64_t cols = 0;

  // Throws std::invalid_argument naming `what` unless indptr runs from 0 to `entries` without
  // decreasing and each row's indices ascend strictly within [0, cols).
  void check(int64_t entries, const char* what) const;
};

// sentence-transformers' similarity functions, as it computes them on sparse rows.
enum class Similarity {
  kDot,        // a . b
  kCosine,     // a . b / (max(|a|, 1e-12) max(|b|, 1e-12))  (torch's normalize eps)
  kEuclidean,  // -sqrt(max(|a|^2 + |b|^2 - 2 a . b, 0))
  kManhattan,  // -sum_k |a_k - b_k|
};

// "dot", "cosine", "euclidean", "manhattan" -> Similarity; throws std::invalid_argument.
Similarity similarity_from_name(const std::string& name);

// a (n_a rows), b (n_b rows), same cols -> scores (n_a, n_b): scores[i, j] = sim(a_i, b_j).
// Both must have been check()ed.
void sparse_similarity(const CsrRows& a, const CsrRows& b, Similarity sim, float* scores);

// sentence-transformers' SparseAutoEncoder at inference (CSR, "Beyond Matryoshka"):
// x (n, in) -> [normalize: (x - mean) / (unbiased std + 1e-5) per row] -> z = (x - pre_bias) W^T
// + latent_bias (encoder: W (hidden, in), latent_bias) -> out (n, hidden): relu of each row's k
// largest z, zeros elsewhere. scratch (n, in). 1 <= k <= hidden.
void sparse_autoencoder(const float* x, int64_t n, const float* pre_bias, const Linear& encoder,
                        bool normalize, int64_t k, float* scratch, float* out);

}  // namespace pybert::ops
