"""Floating-point work of a BERT-family forward pass, for the roofline lines of the benchmarks:
what share of the machine's fp32 FMA peak an engine reaches, and the fastest any fp32 engine
could be (all of the work at the peak).

Counted: the GEMMs and attention's two products, 2 flops per multiply-add. Per layer, a
sequence of L real tokens, hidden size h, feed-forward size f:

    2 * L * (4 h^2 + 2 h f)     query, key, value and output projections; the two FFN GEMMs
    + 2 * 2 * L^2 * h           scores Q K^T and the weighted sum P V, over all heads

Not counted: embeddings, LayerNorm, softmax, GELU, residual adds (no FMA-bound work; they only
make a real engine slower than the bound). Heads are counted by the caller (``linear_flops``).
"""

from __future__ import annotations

import json
import os


def model_dims(path: str) -> dict:
    """hidden, ffn, layers of the checkpoint's config.json (DistilBERT's own names too)."""
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    return dict(hidden=c.get("hidden_size", c.get("dim")),
                ffn=c.get("intermediate_size", c.get("hidden_dim")),
                layers=c.get("num_hidden_layers", c.get("n_layers")))


def encoder_flops(dims: dict, lengths, one_row_out: bool = False) -> float:
    """Flops of the encoder over sequences of the given lengths (tokens each). one_row_out: the
    head reads one row a sequence (a cross-encoder's or a classifier's first token), so the last
    layer needs every row's key and value but only that row's query, attention, output
    projection and feed-forward: 2 L (2 h^2) + 2 (2 h^2 + 2 h f) + 4 L h."""
    h, f = dims["hidden"], dims["ffn"]
    full = sum(2 * n * (4 * h * h + 2 * h * f) + 4 * n * n * h for n in lengths)
    if not one_row_out:
        return float(dims["layers"] * full)
    last = sum(2 * n * 2 * h * h + 2 * (2 * h * h + 2 * h * f) + 4 * n * h for n in lengths)
    return float((dims["layers"] - 1) * full + last)


def linear_flops(rows: int, d_in: int, d_out: int) -> float:
    """Flops of a Linear (d_in -> d_out) on ``rows`` rows."""
    return 2.0 * rows * d_in * d_out
