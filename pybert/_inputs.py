"""Checks and conversions for arrays coming from users, before they reach the core."""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from . import _core

# The core refuses batches whose activations would not fit comfortably in memory.
MAX_TOKENS_PER_CALL = 1 << 22


def id_batch(values: Any, name: str, *, allow_bool: bool = False) -> np.ndarray:
    """``values`` as a C-contiguous int64 array of shape (batch, seq); 1-D means batch 1."""
    try:
        arr = np.asarray(values)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of integers: {e}") from None
    kinds = "iub" if allow_bool else "iu"
    if arr.dtype.kind not in kinds:
        expected = "integers or booleans" if allow_bool else "integers"
        raise TypeError(f"{name} must hold {expected}, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one sequence) or 2-D (batch, seq), "
                         f"got {arr.ndim}-D with shape {arr.shape}")
    # Before any copy: a broadcast view can claim a huge shape without holding the memory.
    check_size(arr.shape[0], arr.shape[1], 0)
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds a value too large for int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def optional_id_batch(values: Any, name: str, shape: tuple, *,
                      allow_bool: bool = False) -> Optional[np.ndarray]:
    """Like id_batch, and the result must have ``shape`` (that of input_ids)."""
    if values is None:
        return None
    arr = id_batch(values, name, allow_bool=allow_bool)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected the shape of input_ids {shape}")
    return arr


def check_size(batch: int, seq: int, hidden: int) -> None:
    """Refuse before allocating when a call would need absurd memory."""
    if batch * seq > MAX_TOKENS_PER_CALL:
        raise ValueError(f"batch x seq = {batch} x {seq} = {batch * seq} tokens is more than one "
                         f"call takes ({MAX_TOKENS_PER_CALL}); split the batch")


def float_batch(values: Any, name: str, hidden: int) -> np.ndarray:
    """``values`` as C-contiguous float32 (batch, seq, hidden); 2-D means batch 1."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != hidden:
        raise ValueError(f"{name} must have shape (batch, seq, {hidden}), got {arr.shape}")
    check_size(arr.shape[0], arr.shape[1], hidden)
    return np.ascontiguousarray(arr, dtype=np.float32)


def is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def batch_size_arg(batch_size: Any) -> int:
    if not is_positive_int(batch_size):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def optional_positive_int(value: Any, name: str) -> Optional[int]:
    """``value`` as an int >= 1, or None; anything else is a ValueError naming ``name``."""
    if value is None:
        return None
    if not is_positive_int(value):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def offsets(counts: Any) -> np.ndarray:
    """int64 (n + 1) running totals of n counts from 0: part i holds rows
    [offsets[i], offsets[i + 1]) of the concatenation (CSR indptr, documents' token rows)."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def num_threads_arg(num_threads: Optional[int]) -> int:
    """The core's thread count: 0 (the default) for None."""
    return optional_positive_int(num_threads, "num_threads") or 0


PRECISIONS = ("fp32", "bf16", "int8", "int8_bf16_attention")


class PrecisionWarning(UserWarning):
    """A precision runs on other kernels than it names: bf16 without AMX-BF16 runs fp32 (the
    attention of int8_bf16_attention too)."""


_fallback_warned = False


def precision_arg(precision: Any) -> str:
    """``precision`` checked to be a string; the core checks its value (one of PRECISIONS)."""
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a string, one of {', '.join(PRECISIONS)}; "
                        f"got {precision!r}")
    return precision


def warn_precision_fallback(precision: str) -> None:
    """Says once per process when a model loaded at ``precision`` runs other kernels."""
    global _fallback_warned
    if precision not in ("bf16", "int8_bf16_attention") or _fallback_warned:
        return
    info = _core.cpu_features()
    if info["bf16_kernels"] != info["fp32_kernels"]:
        return
    _fallback_warned = True
    what = "bf16" if precision == "bf16" else "its bf16 attention"
    warnings.warn(f"precision={precision!r} runs {what} on the fp32 {info['bf16_kernels']} "
                  "kernels: this CPU (or PYBERT_ISA) has no bf16 matrix unit (AMX-BF16 on "
                  "x86-64, BFMMLA on aarch64), and bf16 dot products without one are slower than "
                  "fp32 FMA; see pybert.cpu_info()", PrecisionWarning, stacklevel=3)
