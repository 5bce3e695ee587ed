"""Hugging Face Text Embeddings Inference's API: ``POST /`` (the model's task), ``/embed``,
``/embed_sparse``, ``/similarity``, ``/predict``, ``/rerank``, ``/tokenize``, ``GET /info``; what
``huggingface_hub.InferenceClient(base_url)`` calls (its ``feature_extraction``,
``sentence_similarity`` and ``text_classification`` post to ``/``)."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ... import __version__
from ..state import Endpoint, Served, Service, VectorsResponse
from ..tasks import ClassifyInputs, EmbedInputs, RerankInputs
from ..validation import (RequestError, check_count, check_fields, choice, json_type, optional,
                          read_json, request_texts)
from . import schemas as s
from .rerank import ranked

TRUNCATION = ("truncate", "truncation_direction")


def embed_inputs(served: Served, texts: List[str], params: Dict[str, Any]) -> EmbedInputs:
    """TEI's ``prompt_name``, ``truncate`` and ``truncation_direction`` of a request."""
    name = optional(params, "prompt_name", str)
    if name is not None:
        prompts = getattr(served.task, "prompts", {})  # embed and sparse models have them
        if name not in prompts:
            have = ", ".join(map(repr, prompts)) if prompts else "none"
            raise RequestError(400, f"'prompt_name' {name!r} is not one of the model's prompts "
                                    f"(config_sentence_transformers.json): {have}",
                               param="prompt_name")
    return EmbedInputs(texts, name, optional(params, "truncate", bool, True),
                       choice(params, "truncation_direction", ("right", "left"), "right"))


def right_truncation_only(payload: Dict[str, Any], what: str) -> None:
    """Refuse ``truncation_direction: left`` where the model call tokenizes by itself, cutting
    on the right."""
    if choice(payload, "truncation_direction", ("right", "left"), "right") != "right":
        raise RequestError(400, f"'truncation_direction': only \"right\" is supported for "
                                f"{what}", param="truncation_direction")


async def embed(request: Request, service: Service, payload: Optional[Dict] = None) -> Response:
    if payload is None:
        payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("normalize", "prompt_name", "dimensions", "model",
                                     *TRUNCATION))
    served = service.model(payload, ("embed",), "/embed")
    texts, _ = request_texts(payload["inputs"], "inputs", service.config.max_inputs)
    inputs = embed_inputs(served, texts, payload)
    inputs.normalize = optional(payload, "normalize", bool, True)
    inputs.dimensions = optional(payload, "dimensions", int, minimum=1,
                                 maximum=served.task.dimension)
    vectors, _ = await service.run(served, inputs, sum(map(len, texts)))
    return VectorsResponse(vectors)


async def similarity(request: Request, service: Service, payload: Optional[Dict] = None
                     ) -> Response:
    """Cosine similarity of ``source_sentence`` to each of ``sentences``."""
    if payload is None:
        payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("parameters", "model"))
    served = service.model(payload, ("embed",), "/similarity")
    inputs = payload["inputs"]
    if not isinstance(inputs, dict):
        raise RequestError(400, f"'inputs' must be an object {{\"source_sentence\", "
                                f"\"sentences\"}}, got {json_type(inputs)}", param="inputs")
    check_fields(inputs, ("source_sentence", "sentences"))
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(400, f"'parameters' must be an object, got {json_type(params)}",
                           param="parameters")
    check_fields(params, (), ("prompt_name", *TRUNCATION))
    source, _ = request_texts(inputs["source_sentence"], "source_sentence", 1)
    others, _ = request_texts(inputs["sentences"], "sentences", service.config.max_inputs - 1)
    texts = source + others
    inputs = embed_inputs(served, texts, params)
    inputs.normalize = True
    unit, _ = await service.run(served, inputs, sum(map(len, texts)))  # (1 + n, dim)
    return JSONResponse((unit[1:] @ unit[0]).tolist())


def predict_inputs(value: Any, max_inputs: int) -> Tuple[List[Tuple[str, Optional[str]]], bool]:
    """TEI's /predict inputs as (text, text_pair or None) items, and whether it was one input
    (a string or a [text, text_pair] pair) rather than a batch."""
    if isinstance(value, str) or (isinstance(value, list) and len(value) == 2
                                  and all(isinstance(v, str) for v in value)):
        items = [value] if isinstance(value, str) else [value]
        single = True
    elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        items, single = value, False
    else:
        raise RequestError(400, "'inputs' must be a string, a [text, text_pair] pair or an array "
                                f"of [text] and [text, text_pair] arrays, got {json_type(value)}",
                           param="inputs")
    check_count(len(items), "inputs", max_inputs)
    out = []
    for i, item in enumerate(items):
        parts = [item] if isinstance(item, str) else item
        if not (1 <= len(parts) <= 2 and all(isinstance(p, str) and p for p in parts)):
            raise RequestError(400, f"inputs[{i}] must be [text] or [text, text_pair] with "
                                    "non-empty strings", param="inputs")
        out.append((parts[0], parts[1] if len(parts) == 2 else None))
    return out, single


