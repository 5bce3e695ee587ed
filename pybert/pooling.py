"""Sentence vectors from token vectors; the arithmetic runs in the C++ core."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _core, _inputs

__all__ = ["pool", "POOLING_MODES"]

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len", "weightedmean", "lasttoken")


def pool(hidden_states: Any, attention_mask: Any = None,
         mode: Union[str, Sequence[str]] = "mean", normalize: bool = False, *,
         num_threads: Optional[int] = None) -> np.ndarray:
    """Pool (batch, seq, hidden) token vectors into (batch, hidden) sentence vectors.

    ``mode`` is ``"cls"`` (first real token), ``"mean"``, ``"max"``, ``"mean_sqrt_len"``
    (sum / sqrt(length)), ``"weightedmean"`` (token i of a sequence weighted i + 1) or
    ``"lasttoken"`` (last real token), or a list of them, concatenated in that order as
    sentence-transformers does. Padded positions (mask 0) never contribute, whatever they hold;
    a row with no real token pools to zeros. ``normalize`` L2-normalizes each output row.
    A 2-D (seq, hidden) input is one sequence and gives a 1-D result. ``num_threads``: threads
    the call uses (None: ``pybert.set_num_threads``, else every usable CPU).

    >>> out = model(batch["input_ids"], batch["attention_mask"])
    >>> pybert.pool(out.last_hidden_state, batch["attention_mask"], "mean", normalize=True)
    """
    x = np.asarray(hidden_states)
    single = x.ndim == 2
    if x.ndim not in (2, 3):
        raise ValueError(f"hidden_states must be (batch, seq, hidden) or (seq, hidden), "
                         f"got shape {x.shape}")
    x = _inputs.float_batch(x, "hidden_states", x.shape[-1])
    if attention_mask is None:
        mask = np.ones(x.shape[:2], dtype=np.int64)
    else:
        mask = _inputs.id_batch(attention_mask, "attention_mask", allow_bool=True)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"attention_mask has shape {mask.shape}, expected (batch, seq) = "
                             f"{x.shape[:2]} of hidden_states")
    modes = [mode] if isinstance(mode, str) else list(mode)
    for m in modes:
        if m not in POOLING_MODES:
            raise ValueError(f"unknown pooling mode {m!r}; expected one of "
                             + ", ".join(POOLING_MODES))
    if not modes:
        raise ValueError("mode must name at least one pooling mode")
    out = _core.pool(x, mask, modes, normalize=bool(normalize),
                     num_threads=_inputs.num_threads_arg(num_threads))
    return out[0] if single else out
