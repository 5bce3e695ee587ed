"""pybert.pool against a numpy reference on padded batches."""

from __future__ import annotations

import numpy as np
import pytest

import pybert

ATOL = 1e-5  # fp32 core vs float64 numpy reference


def reference(x, mask, mode):
    """numpy float64: each row pools its real tokens only."""
    out = []
    for row, m in zip(x.astype(np.float64), np.asarray(mask).astype(bool)):
        real = row[m]
        if len(real) == 0:
            out.append(np.zeros(row.shape[-1]))
        elif mode == "cls":
            out.append(real[0])
        elif mode == "mean":
            out.append(real.mean(0))
        elif mode == "max":
            out.append(real.max(0))
        elif mode == "mean_sqrt_len":
            out.append(real.sum(0) / np.sqrt(len(real)))
        elif mode == "weightedmean":  # weights 1, 2, ... from the first real position
            positions = np.flatnonzero(m)
            w = (positions - positions[0] + 1).astype(np.float64)[:, None]
            out.append((real * w).sum(0) / w.sum())
        elif mode == "lasttoken":
            out.append(real[-1])
    return np.stack(out)


def padded(lengths, seq, hidden, seed=0, left=False):
    """A batch whose padded positions hold large garbage, so any leak shows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(lengths), seq, hidden)).astype(np.float32)
    mask = np.zeros((len(lengths), seq), dtype=np.int64)
    for i, n in enumerate(lengths):
        if left:
            mask[i, seq - n:] = 1
        else:
            mask[i, :n] = 1
    x[mask == 0] = 1e4
    return x, mask


@pytest.mark.parametrize("mode", pybert.pooling.POOLING_MODES)
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("shape", [((5, 1, 17, 9), 17, 384), ((3, 1), 3, 7), ((1,), 1, 1)])
def test_each_mode_matches_numpy(mode, left, shape):
    lengths, seq, hidden = shape
    x, mask = padded(lengths, seq, hidden, left=left)
    out = pybert.pool(x, mask, mode)
    assert out.dtype == np.float32 and out.shape == (len(lengths), hidden)
    np.testing.assert_allclose(out, reference(x, mask, mode), rtol=0, atol=ATOL)


@pytest.mark.parametrize("modes", [["mean"], ["cls", "max", "mean", "mean_sqrt_len"],
                                   ["max", "cls"]])
def test_concatenated_modes_and_normalize(modes):
    x, mask = padded([7, 2, 12, 1, 12], 12, 32, seed=1)
    ref = np.concatenate([reference(x, mask, m) for m in modes], axis=1)
    np.testing.assert_allclose(pybert.pool(x, mask, modes), ref, rtol=0, atol=ATOL)
    ref_unit = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    out = pybert.pool(x, mask, modes, normalize=True)
    np.testing.assert_allclose(out, ref_unit, rtol=0, atol=1e-6)


def test_bool_mask_no_mask_single_sequence_and_empty_rows():
    x, mask = padded([4, 0, 6], 6, 8, seed=2)
    np.testing.assert_allclose(pybert.pool(x, mask.astype(bool), "max"),
                               reference(x, mask, "max"), rtol=0, atol=ATOL)
    assert not pybert.pool(x, mask, "mean", normalize=True)[1].any()  # no real token: zeros
    full = np.ones(x.shape[:2], dtype=np.int64)
    np.testing.assert_array_equal(pybert.pool(x, None, "mean"), pybert.pool(x, full, "mean"))
    np.testing.assert_array_equal(pybert.pool(x[0], mask[0], "cls"),
                                  pybert.pool(x, mask, "cls")[0])
    assert pybert.pool(np.zeros((0, 5, 8), np.float32), np.zeros((0, 5), np.int64), "mean").shape == (0, 8)


def test_bad_input():
    x, mask = padded([2, 3], 3, 4)
    with pytest.raises(ValueError, match="unknown pooling mode 'sum'"):
        pybert.pool(x, mask, "sum")
    with pytest.raises(ValueError, match="at least one"):
        pybert.pool(x, mask, [])
    with pytest.raises(ValueError, match=r"expected \(batch, seq\) = \(2, 3\)"):
        pybert.pool(x, mask[:, :2], "mean")
    with pytest.raises(ValueError, match=r"\(batch, seq, hidden\)"):
        pybert.pool(np.zeros(4, np.float32), None, "mean")
    with pytest.raises(TypeError, match="integers or booleans"):
        pybert.pool(x, mask.astype(np.float32), "mean")


@pytest.mark.parametrize("left", [False, True])
def test_modes_match_sentence_transformers_pooling(left):
    """Every mode sentence-transformers' Pooling module has, concatenated as it concatenates."""
    import torch
    from sentence_transformers.models import Pooling

    x, mask = padded([7, 2, 12, 1, 12], 12, 16, seed=3, left=left)
    st_modes = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
    st = Pooling(16, pooling_mode=st_modes)
    ref = st({"token_embeddings": torch.from_numpy(x),
              "attention_mask": torch.from_numpy(mask)})["sentence_embedding"].numpy()
    ours = pybert.pool(x, mask, ["cls", "max", "mean", "mean_sqrt_len", "weightedmean",
                                 "lasttoken"])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=ATOL)
