// BERT embeddings: word + absolute position + token type, then LayerNorm.
#pragma once

#include <cstdint>
#include <optional>

#include "ops/norm.h"
#include "tensor.h"

namespace pybert::layers {

struct Embeddings {
  // hidden here is embedding_size: smaller than the encoder's in ALBERT and some ELECTRAs.
  Tensor word_embeddings;        // (vocab_size, hidden)
  Tensor position_embeddings;    // (max_position_embeddings, hidden)
  Tensor token_type_embeddings;  // (type_vocab_size, hidden), or empty (DistilBERT)
  std::optional<ops::LayerNorm> layer_norm;  // absent in pre-LN Megatron-BERT

  // out (n, hidden) = LayerNorm(word[ids] + token_type[types] + position[positions]);
  // types may be null (all zeros).
  void forward(const int64_t* ids, const int64_t* positions, const int64_t* types, int64_t n,
               float* out) const;
  int64_t hidden() const { return word_embeddings.dim(1); }
};

}  // namespace pybert::layers
