#include "model/config.h"

#include <stdexcept>

#include "kernels/activation.h"

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
  positive(type_vocab_size, "type_vocab_size");
  if (hidden_size % num_attention_heads != 0)
    throw std::invalid_argument(
        "Embedding size needs to be divisible by heads: hidden_size " +
        std::to_string(hidden_size) + " is not a multiple of num_attention_heads " +
        std::to_string(num_attention_heads));
  if (!(layer_norm_eps > 0)) throw std::invalid_argument("config layer_norm_eps must be > 0");
  kernels::activation_from_name(hidden_act);
}

}  // namespace pybert::model
