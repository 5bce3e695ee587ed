"""``pybert serve``: embeddings, classification, reranking and sparse vectors over HTTP, with
the APIs of OpenAI, Hugging Face TEI, Jina and Cohere, and dynamic batching.

A request is validated, then tokenized off the event loop, then queued for its model. Each
model has one batcher, which takes the queue's requests in arrival order and merges them into a
single model call, flushed when the batch holds ``max_batch_tokens`` tokens or when its oldest
request has waited ``max_wait_ms`` (``max_batch_tokens=0``: every request alone). A lone request
that follows a batch of one (a single client, a quiet server) is not held back: it runs at once.
The model runs in its batcher's worker thread (the core releases the GIL and shares the CPUs
between models through its thread budget), so the event loop keeps reading requests meanwhile.
Each request gets its own rows back, in order.

Inputs longer than the model allows are truncated (unless a TEI request says ``truncate:
false``); ``usage.prompt_tokens`` counts the tokens that were run. Everything a client can get
wrong is a 4xx answer in OpenAI's error shape ``{"error": {"message", "type", "param",
"code"}}``.

Modules: ``config`` (the defaults), ``validation`` (request parsing, errors), ``batcher``,
``metrics``, ``tasks`` (what each kind of model does), ``state`` (the served models),
``routes`` (one module per API family), ``openapi``, ``app`` (the Starlette app, ``serve``).

Needs the ``server`` extra: ``pip install "pybert[server]"`` (Starlette and uvicorn, with
uvicorn's C HTTP parser and event loop, httptools and uvloop; orjson for the vector answers).
"""

import importlib
from typing import Any

# The public names and their modules; imported on first use, so that ``pybert.server.config``
# (the CLI's defaults) loads without Starlette.
_EXPORTS = {"create_app": "app", "serve": "app", "Batcher": "batcher", "ServerConfig": "config",
            "Metrics": "metrics", "VectorsResponse": "state", "ClassifyTask": "tasks",
            "EmbedTask": "tasks", "RerankTask": "tasks", "SparseTask": "tasks",
            "detect_task": "tasks", "finite_vectors": "tasks", "load_task": "tasks",
            "RequestError": "validation"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