async def classify_items(service: Service, served: Served,
                         items: List[Tuple[str, Optional[str]]], top_k: int, truncate: bool
                         ) -> List[List[Dict]]:
    """Labels of (text, text_pair or None) items: the texts and the pairs run as two requests,
    at the same time, and come back in the items' order."""
    groups = {False: [i for i, (_, p) in enumerate(items) if p is None],
              True: [i for i, (_, p) in enumerate(items) if p is not None]}
    jobs = {}
    for with_pairs, chosen in groups.items():
        if chosen:
            inputs = ClassifyInputs([items[i][0] for i in chosen],
                                    [items[i][1] for i in chosen] if with_pairs else None,
                                    top_k, truncate)
            chars = sum(len(items[i][0]) + len(items[i][1] or "") for i in chosen)
            jobs[with_pairs] = service.run(served, inputs, chars)
    done = dict(zip(jobs, await asyncio.gather(*jobs.values())))
    out: List[Any] = [None] * len(items)
    for with_pairs, (labels, _) in done.items():
        for i, label in zip(groups[with_pairs], labels):
            out[i] = label
    return out


async def predict(request: Request, service: Service, payload: Optional[Dict] = None
                  ) -> Response:
    if payload is None:
        payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("raw_scores", "model", *TRUNCATION))
    served = service.model(payload, ("classify",), "/predict")
    items, single = predict_inputs(payload["inputs"], service.config.max_inputs)
    if optional(payload, "raw_scores", bool, False):
        raise RequestError(400, "'raw_scores': true is not supported; the scores are the "
                                "model's probabilities", param="raw_scores")
    right_truncation_only(payload, "classification")
    labels = await classify_items(service, served, items, served.task.model.num_labels,
                                  optional(payload, "truncate", bool, True))
    return JSONResponse(labels[0] if single else labels)


async def text_classification(service: Service, payload: Dict[str, Any]) -> Response:
    """The Hugging Face Inference API's text classification, as InferenceClient sends it:
    ``{"inputs": text, "parameters": {"top_k", "function_to_apply"}}``; the answer is a list of
    label lists, one per input."""
    check_fields(payload, ("inputs", "parameters"), ("model",))
    served = service.model(payload, ("classify",), "/")
    params = payload["parameters"] or {}
    if not isinstance(params, dict):
        raise RequestError(400, f"'parameters' must be an object, got {json_type(params)}",
                           param="parameters")
    check_fields(params, (), ("top_k", "function_to_apply"))
    n = served.task.model.num_labels
    top_k = optional(params, "top_k", int, n, minimum=1, maximum=n)
    applied = served.task.model.scores_kind
    function = optional(params, "function_to_apply", str, applied)
    if function != applied:
        raise RequestError(400, f"'function_to_apply' must be {applied!r}, what this model's "
                                f"scores are, got {function!r}", param="function_to_apply")
    texts, _ = request_texts(payload["inputs"], "inputs", service.config.max_inputs)
    labels = await classify_items(service, served, [(t, None) for t in texts], top_k, True)
    return JSONResponse(labels)


async def rerank(request: Request, service: Service, payload: Optional[Dict] = None
                 ) -> Response:
    if payload is None:
        payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, ("query", "texts"), ("raw_scores", "return_text", "model",
                                               *TRUNCATION))
    served = service.model(payload, ("rerank",), "/rerank")
    query, _ = request_texts(payload["query"], "query", 1)
    texts, _ = request_texts(payload["texts"], "texts", service.config.max_inputs)
    right_truncation_only(payload, "reranking")
    return_text = optional(payload, "return_text", bool, False)
    inputs = RerankInputs(query[0], texts, optional(payload, "truncate", bool, True),
                          optional(payload, "raw_scores", bool, False))
    scores, _ = await service.run(served, inputs, len(query[0]) + sum(map(len, texts)))
    return JSONResponse([{"index": i, "score": score, **({"text": texts[i]} if return_text
                                                          else {})}
                         for i, score in ranked(scores, None)])


async def embed_sparse(request: Request, service: Service, payload: Optional[Dict] = None
                       ) -> Response:
    if payload is None:
        payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("prompt_name", "model", *TRUNCATION))
    served = service.model(payload, ("sparse",), "/embed_sparse")
    right_truncation_only(payload, "sparse vectors")
    texts, _ = request_texts(payload["inputs"], "inputs", service.config.max_inputs)
    rows, _ = await service.run(served, embed_inputs(served, texts, payload),
                                sum(map(len, texts)))
    for _, values in rows:
        if not np.isfinite(values).all():
            raise RuntimeError("the model produced non-finite values")
    return VectorsResponse([[{"index": int(i), "value": float(v)} for i, v in zip(idx, val)]
                            for idx, val in rows])


