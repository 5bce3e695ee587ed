"""Rerank APIs of a cross-encoder: Jina's ``POST /v1/rerank`` and Cohere's ``POST /v2/rerank``
(TEI's ``/rerank`` is in ``tei``). Scores are ``CrossEncoder.predict``'s, in
``CrossEncoder.rank``'s order: best first, ties in the documents' order."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..state import Endpoint, Served, Service
from ..tasks import RerankInputs, finite_vectors
from ..validation import RequestError, check_fields, documents, json_type, optional, read_json
from . import schemas as s


def ranked(scores: np.ndarray, top_n: Optional[int]) -> List[Tuple[int, float]]:
    """(index, score) of the ``top_n`` best documents (None: all), best first, ties in input
    order, as ``CrossEncoder.rank`` sorts."""
    scores = finite_vectors(scores)
    order = np.argsort(-scores, kind="stable")[:top_n]
    return [(int(i), float(scores[i])) for i in order]


def results(payload: Dict[str, Any], docs: List[str], scores: np.ndarray,
            with_documents: bool) -> List[Dict[str, Any]]:
    """Jina's and Cohere's ``results``: index, relevance_score and (when asked) the document."""
    return [{"index": i, "relevance_score": score,
             **({"document": {"text": docs[i]}} if with_documents else {})}
            for i, score in ranked(scores, payload.get("top_n"))]


async def _scores(request: Request, service: Service, route: str, allowed: Tuple[str, ...]
                  ) -> Tuple[Dict[str, Any], Served, List[str], np.ndarray, int]:
    """The request, its model, documents, their scores and the tokens run."""
    payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, ("query", "documents"), ("model", "top_n", "return_documents",
                                                   *allowed))
    served = service.model(payload, ("rerank",), route)
    query = payload["query"]
    if not isinstance(query, str) or not query:
        raise RequestError(400, f"'query' must be a non-empty string, got {json_type(query)}",
                           param="query")
    docs = documents(payload["documents"], "documents", service.config.max_inputs)
    optional(payload, "top_n", int, minimum=1)
    scores, tokens = await service.run(served, RerankInputs(query, docs),
                                       len(query) + sum(map(len, docs)))
    return payload, served, docs, scores, sum(tokens)


async def jina_rerank(request: Request, service: Service) -> Response:
    payload, served, docs, scores, tokens = await _scores(request, service, "/v1/rerank", ())
    with_documents = optional(payload, "return_documents", bool, True)  # Jina's default
    return JSONResponse({"model": served.name,
                         "results": results(payload, docs, scores, with_documents),
                         "usage": {"total_tokens": tokens, "prompt_tokens": tokens}})


async def cohere_rerank(request: Request, service: Service) -> Response:
    payload, served, docs, scores, tokens = await _scores(request, service, "/v2/rerank",
                                                          ("max_tokens_per_doc",))
    limit = optional(payload, "max_tokens_per_doc", int, minimum=1)
    if limit is not None and limit < served.task.max_length:
        raise RequestError(400, f"'max_tokens_per_doc' below the model's length "
                                f"({served.task.max_length} tokens) is not supported; omit it",
                           param="max_tokens_per_doc")
    with_documents = optional(payload, "return_documents", bool, False)  # Cohere's default
    return JSONResponse({"id": str(uuid.uuid4()),
                         "results": results(payload, docs, scores, with_documents),
                         "meta": {"api_version": {"version": "2"},
                                  "billed_units": {"search_units": 1},
                                  "tokens": {"input_tokens": tokens, "output_tokens": 0}}})


ENDPOINTS: List[Endpoint] = [
    Endpoint("/v1/rerank", "POST", jina_rerank, "Jina rerank: the documents by relevance to "
             "the query, best first, with their text unless `return_documents` is false.",
             "Rerank", s.JINA_RERANK_REQUEST, s.JINA_RERANK_RESPONSE),
    Endpoint("/v2/rerank", "POST", cohere_rerank, "Cohere rerank (v2): the documents by "
             "relevance to the query, best first.", "Rerank", s.COHERE_RERANK_REQUEST,
             s.COHERE_RERANK_RESPONSE),
]
