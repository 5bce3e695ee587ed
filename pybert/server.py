"""``pybert serve``: embeddings and classification over HTTP, with dynamic batching.

A request is validated, then tokenized off the event loop, then queued. One batcher takes the
queue's requests in arrival order and merges them into a single model call, which it flushes when
the batch holds ``max_batch_tokens`` tokens or when its oldest request has waited ``max_wait_ms``
(``max_batch_tokens=0``: every request alone, no batching). A lone request that follows a batch
of one (a single client, a quiet server) is not held back: it runs at once. The model runs in one worker thread
(the core releases the GIL), so the event loop keeps reading requests meanwhile, and the requests
that arrive during a model call form the next batch. Each request gets its own rows back, in order.

Inputs longer than the model allows are truncated to ``max_seq_length`` tokens, as
``SentenceEncoder.encode`` and sentence-transformers do; ``usage.prompt_tokens`` counts the
tokens that were run. Everything a client can get wrong is a 4xx answer with a JSON body
``{"error": {"message", "type", "code"}}``: 400 for malformed JSON, wrong types, empty or unknown
fields, 413 for a body over ``max_body_bytes`` or more than ``max_inputs`` inputs, 404/405 for
unknown paths and methods, 503 when ``max_queue`` requests are already waiting.

Needs the ``server`` extra: ``pip install "pybert[server]"`` (Starlette and uvicorn, with
uvicorn's C HTTP parser and event loop, httptools and uvloop; orjson for the embedding answers).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["ServerConfig", "Metrics", "Batcher", "EmbedTask", "ClassifyTask", "RequestError",
           "create_app", "load_task", "serve"]

log = logging.getLogger("pybert.server")

TASKS = ("embed", "classify")
INLINE_CHARS = 2048  # requests up to this many characters are tokenized on the event loop


@dataclasses.dataclass
class ServerConfig:
    """The limits and batching knobs of ``pybert serve``."""

    max_batch_tokens: int = 8192    # tokens in one model call; 0: one request per call
    max_wait_ms: float = 5.0        # how long the oldest queued request may wait for company
    max_inputs: int = 256           # inputs in one request
    max_body_bytes: int = 1 << 20   # bytes in one request body
    max_queue: int = 1024           # requests waiting for the model; more are answered 503

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_wait_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_inputs", "max_body_bytes", "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class RequestError(Exception):
    """A client error, answered with ``status`` and a JSON body naming what was wrong."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status)


