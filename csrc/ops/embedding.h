// Sum of embedding-table lookups, one row per token.
#pragma once

#include <cstdint>

#include "tensor.h"

namespace pybert::ops {

// out (n, hidden) = word[ids] + position[positions] + token_type[types]
// Tables are (rows, hidden). `position`, `token_type` may be empty tensors (the family has no
// such table) and `types` may be null (all zeros). Every index is checked against its table
// before any row is read: an out-of-range one throws std::invalid_argument naming it.
void embedding_sum(const Tensor& word, const Tensor& position, const Tensor& token_type,
                   const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t n,
                   float* out);

}  // namespace pybert::ops
