#include "layers/embeddings.h"

#include "ops/embedding.h"

namespace pybert::layers {

void Embeddings::forward(const int64_t* ids, const int64_t* positions, const int64_t* types,
                         int64_t n, float* out) const {
  ops::embedding_sum(word_embeddings, position_embeddings, token_type_embeddings, ids, positions,
                     types, n, out);
  if (layer_norm) (*layer_norm)(out, nullptr, out, n);
}

}  // namespace pybert::layers
