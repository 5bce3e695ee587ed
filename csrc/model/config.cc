#include "model/config.h"

#include <stdexcept>

#include "kernels/activation.h"
#include "model/names.h"

namespace pybert::model {

void BertConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0)
      throw std::invalid_argument(std::string("config ") + name + " must be positive, got " +
                                  std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  const NameTable& names = name_table(model_type);
  if (!names.token_type_embeddings.empty()) positive(type_vocab_size, "type_vocab_size");
  if (embedding_size < 0)
    throw std::invalid_argument("config embedding_size must be positive, got " +
                                std::to_string(embedding_size));
  if (names.grouped_layers) positive(num_hidden_groups, "num_hidden_groups");
  if (pad_token_id < 0)
    throw std::invalid_argument("config pad_token_id must be >= 0, got " +
                                std::to_string(pad_token_id));
  if (hidden_size % num_attention_heads != 0)
    throw std::invalid_argument(
        "Embedding size needs to be divisible by heads: hidden_size " +
        std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
        std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0)) throw std::invalid_argument("config layer_norm_eps must be > 0");
  kernels::activation_from_name(hidden_act);
}

}  // namespace pybert::model
