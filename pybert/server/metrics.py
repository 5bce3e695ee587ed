"""The server's counters and histograms, in Prometheus' text format (``GET /metrics``)."""

from __future__ import annotations

import collections
import math
from typing import Dict, List, Sequence, Tuple

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

