// The config.json fields the core needs, with Hugging Face's names.
#pragma once

#include <cstdint>
#include <string>

namespace pybert::model {

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";
  std::string model_type = "bert";  // picks the name table (model/names.h)
  int64_t embedding_size = 0;       // ALBERT / ELECTRA factorized embeddings; 0: hidden_size
  int64_t pad_token_id = 0;         // RoBERTa position ids count from it
  int64_t num_hidden_groups = 1;    // ALBERT: distinct layer weight sets, shared by all layers

  int64_t embedding_dim() const { return embedding_size > 0 ? embedding_size : hidden_size; }

  // Throws std::invalid_argument on a field that cannot describe a BERT encoder.
  void validate() const;
};

}  // namespace pybert::model
