// The BERT family's checkpoints: for each Hugging Face model_type, where every weight of the
// shared layout (embeddings -> [projection] -> encoder layers -> [final norm] -> [pooler]) and of
// its sequence-classification head lives. This is the one place that knows Hugging Face tensor
// names.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/activation.h"

namespace pybert::model {

// How position ids are made from a row of input ids.
enum class PositionIds {
  kFromZero,      // BERT: 0, 1, 2, ... for every position
  kAfterPadding,  // RoBERTa: pad_token_id + 1 + (count of non-pad ids so far); pad ids get
                  // pad_token_id (transformers' create_position_ids_from_input_ids)
};

// Names are relative to the body prefix; an empty name means the family has no such tensor.
// Linear and LayerNorm names omit ".weight"/".bias". In `layer`, "{i}" is the layer index, or
// the ALBERT group index when `grouped_layers`.
struct NameTable {
  std::string model_type;
  std::vector<std::string> prefixes;  // tried in order: saved as the base model, or in a *For* model

  std::string word_embeddings;
  std::string position_embeddings;
  std::string token_type_embeddings;
  std::string embedding_norm;
  std::string embedding_projection;       // embedding_size -> hidden_size
  bool projection_always = false;         // also when embedding_size == hidden_size (ALBERT)

  std::string layer;
  std::string query, key, value, attention_output, attention_norm;
  std::string intermediate, output, output_norm;
  bool pre_layer_norm = false;   // attention_norm / output_norm come before their sublayer
  bool grouped_layers = false;   // ALBERT: num_hidden_groups weight sets shared by all layers
  std::string final_norm;        // after the last layer (pre-LN stacks)

  std::string pooler;            // dense + tanh on the first token
  PositionIds positions = PositionIds::kFromZero;

  // The *ForSequenceClassification head, beside the body prefix: each sequence's first token
  // -> the body's pooler, or `classifier_dense` + `classifier_activation` -> `classifier`.
  std::string architecture;      // the class names' stem: "Bert" + "ForSequenceClassification"
  std::string classifier_dense;  // (hidden, hidden); empty: the pooler comes first instead
  kernels::Activation classifier_activation = kernels::Activation::kTanh;
  std::string classifier;        // (num_labels, hidden)

  // The *ForMaskedLM head, beside the body prefix: every token -> `mlm_transform` (hidden,
  // hidden) + `mlm_activation` (or the config's hidden_act) -> LayerNorm `mlm_norm` ->
  // `mlm_decoder` (vocab, hidden) + bias. The decoder weight is the word embeddings when tied;
  // its bias is `mlm_decoder`.bias or, saved tied, `mlm_bias`. Empty `mlm_transform`: pybert
  // has no masked-LM head for the family.
  std::string mlm_transform;
  std::optional<kernels::Activation> mlm_activation;  // none: the config's hidden_act
  std::string mlm_norm;
  std::string mlm_decoder;
  std::string mlm_bias;          // empty: the decoder's own bias only

  // "encoder.layer.{i}." with the index filled in.
  std::string layer_prefix(int64_t i) const;
};

// The table for a config's model_type; throws std::invalid_argument listing the supported ones.
const NameTable& name_table(const std::string& model_type);

// "'bert', 'roberta', ...": the model_types whose table has a masked-LM head.
std::string masked_lm_families();

}  // namespace pybert::model