async def tokenize(request: Request, service: Service) -> Response:
    payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("add_special_tokens", "prompt_name", "model"))
    served = service.model(payload, ("embed", "classify", "rerank", "sparse"), "/tokenize")
    texts, _ = request_texts(payload["inputs"], "inputs", service.config.max_inputs)
    name = embed_inputs(served, [], payload).prompt_name
    prompt = served.task.prompt(name) if hasattr(served.task, "prompt") else ""
    texts = [prompt + t for t in texts]
    special = optional(payload, "add_special_tokens", bool, True)
    tokenizer = served.task.tokenizer
    batch = tokenizer.encode_with_offsets(texts, max_length=served.task.max_length)
    out = []
    for text, ids, mask, words, offsets in zip(texts, batch["input_ids"], batch["attention_mask"],
                                               batch["word_ids"], batch["offset_mapping"]):
        tokens = []
        for token_id, real, word, (start, stop) in zip(ids, mask, words, offsets):
            if not real:
                break
            if word < 0:  # a special token
                if special:
                    tokens.append({"id": int(token_id), "text": tokenizer.id_to_token(token_id),
                                   "special": True, "start": None, "stop": None})
            else:
                tokens.append({"id": int(token_id), "text": text[start:stop], "special": False,
                               "start": int(start), "stop": int(stop)})
        out.append(tokens)
    return JSONResponse(out)


MODEL_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "int8": "int8"}


def model_type(task: Any) -> Dict[str, Any]:
    if task.name in ("embed", "sparse"):
        pooling = "splade" if task.name == "sparse" else "+".join(task.encoder.pooling)
        return {"embedding": {"pooling": pooling}}
    if task.name == "classify":
        labels = task.labels
        return {"classifier": {"id2label": {str(i): n for i, n in enumerate(labels)},
                               "label2id": {n: i for i, n in enumerate(labels)}}}
    return {"reranker": {"id2label": {"0": "score"}, "label2id": {"score": 0}}}


async def info(request: Request, service: Service) -> Response:
    served = next(iter(service.models.values()))
    task = served.task
    core = getattr(task, "encoder", None) or task.model
    precision = getattr(getattr(core, "model", core), "precision", "fp32")
    config = service.config
    return JSONResponse({
        "model_id": served.name, "model_sha": None,
        "model_dtype": MODEL_DTYPES.get(precision, precision), "model_type": model_type(task),
        "max_concurrent_requests": config.max_queue, "max_input_length": task.max_length,
        "max_batch_tokens": config.max_batch_tokens, "max_batch_requests": None,
        "max_client_batch_size": config.max_inputs, "auto_truncate": True,
        "tokenization_workers": 1, "version": __version__, "sha": None, "docker_label": None})


async def root(request: Request, service: Service) -> Response:
    """TEI's ``POST /``: the route of the model's task. An embedding model takes /embed's body,
    or /similarity's (``inputs`` an object); a classifier /predict's, or the Inference API's
    ``{"inputs", "parameters"}``; a cross-encoder /rerank's; a SPLADE model /embed_sparse's."""
    payload = await read_json(request, service.config.max_body_bytes)
    served = service.model(payload, ("embed", "classify", "rerank", "sparse"), "/")
    task = served.task.name
    if task == "embed":
        if isinstance(payload.get("inputs"), dict):
            return await similarity(request, service, payload)
        return await embed(request, service, payload)
    if task == "classify":
        if "parameters" in payload:
            return await text_classification(service, payload)
        return await predict(request, service, payload)
    if task == "rerank":
        return await rerank(request, service, payload)
    return await embed_sparse(request, service, payload)


ENDPOINTS: List[Endpoint] = [
    Endpoint("/", "POST", root, "TEI: the route of the model's task (/embed, /similarity, "
             "/predict, /rerank or /embed_sparse); what huggingface_hub's InferenceClient posts.",
             "TEI", s.TEI_ROOT_REQUEST, None),
    Endpoint("/embed", "POST", embed, "TEI: one vector per input, L2-normalized unless "
             "`normalize` is false.", "TEI", s.TEI_EMBED_REQUEST, s.TEI_EMBED_RESPONSE),
    Endpoint("/embed_sparse", "POST", embed_sparse, "TEI: SPLADE sparse vectors, the non-zero "
             "(index, value) pairs of each input.", "TEI", s.TEI_SPARSE_REQUEST,
             s.TEI_SPARSE_RESPONSE),
    Endpoint("/similarity", "POST", similarity, "TEI: cosine similarity of `source_sentence` to "
             "each of `sentences`.", "TEI", s.TEI_SIMILARITY_REQUEST, s.TEI_SIMILARITY_RESPONSE),
    Endpoint("/predict", "POST", predict, "TEI: every label of a sequence classifier, best "
             "first.", "TEI", s.TEI_PREDICT_REQUEST, s.TEI_PREDICT_RESPONSE),
    Endpoint("/rerank", "POST", rerank, "TEI: the texts by relevance to the query "
             "(CrossEncoder.rank), best first.", "TEI", s.TEI_RERANK_REQUEST,
             s.TEI_RERANK_RESPONSE),
    Endpoint("/tokenize", "POST", tokenize, "TEI: the tokens of each input, with their "
             "character offsets.", "TEI", s.TEI_TOKENIZE_REQUEST, s.TEI_TOKENIZE_RESPONSE),
    Endpoint("/info", "GET", info, "TEI: the (first) served model and the server's limits.",
             "TEI", None, s.TEI_INFO),
]