class VectorsResponse(Response):
    """JSON with numpy arrays written by orjson: a float32 vector in C, each value in the
    shortest form that reads back as the same float32. The standard library's encoder spent
    ~170 us on one 384-float vector (float64 reprs, 7.9 KB) against orjson's ~7 us (4.2 KB),
    and was the event loop's largest cost under load. orjson writes NaN as null: callers check
    their vectors are finite (``finite_vectors``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def finite_vectors(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as C-contiguous float32 (what orjson serializes), or a RuntimeError (a 500
    answer) when the model produced NaN or infinity, which JSON cannot carry."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise RuntimeError("the model produced non-finite values")
    return vectors


# ---- metrics ----------------------------------------------------------------------------------

class Histogram:
    """A Prometheus histogram: cumulative bucket counts, sum and count."""

    def __init__(self, buckets: Sequence[float]):
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> List[str]:
        out, total = [], 0
        for bound, n in zip(self.bounds + (math.inf,), self.counts):
            total += n
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            out.append(f'{name}_bucket{{le="{le}"}} {total}')
        return out + [f"{name}_sum {self.sum:.9g}", f"{name}_count {self.count}"]


_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Counters and histograms of the server, in Prometheus' text format. Updated from the event
    loop only, so they need no lock."""

    def __init__(self) -> None:
        self.requests: Dict[Tuple[str, int], int] = collections.Counter()
        self.request_seconds = Histogram(_SECONDS)
        self.inputs_total = 0
        self.tokens_total = 0
        self.batch_requests = Histogram((1, 2, 4, 8, 16, 32, 64, 128))
        self.batch_inputs = Histogram((1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
        self.batch_tokens = Histogram((16, 64, 256, 1024, 4096, 16384, 65536))
        self.queue_seconds = Histogram(_SECONDS)
        self.compute_seconds = Histogram(_SECONDS)
        self.batch_errors_total = 0

    def render(self, queue_depth: int, in_flight: int = 0) -> str:
        lines: List[str] = []

        def metric(name: str, kind: str, help_text: str, values: List[str]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"] + values)

        metric("pybert_requests_total", "counter", "HTTP requests by endpoint and status.",
               [f'pybert_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                for (e, s), n in sorted(self.requests.items())])
        metric("pybert_request_seconds", "histogram", "Time from request to response.",
               self.request_seconds.lines("pybert_request_seconds"))
        metric("pybert_inputs_total", "counter", "Inputs (sentences or pairs) run.",
               [f"pybert_inputs_total {self.inputs_total}"])
        metric("pybert_tokens_total", "counter", "Tokens run, padding excluded.",
               [f"pybert_tokens_total {self.tokens_total}"])
        for name, hist, text in (
                ("pybert_batch_requests", self.batch_requests, "Requests merged per model call."),
                ("pybert_batch_inputs", self.batch_inputs, "Inputs per model call."),
                ("pybert_batch_tokens", self.batch_tokens, "Tokens per model call."),
                ("pybert_queue_seconds", self.queue_seconds,
                 "Time a request waited in the queue."),
                ("pybert_compute_seconds", self.compute_seconds, "Time of one model call.")):
            metric(name, "histogram", text, hist.lines(name))
        metric("pybert_batch_errors_total", "counter", "Model calls that raised.",
               [f"pybert_batch_errors_total {self.batch_errors_total}"])
        metric("pybert_queue_depth", "gauge", "Requests waiting for the model.",
               [f"pybert_queue_depth {queue_depth}"])
        metric("pybert_in_flight", "gauge", "Requests in the model call now running.",
               [f"pybert_in_flight {in_flight}"])
        return "\n".join(lines) + "\n"


# ---- dynamic batching -------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    """One request in the queue: what the task needs to run it and where its result goes."""

    data: Any                    # the task's prepared inputs (e.g. a tokenized batch)
    size: int                    # inputs
    tokens: int                  # tokens, padding excluded
    future: "asyncio.Future[Any]"
    queued_at: float = dataclasses.field(default_factory=time.perf_counter)


class Batcher:
    """Merges queued jobs into model calls that ``run`` makes in one worker thread.

    ``run(datas)`` takes the prepared inputs of several jobs and returns one result per job, in
    order. A batch is flushed when its jobs hold ``max_batch_tokens`` tokens (one job alone may
    hold more) or when its oldest job has waited ``max_wait_ms``.
    """

    def __init__(self, run: Callable[[List[Any]], List[Any]], config: ServerConfig,
                 metrics: Metrics):
        self._run = run
        self.config = config
        self.metrics = metrics
        self._queue: "collections.deque[Job]" = collections.deque()
        self._queued_tokens = 0
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._closing = False
        self._last_batch_requests = 1  # requests in the batch before: > 1 means a busy server
        self._in_flight = 0
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="pybert-model")

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Requests in the model call now running (0 when the model is idle)."""
        return self._in_flight

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def close(self) -> None:
        """Run what is queued, then stop; new submissions are refused from now on."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, data: Any, size: int, tokens: int) -> Any:
        """Queue one request and wait for its result."""
        if self._closing or self._task is None:
            raise RequestError(503, "the server is shutting down")
        if len(self._queue) >= self.config.max_queue:
            raise RequestError(503, f"the server is busy: {len(self._queue)} requests are "
                                    "waiting; retry later")
        job = Job(data, size, tokens, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._queued_tokens += tokens
        self._wakeup.set()
        return await job.future

    async def _serve(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                return  # closing, and the queue is empty
            start = time.perf_counter()
            for job in batch:
                self.metrics.queue_seconds.observe(start - job.queued_at)
            try:
                await self._run_batch(batch)
            except Exception:  # never let the loop die: its requests would wait forever
                log.exception("batch failed")
                for job in batch:
                    _settle(job, error=RuntimeError("the batch failed"))
            finally:
                self._in_flight = 0

    async def _next_batch(self) -> List[Job]:
        while not self._queue:
            if self._closing:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        # Wait for company until the budget is full or the oldest job has waited long enough;
        # but only while requests come together: a lone request after a lone batch (one client,
        # a quiet server) runs at once instead of waiting max_wait_ms for nobody.
        deadline = self._queue[0].queued_at + self.config.max_wait_ms / 1000
        if len(self._queue) == 1 and self._last_batch_requests <= 1:
            deadline = 0.0
        while self._queued_tokens < self.config.max_batch_tokens and not self._closing:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), left)
        batch, tokens = [], 0
        while self._queue and (not batch or
                               tokens + self._queue[0].tokens <= self.config.max_batch_tokens):
            job = self._queue.popleft()
            self._queued_tokens -= job.tokens
            if not job.future.done():  # a cancelled request is dropped
                batch.append(job)
                tokens += job.tokens
        self._last_batch_requests = len(batch)
        return batch

    async def _run_batch(self, batch: List[Job]) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        self._in_flight = len(batch)
        try:
            results = await loop.run_in_executor(self._executor, self._run,
                                                 [job.data for job in batch])
        except Exception:
            self.metrics.batch_errors_total += 1
            if len(batch) == 1:
                log.exception("model call failed")
                _settle(batch[0], error=RuntimeError("the model call failed"))
                return
            # Run each request alone, so that only the one that fails gets an error.
            for job in batch:
                await self._run_batch([job])
            return
        m = self.metrics
        m.compute_seconds.observe(time.perf_counter() - start)
        m.batch_requests.observe(len(batch))
        m.batch_inputs.observe(sum(job.size for job in batch))
        m.batch_tokens.observe(sum(job.tokens for job in batch))
        m.inputs_total += sum(job.size for job in batch)
        m.tokens_total += sum(job.tokens for job in batch)
        for job, result in zip(batch, results):
            _settle(job, result=result)


def _settle(job: Job, result: Any = None, error: Optional[BaseException] = None) -> None:
    if job.future.done():  # the request was cancelled meanwhile
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


# ---- request validation -----------------------------------------------------------------------

def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "number", float: "number", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


async def read_json(request: Request, limit: int) -> Dict[str, Any]:
    """The request body as a JSON object; 413 past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared!r} is not a byte count")
        if int(declared) > limit:
            raise RequestError(413, f"the request body has {declared} bytes; the limit is "
                                    f"{limit} (--max-body-bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request body is over the limit of {limit} bytes "
                                    "(--max-body-bytes)")
    if not body:
        raise RequestError(400, "the request body is empty; expected a JSON object")
    try:
        payload = json.loads(bytes(body))
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, absurd nesting
        raise RequestError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"the request body must be a JSON object, got "
                                f"{_json_type(payload)}")
    return payload


def check_fields(payload: Dict[str, Any], required: str, allowed: Sequence[str]) -> None:
    if required not in payload:
        raise RequestError(400, f"missing field {required!r}")
    unknown = sorted(set(payload) - {required, *allowed})
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; expected "
                                + ", ".join(repr(f) for f in (required, *allowed)))


def request_texts(value: Any, field: str, max_inputs: int, *, pairs: bool = False
                  ) -> Tuple[List[str], Optional[List[str]]]:
    """A string or a non-empty list of non-empty strings; with ``pairs``, the list may instead
    hold [text, text_pair] arrays (all of them, when the first is one). Returns (texts,
    text_pairs or None)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RequestError(400, f"{field!r} must be a string or an array of strings"
                                + (" or of [text, text_pair] arrays" if pairs else "")
                                + f", got {_json_type(value)}")
    if not items:
        raise RequestError(400, f"{field!r} is an empty array; send at least one input")
    if len(items) > max_inputs:
        raise RequestError(413, f"{field!r} has {len(items)} inputs; one request may send at "
                                f"most {max_inputs} (--max-inputs): split it")
    with_pairs = pairs and isinstance(items[0], list)
    for i, item in enumerate(items):
        if with_pairs:
            if not (isinstance(item, list) and len(item) == 2
                    and all(isinstance(part, str) for part in item)):
                kinds = (", ".join(_json_type(part) for part in item)
                         if isinstance(item, list) else "")
                raise RequestError(400, f"{field}[{i}] must be a [text, text_pair] array of "
                                        f"two strings, as {field}[0] is; got "
                                        f"{_json_type(item)} [{kinds}]")
        elif not isinstance(item, str):
            raise RequestError(400, f"{field}[{i}] must be a string, got {_json_type(item)}")
        if "" in (item if with_pairs else [item]):
            raise RequestError(400, f"{field}[{i}] is or holds an empty string")
    if with_pairs:
        return [item[0] for item in items], [item[1] for item in items]
    return list(items), None


# ---- tasks ------------------------------------------------------------------------------------

class EmbedTask:
    """Sentence embeddings with a SentenceEncoder: each request's sentences are tokenized when
    it arrives; a batch joins the requests' token rows and runs the model once."""

    name = "embed"

    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.dimension = encoder.get_sentence_embedding_dimension()

    def prepare(self, texts: List[str]) -> Tuple[Dict[str, np.ndarray], List[int]]:
        """Token ids of one request, and the token count of each input."""
        batch = self.encoder.tokenize(texts)
        return batch, batch["attention_mask"].sum(axis=1).tolist()

    def run(self, batches: List[Dict[str, np.ndarray]]) -> List[np.ndarray]:
        """(n_i, dim) vectors per request, from one model call on all of them."""
        vectors = self.encoder.encode_tokens(self.encoder.tokenizer.concat(batches))
        ends = np.cumsum([b["input_ids"].shape[0] for b in batches])
        return np.split(vectors, ends[:-1])

    def info(self) -> Dict[str, Any]:
        return {"dimension": self.dimension, "max_seq_length": self.encoder.max_seq_length,
                "pooling": self.encoder.pooling, "normalize": self.encoder.normalize}


@dataclasses.dataclass
class ClassifyInputs:
    texts: List[str]
    text_pairs: Optional[List[str]]
    top_k: int


class ClassifyTask:
    """Sequence classification (and cross-encoder scoring of pairs) with a
    BertForSequenceClassification: a batch runs ``predict`` once on all its requests' inputs
    (once for the texts and once for the pairs when a batch holds both kinds)."""

    name = "classify"

    def __init__(self, model: Any):
        if model.tokenizer is None:
            raise ValueError("the classifier's directory has no tokenizer (tokenizer.json or "
                             "vocab.txt); pybert serve needs one")
        self.model = model
        # Longer inputs are truncated, to what the tokenizer and the position table allow.
        positions = model.config.max_position_embeddings
        limit = model.tokenizer.model_max_length
        self.max_length = positions if limit is None else min(limit, positions)

    def prepare(self, inputs: ClassifyInputs) -> Tuple[ClassifyInputs, List[int]]:
        batch = self.model.tokenizer(inputs.texts, inputs.text_pairs, max_length=self.max_length)
        return inputs, batch["attention_mask"].sum(axis=1).tolist()

    def run(self, requests: List[ClassifyInputs]) -> List[List[List[Dict[str, Any]]]]:
        results: List[Any] = [None] * len(requests)
        for with_pairs in (False, True):
            chosen = [i for i, r in enumerate(requests) if (r.text_pairs is not None) == with_pairs]
            if not chosen:
                continue
            texts = [t for i in chosen for t in requests[i].texts]
            pairs = [p for i in chosen for p in requests[i].text_pairs] if with_pairs else None
            labels = iter(self.model.predict(texts, pairs, top_k=None, max_length=self.max_length,
                                             batch_size=len(texts)))
            for i in chosen:  # predict sorts labels best first: a request's top_k is a prefix
                results[i] = [next(labels)[:requests[i].top_k] for _ in requests[i].texts]
        return results

    def info(self) -> Dict[str, Any]:
        return {"num_labels": self.model.num_labels, "max_length": self.max_length,
                "labels": [self.model.label(i) for i in range(self.model.num_labels)]}


def load_task(model_dir: str, task: str = "embed", num_threads: Optional[int] = None,
              precision: str = "fp32") -> Any:
    """The EmbedTask (a sentence-transformers or Hugging Face directory) or ClassifyTask (a
    BertForSequenceClassification directory) of a model directory."""
    if task == "embed":
        from .encoder import SentenceEncoder

        return EmbedTask(SentenceEncoder(model_dir, num_threads=num_threads, precision=precision))
    if task == "classify":
        from .heads import BertForSequenceClassification

        return ClassifyTask(BertForSequenceClassification.from_pretrained(
            model_dir, num_threads=num_threads, precision=precision))
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


# ---- the app ----------------------------------------------------------------------------------

def create_app(task: Any, config: Optional[ServerConfig] = None, model_name: str = "pybert"
               ) -> Starlette:
    """The Starlette app of a task (see load_task). Its lifespan starts the batcher and, at
    shutdown, runs what is still queued before stopping."""
    config = config or ServerConfig()
    metrics = Metrics()
    batcher = Batcher(task.run, config, metrics)

    def endpoint(path: str, handler: Callable[[Request], Any], needs: Optional[str] = None):
        """``handler`` with the errors turned into JSON answers and the request counted."""
        async def wrapped(request: Request) -> Response:
            start = time.perf_counter()
            try:
                if needs is not None and task.name != needs:
                    raise RequestError(404, f"{path} needs a server started with --task {needs}; "
                                            f"this one runs --task {task.name}")
                response = await handler(request)
            except RequestError as e:
                response = error_response(e.status, e.message)
            except Exception:
                log.exception("request to %s failed", path)
                response = error_response(500, "internal error; the server log has the details")
            metrics.requests[(path, response.status_code)] += 1
            metrics.request_seconds.observe(time.perf_counter() - start)
            return response
        return wrapped

    async def run_task(inputs: Any, chars: int) -> Tuple[Any, List[int]]:
        """Prepare (tokenize), queue, wait: the result and the token counts. Requests of more
        than INLINE_CHARS characters are tokenized in a thread, off the event loop; smaller ones
        take less time to tokenize than a thread hop does."""
        if chars <= INLINE_CHARS:
            data, tokens = task.prepare(inputs)
        else:
            data, tokens = await asyncio.to_thread(task.prepare, inputs)
        result = await batcher.submit(data, len(tokens), sum(tokens))
        return result, tokens

    async def openai_embeddings(request: Request) -> Response:
        payload = await read_json(request, config.max_body_bytes)
        check_fields(payload, "input", ("model", "encoding_format", "dimensions", "user"))
        texts, _ = request_texts(payload["input"], "input", config.max_inputs)
        encoding = payload.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise RequestError(400, f"'encoding_format' must be 'float' or 'base64', got "
                                    f"{encoding!r}")
        dims = payload.get("dimensions")
        if dims is not None and dims != task.dimension:
            raise RequestError(400, f"'dimensions' must be {task.dimension} (this model's "
                                    f"size) or absent, got {dims!r}")
        for field in ("model", "user"):
            if not isinstance(payload.get(field, ""), str):
                raise RequestError(400, f"{field!r} must be a string, got "
                                        f"{_json_type(payload[field])}")
        vectors, tokens = await run_task(texts, sum(map(len, texts)))
        vectors = finite_vectors(vectors)
        data = [{"object": "embedding", "index": i,
                 "embedding": (base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                               if encoding == "base64" else v)}
                for i, v in enumerate(vectors)]
        return VectorsResponse({"object": "list", "data": data,
                                "model": payload.get("model") or model_name,
                                "usage": {"prompt_tokens": sum(tokens),
                                          "total_tokens": sum(tokens)}})

    async def embed(request: Request) -> Response:
        payload = await read_json(request, config.max_body_bytes)
        check_fields(payload, "inputs", ())
        texts, _ = request_texts(payload["inputs"], "inputs", config.max_inputs)
        vectors, _ = await run_task(texts, sum(map(len, texts)))
        return VectorsResponse(finite_vectors(vectors))

    async def classify(request: Request) -> Response:
        payload = await read_json(request, config.max_body_bytes)
        check_fields(payload, "inputs", ("top_k",))
        texts, pairs = request_texts(payload["inputs"], "inputs", config.max_inputs, pairs=True)
        n = task.model.num_labels
        top_k = payload.get("top_k", 1)
        top_k = n if top_k is None else top_k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= n:
            raise RequestError(400, f"'top_k' must be an integer from 1 to {n} (the number of "
                                    f"labels) or null for all, got {payload.get('top_k')!r}")
        labels, _ = await run_task(ClassifyInputs(texts, pairs, top_k),
                                   sum(map(len, texts + (pairs or []))))
        return JSONResponse(labels)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "task": task.name, "model": model_name,
                             "queue_depth": batcher.depth, **task.info()})

    async def prometheus(request: Request) -> Response:
        return PlainTextResponse(metrics.render(batcher.depth, batcher.in_flight),
                                 media_type="text/plain; version=0.0.4")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return error_response(status, f"{request.method} {request.url.path}: "
                                      f"{getattr(exc, 'detail', 'error')}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        batcher.start()
        yield
        await batcher.close()

    routes = [
        Route("/v1/embeddings", endpoint("/v1/embeddings", openai_embeddings, "embed"),
              methods=["POST"]),
        Route("/embed", endpoint("/embed", embed, "embed"), methods=["POST"]),
        Route("/classify", endpoint("/classify", classify, "classify"), methods=["POST"]),
        Route("/health", endpoint("/health", health), methods=["GET"]),
        Route("/metrics", endpoint("/metrics", prometheus), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error})
    app.state.batcher, app.state.metrics = batcher, metrics
    return app


def serve(model_dir: str, task: str = "embed", host: str = "127.0.0.1", port: int = 8000,
          config: Optional[ServerConfig] = None, num_threads: Optional[int] = None,
          precision: str = "fp32", log_level: str = "info",
          graceful_timeout: float = 30.0) -> None:
    """Load the model and serve it until SIGINT/SIGTERM; in-flight requests are answered
    before the process exits (within ``graceful_timeout`` seconds)."""
    import uvicorn

    app = create_app(load_task(model_dir, task, num_threads, precision), config,
                     model_name=os.path.basename(os.path.normpath(model_dir)))
    # uvicorn handles SIGINT/SIGTERM itself, and once it has shut down gracefully it raises the
    # signal again for the handler it found: make that one a no-op, so the process exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=graceful_timeout)
