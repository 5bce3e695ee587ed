#include "model/names.h"

#include <cstdint>
#include <stdexcept>

namespace pybert::model {
namespace {

// BERT's names, the base the relatives start from.
NameTable bert() {
  NameTable t;
  t.model_type = "bert";
  t.prefixes = {"", "bert."};
  t.word_embeddings = "embeddings.word_embeddings";
  t.position_embeddings = "embeddings.position_embeddings";
  t.token_type_embeddings = "embeddings.token_type_embeddings";
  t.embedding_norm = "embeddings.LayerNorm";
  t.layer = "encoder.layer.{i}.";
  t.query = "attention.self.query";
  t.key = "attention.self.key";
  t.value = "attention.self.value";
  t.attention_output = "attention.output.dense";
  t.attention_norm = "attention.output.LayerNorm";
  t.intermediate = "intermediate.dense";
  t.output = "output.dense";
  t.output_norm = "output.LayerNorm";
  t.pooler = "pooler.dense";
  t.architecture = "Bert";
  t.classifier = "classifier";  // on the pooler output
  t.mlm_transform = "cls.predictions.transform.dense";
  t.mlm_norm = "cls.predictions.transform.LayerNorm";
  t.mlm_decoder = "cls.predictions.decoder";
  t.mlm_bias = "cls.predictions.bias";
  return t;
}

// RobertaClassificationHead: first token -> dense + tanh -> out_proj.
NameTable roberta(const std::string& model_type, const std::string& architecture) {
  NameTable t = bert();
  t.model_type = model_type;
  t.prefixes = {"", "roberta."};
  t.positions = PositionIds::kAfterPadding;
  t.architecture = architecture;
  t.classifier_dense = "classifier.dense";
  t.classifier = "classifier.out_proj";
  // RobertaLMHead: exact-erf GELU whatever hidden_act says (transformers calls gelu()).
  t.mlm_transform = "lm_head.dense";
  t.mlm_activation = kernels::Activation::kGeluErf;
  t.mlm_norm = "lm_head.layer_norm";
  t.mlm_decoder = "lm_head.decoder";
  t.mlm_bias = "lm_head.bias";
  return t;
}

// ElectraClassificationHead: as RoBERTa's with exact-erf GELU, whatever hidden_act says
// (transformers builds it with get_activation("gelu")).
NameTable electra() {
  NameTable t = bert();
  t.model_type = "electra";
  t.prefixes = {"", "electra."};
  t.embedding_projection = "embeddings_project";
  t.pooler = "";
  t.architecture = "Electra";
  t.classifier_dense = "classifier.dense";
  t.classifier_activation = kernels::Activation::kGeluErf;
  t.classifier = "classifier.out_proj";
  t.mlm_transform = "";  // the generator head projects to embedding_size: not run
  return t;
}

// Pre-LN BERT: no embedding LayerNorm; each layer normalizes before attention ("attention.ln")
// and before the feed-forward ("ln"); "encoder.ln" normalizes the stack's output.
NameTable megatron_bert() {
  NameTable t = bert();
  t.model_type = "megatron-bert";
  t.embedding_norm = "";
  t.attention_norm = "attention.ln";
  t.output_norm = "ln";
  t.pre_layer_norm = true;
  t.final_norm = "encoder.ln";
  t.architecture = "MegatronBert";
  return t;
}

NameTable distilbert() {
  NameTable t = bert();
  t.model_type = "distilbert";
  t.prefixes = {"", "distilbert."};
  t.token_type_embeddings = "";
  t.layer = "transformer.layer.{i}.";
  t.query = "attention.q_lin";
  t.key = "attention.k_lin";
  t.value = "attention.v_lin";
  t.attention_output = "attention.out_lin";
  t.attention_norm = "sa_layer_norm";
  t.intermediate = "ffn.lin1";
  t.output = "ffn.lin2";
  t.output_norm = "output_layer_norm";
  t.pooler = "";
  t.architecture = "DistilBert";
  t.classifier_dense = "pre_classifier";  // first token -> pre_classifier + ReLU -> classifier
  t.classifier_activation = kernels::Activation::kRelu;
  // DistilBertForMaskedLM: the config's activation; vocab_layer_norm's eps is 1e-12 as the
  // body's (config.json has no layer_norm_eps, pybert's default is 1e-12).
  t.mlm_transform = "vocab_transform";
  t.mlm_norm = "vocab_layer_norm";
  t.mlm_decoder = "vocab_projector";
  t.mlm_bias = "";
  return t;
}

// Factorized embeddings projected by the encoder; one layer weight set per group of layers.
NameTable albert() {
  NameTable t = bert();
  t.model_type = "albert";
  t.prefixes = {"", "albert."};
  t.embedding_projection = "encoder.embedding_hidden_mapping_in";
  t.projection_always = true;
  t.layer = "encoder.albert_layer_groups.{i}.albert_layers.0.";
  t.grouped_layers = true;
  t.query = "attention.query";
  t.key = "attention.key";
  t.value = "attention.value";
  t.attention_output = "attention.dense";
  t.attention_norm = "attention.LayerNorm";
  t.intermediate = "ffn";
  t.output = "ffn_output";
  t.output_norm = "full_layer_layer_norm";
  t.pooler = "pooler";
  t.architecture = "Albert";
  t.mlm_transform = "";  // AlbertMLMHead projects to embedding_size: not run
  return t;
}

const std::vector<NameTable>& all_tables() {
  static const std::vector<NameTable> tables = {
      bert(), roberta("roberta", "Roberta"), roberta("xlm-roberta", "XLMRoberta"),
      distilbert(), electra(), albert(), megatron_bert()};
  return tables;
}

}  // namespace

std::string NameTable::layer_prefix(int64_t i) const {
  std::string p = layer;
  const size_t at = p.find("{i}");
  return p.replace(at, 3, std::to_string(i));
}

const NameTable& name_table(const std::string& model_type) {
  std::string supported;
  for (const NameTable& t : all_tables()) {
    if (t.model_type == model_type) return t;
    supported += (supported.empty() ? "'" : ", '") + t.model_type + "'";
  }
  throw std::invalid_argument("model_type '" + model_type +
                              "' is not supported; pybert runs " + supported);
}

std::string masked_lm_families() {
  std::string families;
  for (const NameTable& t : all_tables())
    if (!t.mlm_transform.empty()) families += (families.empty() ? "'" : ", '") + t.model_type + "'";
  return families;
}

}  // namespace pybert::model
