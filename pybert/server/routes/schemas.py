"""JSON schemas of the requests and answers, for ``/openapi.json``."""

from __future__ import annotations

from typing import Any, Dict

Schema = Dict[str, Any]


def obj(properties: Schema, required: tuple = ()) -> Schema:
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
FLOAT = {"type": "number", "format": "float"}
NULLABLE_STR = {"type": "string", "nullable": True}
TEXTS = {"oneOf": [STR, arr(STR)], "description": "a string or an array of strings"}
MODEL = {"type": "string", "description": "a served model's name (GET /v1/models); absent: "
                                          "the first served model of the route's task"}
VECTOR = arr(FLOAT)
DIRECTION = {"type": "string", "enum": ["right", "left"], "default": "right"}
TRUNCATE = {"type": "boolean", "default": True, "nullable": True,
            "description": "false: an input over the model's length is a 413 instead of "
                           "being truncated"}
PROMPT_NAME = {"type": "string", "nullable": True,
               "description": "a key of the model's sentence-transformers `prompts`; its text "
                              "is prepended to every input"}

ERROR = obj({"error": obj({"message": STR, "type": STR, "param": NULLABLE_STR,
                           "code": NULLABLE_STR}, ("message", "type", "param", "code"))},
            ("error",))

OPENAI_EMBEDDINGS_REQUEST = obj({
    "input": TEXTS, "model": MODEL,
    "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
    "dimensions": {"type": "integer", "minimum": 1}, "user": STR}, ("input",))
OPENAI_EMBEDDINGS_RESPONSE = obj({
    "object": {"type": "string", "enum": ["list"]},
    "data": arr(obj({"object": {"type": "string", "enum": ["embedding"]}, "index": INT,
                     "embedding": {"oneOf": [VECTOR, STR]}})),
    "model": STR, "usage": obj({"prompt_tokens": INT, "total_tokens": INT})})
OPENAI_MODEL = obj({"id": STR, "object": {"type": "string", "enum": ["model"]}, "created": INT,
                    "owned_by": STR})
OPENAI_MODEL_LIST = obj({"object": {"type": "string", "enum": ["list"]},
                         "data": arr(OPENAI_MODEL)})

TEI_EMBED_REQUEST = obj({
    "inputs": TEXTS, "normalize": {"type": "boolean", "default": True},
    "truncate": TRUNCATE, "truncation_direction": DIRECTION, "prompt_name": PROMPT_NAME,
    "dimensions": {"type": "integer", "minimum": 1}, "model": MODEL}, ("inputs",))
TEI_EMBED_RESPONSE = arr(VECTOR)
TEI_SPARSE_REQUEST = obj({"inputs": TEXTS, "truncate": TRUNCATE,
                          "truncation_direction": DIRECTION, "prompt_name": PROMPT_NAME,
                          "model": MODEL}, ("inputs",))
TEI_SPARSE_RESPONSE = arr(arr(obj({"index": INT, "value": FLOAT})))
PREDICTION = obj({"label": STR, "score": FLOAT})
TEI_PREDICT_REQUEST = obj({
    "inputs": {"description": "a string, a [text, text_pair] pair, or an array of [text] and "
                              "[text, text_pair] arrays (a batch)",
               "oneOf": [STR, arr(STR), arr(arr(STR))]},
    "raw_scores": {"type": "boolean", "default": False}, "truncate": TRUNCATE,
    "truncation_direction": DIRECTION, "model": MODEL}, ("inputs",))
TEI_PREDICT_RESPONSE = {"oneOf": [arr(PREDICTION), arr(arr(PREDICTION))]}
TEI_RERANK_REQUEST = obj({
    "query": STR, "texts": arr(STR), "truncate": TRUNCATE, "truncation_direction": DIRECTION,
    "raw_scores": {"type": "boolean", "default": False},
    "return_text": {"type": "boolean", "default": False}, "model": MODEL},
    ("query", "texts"))
