"""Sentences per second of pybert.dask.embed on a LocalCluster of 1 and of 2 worker processes.

    python benchmarks/dask_throughput.py --write docs/benchmarks.md

Each cluster has 1 thread per worker and is warmed up first (every worker has loaded the model),
so the figure is steady-state embedding, not start-up. Two thread settings per cluster: the
default budget (usable CPUs // tasks at once on the host, so 1 worker gets every CPU) and a fixed
1 thread per task (pure scaling with workers). A single-process SentenceEncoder.encode with all
usable CPUs is the baseline. Writes only its own section of the --write file, between markers.
Not a test: on a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from docsection import write_section

START, END = "<!-- dask_throughput:start -->", "<!-- dask_throughput:end -->"
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "pybert", "data", "sample_corpus.txt")


def corpus(n: int, seed: int = 0) -> list:
    """``n`` sentences: the sample corpus's lines, shuffled word-for-word and cut at random
    lengths, so that no two batches are the same."""
    with open(SAMPLE, encoding="utf-8") as f:
        words = f.read().split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=rng.integers(4, 40))) for _ in range(n)]


def time_cluster(workers: int, texts: list, model: str, num_threads, partitions: int) -> float:
    """Sentences per second of one warmed-up embed() over ``texts`` on ``workers`` processes."""
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    import pybert.dask

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        ddf = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=partitions)
        warm = dd.from_pandas(pd.DataFrame({"text": texts[:8 * workers]}), npartitions=workers)
        pybert.dask.embed(warm, model, column="text", num_threads=num_threads).compute()
        vectors = pybert.dask.embed(ddf, model, column="text", num_threads=num_threads)
        start = time.perf_counter()
        vectors.compute()
        return len(texts) / (time.perf_counter() - start)


def time_single_process(texts: list, model: str) -> float:
    import pybert

    encoder = pybert.SentenceEncoder(model)
    encoder.encode(texts[:64])
    start = time.perf_counter()
    encoder.encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--write", help="write the section into this markdown file")
    args = parser.parse_args()

    import pybert
    from pybert.encoder import default_model_path

    model = args.model or default_model_path()
    texts = corpus(args.sentences)
    cpus = pybert.cpu_info()["usable_cpus"]
    load_before = os.getloadavg()[0]
    baseline = time_single_process(texts, model)
    print(f"single process, {cpus} threads: {baseline:.0f} sentences/s", flush=True)
    rows = []
    for workers in (1, 2):
        for num_threads in (None, 1):
            rate = time_cluster(workers, texts, model, num_threads, args.partitions)
            threads = num_threads or max(1, cpus // workers)
            rows.append((workers, threads, "budget rule" if num_threads is None else "fixed",
                         rate))
            print(f"{workers} worker(s) x {threads} thread(s) a task: {rate:.0f} sentences/s",
                  flush=True)

    lines = [
        "## Distributed (Dask)",
        "",
        "Written by `benchmarks/dask_throughput.py`: `pybert.dask.embed` over a Dask DataFrame "
        f"column of {args.sentences} sentences (4 to 40 words, {args.partitions} partitions) on a "
        "`distributed.LocalCluster` of worker processes with 1 thread each, after a warm-up that "
        "loads the model on every worker. Sentences per second, one run; a shared machine makes "
        "these noisy.",
        "",
        f"- Command: `python benchmarks/dask_throughput.py --sentences {args.sentences} "
        f"--partitions {args.partitions} --write docs/benchmarks.md`",
        f"- Model: {os.path.basename(os.path.dirname(model.rstrip('/')))}/"
        f"{os.path.basename(model.rstrip('/'))}; machine: {platform.machine()}, "
        f"{cpus} usable CPUs; load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the run (other jobs shared the CPUs when above "
        f"{cpus})",
        f"- Baseline, one process (`SentenceEncoder.encode`, {cpus} threads): "
        f"{baseline:.0f} sentences/s",
        "",
        "| workers | pybert threads a task | threads chosen by | sentences/s |",
        "|---|---|---|---|",
    ] + [f"| {w} | {t} | {how} | {rate:.0f} |" for w, t, how, rate in rows]
    if args.write:
        write_section(args.write, START, END, "\n".join(lines))
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
