"""OpenAI's embeddings API: ``POST /v1/embeddings``, ``GET /v1/models``, ``GET /v1/models/{id}``;
what the ``openai`` client, LangChain's ``OpenAIEmbeddings`` and LlamaIndex's ``OpenAIEmbedding``
call."""

from __future__ import annotations

import base64
from typing import Any, Dict, List

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..state import Endpoint, Served, Service, VectorsResponse
from ..tasks import EmbedInputs
from ..validation import check_fields, choice, optional, read_json, request_texts
from . import schemas as s


def model_object(served: Served) -> Dict[str, Any]:
    return {"id": served.name, "object": "model", "created": served.created,
            "owned_by": "pybert"}


async def embeddings(request: Request, service: Service) -> Response:
    payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "input", ("model", "encoding_format", "dimensions", "user"))
    served = service.model(payload, ("embed",), "/v1/embeddings")
    task = served.task
    texts, _ = request_texts(payload["input"], "input", service.config.max_inputs)
    encoding = choice(payload, "encoding_format", ("float", "base64"), "float")
    dims = optional(payload, "dimensions", int, minimum=1, maximum=task.dimension)
    optional(payload, "user", str)
    vectors, tokens = await service.run(served, EmbedInputs(texts, dimensions=dims),
                                        sum(map(len, texts)))
    data = [{"object": "embedding", "index": i,
             "embedding": (base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                           if encoding == "base64" else v)}
            for i, v in enumerate(vectors)]
    return VectorsResponse({"object": "list", "data": data, "model": served.name,
                            "usage": {"prompt_tokens": sum(tokens), "total_tokens": sum(tokens)}})


async def list_models(request: Request, service: Service) -> Response:
    return JSONResponse({"object": "list",
                         "data": [model_object(m) for m in service.models.values()]})


async def get_model(request: Request, service: Service) -> Response:
    return JSONResponse(model_object(service.lookup(request.path_params["model"])))


ENDPOINTS: List[Endpoint] = [
    Endpoint("/v1/embeddings", "POST", embeddings,
             "OpenAI embeddings: one vector per input. `dimensions` below the model's size "
             "keeps the first values, re-normalized (Matryoshka).", "OpenAI",
             s.OPENAI_EMBEDDINGS_REQUEST, s.OPENAI_EMBEDDINGS_RESPONSE),
    Endpoint("/v1/models", "GET", list_models, "The served models, in OpenAI's shape.",
             "OpenAI", None, s.OPENAI_MODEL_LIST),
    Endpoint("/v1/models/{model:path}", "GET", get_model,
             "One served model; 404 `model_not_found` for any other name.", "OpenAI", None,
             s.OPENAI_MODEL),
]