TEI_RERANK_RESPONSE = arr(obj({"index": INT, "score": FLOAT, "text": STR}))
TEI_SIMILARITY_REQUEST = obj({
    "inputs": obj({"source_sentence": STR, "sentences": arr(STR)},
                  ("source_sentence", "sentences")),
    "parameters": {"type": "object", "nullable": True,
                   "properties": {"prompt_name": PROMPT_NAME, "truncate": TRUNCATE,
                                  "truncation_direction": DIRECTION}},
    "model": MODEL}, ("inputs",))
TEI_SIMILARITY_RESPONSE = arr(FLOAT)
TEI_TOKENIZE_REQUEST = obj({"inputs": TEXTS, "add_special_tokens": {"type": "boolean",
                                                                    "default": True},
                            "prompt_name": PROMPT_NAME, "model": MODEL}, ("inputs",))
TEI_TOKENIZE_RESPONSE = arr(arr(obj({"id": INT, "text": STR, "special": BOOL,
                                     "start": {"type": "integer", "nullable": True},
                                     "stop": {"type": "integer", "nullable": True}})))
TEI_INFO = {"type": "object", "properties": {
    "model_id": STR, "model_sha": NULLABLE_STR, "model_dtype": STR,
    "model_type": {"type": "object", "description": "{\"embedding\": {\"pooling\"}}, "
                                                    "{\"classifier\": {\"id2label\", "
                                                    "\"label2id\"}} or {\"reranker\": ...}"},
    "max_concurrent_requests": INT, "max_input_length": INT, "max_batch_tokens": INT,
    "max_batch_requests": {"type": "integer", "nullable": True},
    "max_client_batch_size": INT, "auto_truncate": BOOL, "tokenization_workers": INT,
    "version": STR, "sha": NULLABLE_STR, "docker_label": NULLABLE_STR}}
TEI_ROOT_REQUEST = {"description": "the body of /embed, /similarity, /predict, /rerank or "
                                   "/embed_sparse, by the model's task; a text classifier also "
                                   "takes the Hugging Face Inference API's "
                                   "{\"inputs\", \"parameters\": {\"top_k\"}}",
                    "type": "object"}

DOCUMENTS = {"type": "array", "items": {"oneOf": [STR, obj({"text": STR}, ("text",))]}}
JINA_RERANK_REQUEST = obj({"model": MODEL, "query": STR, "documents": DOCUMENTS,
                           "top_n": {"type": "integer", "minimum": 1},
                           "return_documents": {"type": "boolean", "default": True}},
                          ("query", "documents"))
JINA_RERANK_RESPONSE = obj({
    "model": STR, "usage": obj({"total_tokens": INT, "prompt_tokens": INT}),
    "results": arr(obj({"index": INT, "relevance_score": FLOAT,
                        "document": obj({"text": STR})}))})
COHERE_RERANK_REQUEST = obj({"model": MODEL, "query": STR, "documents": DOCUMENTS,
                             "top_n": {"type": "integer", "minimum": 1},
                             "max_tokens_per_doc": {"type": "integer", "minimum": 1},
                             "return_documents": {"type": "boolean", "default": False}},
                            ("query", "documents"))
COHERE_RERANK_RESPONSE = obj({
    "id": STR, "results": arr(obj({"index": INT, "relevance_score": FLOAT,
                                   "document": obj({"text": STR})})),
    "meta": {"type": "object"}})

CLASSIFY_REQUEST = obj({"inputs": {"oneOf": [STR, arr(STR), arr(arr(STR))]},
                        "top_k": {"type": "integer", "minimum": 1, "nullable": True},
                        "model": MODEL}, ("inputs",))
CLASSIFY_RESPONSE = arr(arr(PREDICTION))
HEALTH = {"type": "object", "properties": {"status": STR, "task": STR, "model": STR,
                                           "models": arr(obj({"name": STR, "task": STR})),
                                           "queue_depth": INT}}
