"""pybert's own routes: ``POST /classify``, ``GET /health``, ``GET /metrics``."""

from __future__ import annotations

from typing import List

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..state import Endpoint, Service
from ..tasks import ClassifyInputs
from ..validation import check_fields, optional, read_json, request_texts
from . import schemas as s


async def classify(request: Request, service: Service) -> Response:
    payload = await read_json(request, service.config.max_body_bytes)
    check_fields(payload, "inputs", ("top_k", "model"))
    served = service.model(payload, ("classify",), "/classify")
    texts, pairs = request_texts(payload["inputs"], "inputs", service.config.max_inputs,
                                 pairs=True)
    n = served.task.model.num_labels
    top_k = n if "top_k" in payload and payload["top_k"] is None else \
        optional(payload, "top_k", int, 1, minimum=1, maximum=n)
    labels, _ = await service.run(served, ClassifyInputs(texts, pairs, top_k),
                                  sum(map(len, texts + (pairs or []))))
    return JSONResponse(labels)


async def health(request: Request, service: Service) -> Response:
    first = next(iter(service.models.values()))
    return JSONResponse({"status": "ok", "task": first.task.name, "model": first.name,
                         "models": [{"name": m.name, "task": m.task.name}
                                    for m in service.models.values()],
                         "queue_depth": service.depth, **first.task.info()})


async def prometheus(request: Request, service: Service) -> Response:
    return PlainTextResponse(service.metrics.render(service.depth, service.in_flight),
                             media_type="text/plain; version=0.0.4")


ENDPOINTS: List[Endpoint] = [
    Endpoint("/classify", "POST", classify, "pybert: the `top_k` labels of each text or "
             "[text, text_pair] pair (default 1; null: all), best first.", "pybert",
             s.CLASSIFY_REQUEST, s.CLASSIFY_RESPONSE),
    Endpoint("/health", "GET", health, "Liveness, the served models and the queue; open "
             "without an API key.", "pybert", None, s.HEALTH),
    Endpoint("/metrics", "GET", prometheus, "Prometheus metrics: requests, batches, tokens, "
             "queue and compute time.", "pybert", None, {"type": "string"},
             "text/plain"),
]
