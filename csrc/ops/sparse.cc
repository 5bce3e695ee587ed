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

void sparse_fill(const float* x, int64_t n, int64_t cols, const int64_t* indptr, int32_t* indices,
                 float* values) {
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

void CsrRows::check(int64_t entries, const char* what) const {
  const std::string name(what);
  if (indptr[0] != 0 || indptr[rows] != entries)
    throw std::invalid_argument(name + ": indptr must run from 0 to the number of entries (" +
                                std::to_string(entries) + ")");
  for (int64_t r = 0; r < rows; ++r)
    if (indptr[r + 1] < indptr[r])
      throw std::invalid_argument(name + ": indptr must not decrease (row " + std::to_string(r) +
                                  ")");
  for (int64_t e = 0; e < entries; ++e)
    if (indices[e] < 0 || indices[e] >= cols)
      throw std::invalid_argument(name + ": column index " + std::to_string(indices[e]) +
                                  " is outside [0, " + std::to_string(cols) + ")");
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t e = indptr[r] + 1; e < indptr[r + 1]; ++e)
      if (indices[e] <= indices[e - 1])
        throw std::invalid_argument(name + ": the columns of row " + std::to_string(r) +
                                    " must be strictly ascending");
}

Similarity similarity_from_name(const std::string& name) {
  if (name == "dot") return Similarity::kDot;
  if (name == "cosine") return Similarity::kCosine;
  if (name == "euclidean") return Similarity::kEuclidean;
  if (name == "manhattan") return Similarity::kManhattan;
  throw std::invalid_argument("unknown similarity '" + name +
                              "'; expected one of: dot, cosine, euclidean, manhattan");
}

void sparse_similarity(const CsrRows& a, const CsrRows& b, Similarity sim, float* scores) {
  // Per row: sum of squares (cosine, euclidean) or of absolute values (manhattan).
  auto row_sum = [sim](const CsrRows& x, int64_t r) {
    float sum = 0.0f;
    for (int64_t e = x.indptr[r]; e < x.indptr[r + 1]; ++e)
      sum += sim == Similarity::kManhattan ? std::fabs(x.values[e]) : x.values[e] * x.values[e];
    return sum;
  };
  std::vector<float> b_sums(b.rows);  // (n_b)
  for (int64_t j = 0; j < b.rows; ++j) b_sums[j] = row_sum(b, j);
  parallel_for(0, a.rows, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> dense(a.cols, 0.0f);  // (cols) row i of a, scattered
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t e = a.indptr[i]; e < a.indptr[i + 1]; ++e) dense[a.indices[e]] = a.values[e];
      const float a_sum = row_sum(a, i);
      for (int64_t j = 0; j < b.rows; ++j) {
        float acc = 0.0f;  // a . b, or for manhattan sum over b's columns of the correction
        for (int64_t e = b.indptr[j]; e < b.indptr[j + 1]; ++e) {
          const float x = dense[b.indices[e]], y = b.values[e];
          acc += sim == Similarity::kManhattan ? std::fabs(x - y) - std::fabs(x) - std::fabs(y)
                                               : x * y;
        }
        float score = acc;
        if (sim == Similarity::kCosine)
          score = acc / (std::max(std::sqrt(a_sum), 1e-12f) *
                         std::max(std::sqrt(b_sums[j]), 1e-12f));
        else if (sim == Similarity::kEuclidean)
          score = -std::sqrt(std::max(a_sum + b_sums[j] - 2.0f * acc, 0.0f));
        else if (sim == Similarity::kManhattan)
          score = -(a_sum + b_sums[j] + acc);
        scores[i * b.rows + j] = score;
      }
      for (int64_t e = a.indptr[i]; e < a.indptr[i + 1]; ++e) dense[a.indices[e]] = 0.0f;
    }
  });
}

void sparse_autoencoder(const float* x, int64_t n, const float* pre_bias, const Linear& encoder,
                        bool normalize, int64_t k, float* scratch, float* out) {
  const int64_t in = encoder.in_features(), hidden = encoder.out_features();
  if (k < 1 || k > hidden)
    throw std::invalid_argument("k must be between 1 and the encoder's " +
                                std::to_string(hidden) + " latents, got " + std::to_string(k));
  parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x + r * in;
      float* y = scratch + r * in;  // (in)
      float mean = 0.0f, scale = 1.0f;
      if (normalize) {
        for (int64_t c = 0; c < in; ++c) mean += row[c];
        mean /= static_cast<float>(in);
        float squares = 0.0f;
        for (int64_t c = 0; c < in; ++c) squares += (row[c] - mean) * (row[c] - mean);
        const float stddev = std::sqrt(squares / static_cast<float>(std::max<int64_t>(in - 1, 1)));
        scale = 1.0f / (stddev + 1e-5f);
      }
      for (int64_t c = 0; c < in; ++c) y[c] = (row[c] - mean) * scale - pre_bias[c];
    }
  });
  encoder(scratch, n, out);  // (n, hidden) latents before the activation
  parallel_for(0, n, 16, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> order(hidden);  // (hidden) latent indices, the k largest first
    for (int64_t r = r0; r < r1; ++r) {
      float* z = out + r * hidden;
      for (int64_t c = 0; c < hidden; ++c) order[c] = c;
      std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                       [z](int64_t a, int64_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
      for (int64_t t = k; t < hidden; ++t) z[order[t]] = 0.0f;
      for (int64_t t = 0; t < k; ++t) z[order[t]] = std::max(z[order[t]], 0.0f);
    }
  });
}

}  // namespace pybert::ops
