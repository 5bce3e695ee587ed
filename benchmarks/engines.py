"""Each benchmarked engine in a process of its own, driven by the benchmark's process.

Why: engines in one process disturb each other beyond what the pause before a turn cures.
Measured in one process after OpenVINO and NNCF had run there: pybert's all-MiniLM-L6-v2 1x16
read 2.60 ms where the same call takes 1.74 ms in a process of its own (a heap, thread pools and
libraries shared with three other runtimes). A user serving a model runs one engine a process,
so each engine here gets one too, and the turns (pause, untimed call, timed calls) run inside
the engine's process: the pipe between the processes is outside every timed call.

An engine is named by a spec, a plain tuple the child rebuilds it from:

    ("pybert", checkpoint_dir, precision, threads[, tree])
                                                       pybert.BertModel, last_hidden_state;
                                                       with a tree: that checkout's pybert
    ("torch", checkpoint_dir, autocast_bf16, threads) transformers BertModel, sdpa attention
    ("ort", onnx_path, threads)                        ONNX Runtime CPU session
    ("openvino", ir_xml_path, precision, threads)      OpenVINO CPU plugin, compiled as
                                                       openvino_models.compile_model does
    ("fma_peak", threads)                              pybert's fp32 FMA peak: a "call"
                                                       measures GFLOP/s instead of running a model
    ("gemm_peak", threads)                             the fastest fp32 GEMM (gemm_rate.py),
                                                       GFLOP/s as fma_peak

Every model engine is a function of the feed {input_ids, attention_mask, token_type_ids}
(int64 arrays, batch x seq) returning last_hidden_state (batch x seq x hidden, float32).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback


def _build(spec):
    """The engine of ``spec`` in this process: (call(feed) -> array, info() -> str: what it
    ran, e.g. OpenVINO's kernels or the folder of the pybert package imported)."""
    kind = spec[0]
    if kind == "pybert":
        import pybert

        _, path, precision, threads = spec[:4]
        model = pybert.BertModel.from_pretrained(path, num_threads=threads, precision=precision)

        def call(feed):
            return model(feed["input_ids"], feed["attention_mask"],
                         feed["token_type_ids"]).last_hidden_state
        return call, lambda: os.path.dirname(pybert.__file__)
    if kind == "torch":
        import torch
        import transformers

        _, path, autocast, threads = spec
        torch.set_num_threads(threads)
        model = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()

        def call(feed):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                        enabled=autocast):
                out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
            return out.last_hidden_state.float().numpy()
        return call, lambda: ""
    if kind == "ort":
        import onnxruntime as ort

        _, path, threads = spec
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return (lambda feed: session.run(None, feed)[0]), lambda: ""
    if kind == "openvino":
        import openvino as ov

        import openvino_models

        _, xml, precision, threads = spec
        compiled = openvino_models.compile_model(ov.Core().read_model(xml), precision, threads)
        request = compiled.create_infer_request()
        return (lambda feed: request.infer(feed)[0]), lambda: openvino_models.kernels(compiled)
    if kind == "fma_peak":
        import pybert

        threads = spec[1]
        return (lambda feed: pybert._core.measure_fma_peak(threads=threads)), lambda: ""
    if kind == "gemm_peak":
        import gemm_rate

        runs = gemm_rate.products(spec[1])
        return (lambda feed: gemm_rate.best_gflops(runs)), lambda: ""
    raise ValueError(f"unknown engine kind {kind!r}; expected pybert, torch, ort, openvino, "
                     "fma_peak or gemm_peak")


def _serve(conn, spec, bench_dir):
    """The child's loop: build the engine, then answer the parent's requests until "stop"."""
    sys.path.insert(0, bench_dir)
    if spec[0] == "pybert" and len(spec) > 4:  # another checkout's pybert, imported first
        sys.path.insert(0, spec[4])
    try:
        call, info = _build(spec)
        conn.send(("ok", None))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    feed = None
    while True:
        request, *args = conn.recv()
        try:
            if request == "stop":
                return
            if request == "feed":  # the shape's inputs; answers the engine's output on them
                feed = args[0]
                reply = call(feed)
            elif request == "run":  # one call on the given feed, not kept
                reply = call(args[0])
            elif request == "turn":
                reply = _turn(call, feed, *args)
            elif request == "info":
                reply = info()
            else:
                raise ValueError(f"unknown request {request!r}")
            conn.send(("ok", reply))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def _turn(call, feed, pause_s: float, budget_s: float, min_reps: int, max_reps: int) -> list:
    """One turn: a pause (the previous engine's spinning threads go to sleep), one untimed call
    (it pays for whatever the previous engine left in the shared caches), then timed calls until
    ``min_reps`` and ``budget_s`` are both reached, at most ``max_reps``. -> [seconds per call];
    for fma_peak and gemm_peak -> [GFLOP/s per measurement]."""
    time.sleep(pause_s)
    first = call(feed)
    if isinstance(first, float):  # fma_peak, gemm_peak: the measurement is the call's result
        return [first] + [call(feed) for _ in range(min_reps - 1)]
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s
                                    and len(times) < max_reps):
        t0 = time.perf_counter()
        call(feed)
        times.append(time.perf_counter() - t0)
    return times


class Engine:
    """A handle on one engine's process. ``Engine(spec)`` starts it; ``ready()`` waits until
    the engine is built (an error in the child is raised there with the child's traceback)."""

    _context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited

    def __init__(self, spec):
        self.spec = spec
        self._conn, child = self._context.Pipe()
        bench_dir = os.path.dirname(os.path.abspath(__file__))
        self._process = self._context.Process(target=_serve, args=(child, spec, bench_dir),
                                              daemon=True)
        self._process.start()
        child.close()

    def ready(self):
        """Wait until the child has built the engine."""
        self._reply()
        return self

    def _reply(self):
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"engine {self.spec[:2]} failed in its process:\n{value}")
        return value

    def _ask(self, *request):
        self._conn.send(request)
        return self._reply()

    def set_feed(self, feed: dict):
        """Make ``feed`` the inputs of the following turns; -> the engine's output on it."""
        return self._ask("feed", feed)

    def run(self, feed: dict):
        """One call on ``feed`` (not kept for the turns) -> its output."""
        return self._ask("run", feed)

    def turn(self, pause_s: float, budget_s: float, min_reps: int, max_reps: int) -> list:
        return self._ask("turn", pause_s, budget_s, min_reps, max_reps)

    def info(self) -> str:
        return self._ask("info")

    def close(self):
        if self._process.is_alive():
            self._conn.send(("stop",))
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()


def start(specs: dict) -> dict:
    """{name: spec} -> {name: Engine}, the processes started together (their imports and model
    loads overlap)."""
    engines = {name: Engine(spec) for name, spec in specs.items()}
    try:
        return {name: engine.ready() for name, engine in engines.items()}
    except BaseException:
        close(engines)
        raise


def close(engines: dict):
    for engine in engines.values():
        engine.close()
