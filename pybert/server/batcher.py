"""Dynamic batching: queued requests merged into one model call, run in a worker thread."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from typing import Any, Callable, List, Optional

from .config import ServerConfig
from .metrics import Metrics
from .validation import RequestError

log = logging.getLogger("pybert.server")


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

