#include "ops/embedding.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel.h"

namespace pybert::ops {
namespace {

void check_indices(const int64_t* idx, int64_t n, int64_t rows, const char* what,
                   const char* limit_name) {
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= rows)
      throw std::invalid_argument(std::string(what) + " " + std::to_string(idx[i]) +
                              " is out of range: expected 0 <= value < " + limit_name + " (" +
                              std::to_string(rows) + ")");
  }
}

}  // namespace

void embedding_sum(const Tensor& word, const Tensor& position, const Tensor& token_type,
                   const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t n,
                   float* out) {
  const int64_t h = word.dim(1);
  check_indices(ids, n, word.dim(0), "input id", "vocab_size");
  if (!position.empty())
    check_indices(positions, n, position.dim(0), "position", "max_position_embeddings");
  if (types) {
    const int64_t type_rows = token_type.empty() ? 1 : token_type.dim(0);
    check_indices(types, n, type_rows, "token type id", "type_vocab_size");
  }
  parallel_for(0, n, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* row = out + t * h;
      const float* w = word.data + ids[t] * h;
      std::memcpy(row, w, h * sizeof(float));
      // Same order of additions as transformers: (word + token type) + position.
      if (!token_type.empty()) {
        const float* ty = token_type.data + (types ? types[t] : 0) * h;
        for (int64_t j = 0; j < h; ++j) row[j] += ty[j];
      }
      if (!position.empty()) {
        const float* p = position.data + positions[t] * h;
        for (int64_t j = 0; j < h; ++j) row[j] += p[j];
      }
    }
  });
}

}  // namespace pybert::ops
