"""What the routes share: the served models (each with its task and batcher), running a request
through a model's batcher, the route table's entries and the JSON answers of vectors."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .batcher import Batcher
from .config import ServerConfig
from .metrics import Metrics
from .validation import RequestError, json_type

INLINE_CHARS = 2048  # requests up to this many characters are tokenized on the event loop


class VectorsResponse(Response):
    """JSON with numpy arrays written by orjson: a float32 vector in C, each value in the
    shortest form that reads back as the same float32. The standard library's encoder spent
    ~170 us on one 384-float vector (float64 reprs, 7.9 KB) against orjson's ~7 us (4.2 KB),
    and was the event loop's largest cost under load. orjson writes NaN as null: callers check
    their vectors are finite (``tasks.finite_vectors``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclasses.dataclass
class Endpoint:
    """One route: its handler and what ``/openapi.json`` says about it (JSON schemas)."""

    path: str
    method: str
    handler: Callable[[Request, "Service"], Awaitable[Response]]
    summary: str
    tag: str
    request: Optional[Dict[str, Any]] = None   # the JSON body's schema; None: no body
    response: Optional[Dict[str, Any]] = None  # the 200 answer's JSON schema
    media_type: str = "application/json"


@dataclasses.dataclass
class Served:
    """A model the server runs, under its served name."""

    name: str
    task: Any        # EmbedTask, ClassifyTask, RerankTask or SparseTask
    batcher: Batcher
    created: int     # unix time it was loaded (OpenAI's model object has it)


class Service:
    """The served models, in the order given: for each task the first is the default of the
    routes that take that task and get no ``model`` field."""

    def __init__(self, tasks: Dict[str, Any], config: ServerConfig, metrics: Metrics):
        if not tasks:
            raise ValueError("pybert serve needs at least one model")
        self.config = config
        self.metrics = metrics
        now = int(time.time())
        self.models = {name: Served(name, task, Batcher(task.run, config, metrics), now)
                       for name, task in tasks.items()}

    def start(self) -> None:
        for served in self.models.values():
            served.batcher.start()

    async def close(self) -> None:
        await asyncio.gather(*(served.batcher.close() for served in self.models.values()))

    @property
    def depth(self) -> int:
        return sum(s.batcher.depth for s in self.models.values())

    @property
    def in_flight(self) -> int:
        return sum(s.batcher.in_flight for s in self.models.values())

    def listing(self) -> str:
        return ", ".join(f"{s.name} ({s.task.name})" for s in self.models.values())

    def lookup(self, name: str) -> Served:
        """The model served as ``name``, or OpenAI's 404 ``model_not_found``."""
        served = self.models.get(name)
        if served is None:
            raise RequestError(404, f"The model `{name}` does not exist: this server serves "
                                    f"{self.listing()} (GET /v1/models)",
                               param="model", code="model_not_found")
        return served

    def model(self, payload: Dict[str, Any], tasks: Sequence[str], route: str) -> Served:
        """The model a request names in its ``model`` field, which must run one of ``tasks``;
        without the field, the first model that does."""
        name = payload.get("model")
        if name is not None and not isinstance(name, str):
            raise RequestError(400, f"'model' must be a string, got {json_type(name)}",
                               param="model")
        if name:
            served = self.lookup(name)
            if served.task.name not in tasks:
                raise RequestError(400, f"{route} needs a model of task {' or '.join(tasks)}; "
                                        f"`{name}` is a {served.task.name} model",
                                   param="model", code="model_task_mismatch")
            return served
        for served in self.models.values():
            if served.task.name in tasks:
                return served
        raise RequestError(404, f"{route} needs a model of task {' or '.join(tasks)} (--task "
                                f"{tasks[0]}, or --model NAME={tasks[0]}:DIR); this server "
                                f"serves {self.listing()}", code="model_not_found")

    async def run(self, served: Served, inputs: Any, chars: int) -> Tuple[Any, List[int]]:
        """Prepare (tokenize), check the token budget, queue, wait: the result and the token
        count of each input. Requests of more than INLINE_CHARS characters are tokenized in a
        thread, off the event loop; smaller ones take less time to tokenize than a thread hop
        does."""
        task = served.task
        if chars <= INLINE_CHARS:
            data, tokens = task.prepare(inputs)
        else:
            data, tokens = await asyncio.to_thread(task.prepare, inputs)
        total = sum(tokens)
        if total > self.config.max_request_tokens:
            raise RequestError(413, f"the request holds {total} tokens; one request may hold at "
                                    f"most {self.config.max_request_tokens} "
                                    "(--max-request-tokens): split it")
        result = await served.batcher.submit(data, len(tokens), total)
        return result, tokens
