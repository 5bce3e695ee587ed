"""The fastest fp32 matrix product this machine runs: the best of torch.mm (MKL) and pybert's
packed GEMM on large products, in GFLOP/s. No fp32 model call can run its matrix-product flops
faster, so with the FMA peak it bounds what a speed bar can ask of fp32 code on this machine
(bench.py's roofline table, retrieval.py)."""

from __future__ import annotations

import time

import numpy as np

# (m, n, k): large and square-ish, the most favourable for a GEMM, and BERT-base's FFN1 on
# 4096 tokens.
SHAPES = [(4096, 2048, 2048), (4096, 3072, 768)]


def products(threads: int):
    """{(library, (m, n, k)): (callable of one (m, k) @ (k, n) fp32 product, its flops)}."""
    import pybert
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    runs = {}
    for m, n, k in SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32)
        ta, tw = torch.from_numpy(a), torch.from_numpy(w).t().contiguous()
        flops = 2 * m * n * k
        runs[("torch.mm", (m, n, k))] = (lambda ta=ta, tw=tw: torch.mm(ta, tw), flops)
        # packs w in each call: ~2% of the product's time at these m
        runs[("pybert", (m, n, k))] = (
            lambda a=a, w=w: pybert._core.ops.linear(a, w, num_threads=threads), flops)
    return runs


def best_gflops(runs, timed: int = 2) -> float:
    """One measurement: each product once untimed (after the previous one's threads stop
    spinning), then ``timed`` times; the fastest call's GFLOP/s."""
    best = 0.0
    for run, flops in runs.values():
        time.sleep(0.1)
        run()
        for _ in range(timed):
            start = time.perf_counter()
            run()
            best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def describe() -> str:
    return " and ".join("x".join(map(str, s)) for s in SHAPES)
