"""Embedding quantization, bit-identical to sentence-transformers' ``quantize_embeddings``; the
arithmetic runs in the C++ core."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core

__all__ = ["quantize_embeddings", "OUTPUT_PRECISIONS"]

OUTPUT_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(embeddings: Any, precision: str = "int8",
                        calibration_embeddings: Any = None, *, ranges: Any = None) -> np.ndarray:
    """Float embeddings (n, dim) or (dim,) -> ``precision``:

    - ``"int8"`` / ``"uint8"``: 256 buckets per dimension between that dimension's minimum and
      maximum over ``calibration_embeddings`` (default: ``embeddings`` themselves, at least two of
      them), or ``ranges`` (2, dim) given directly; int8 is uint8 - 128. Same shape.
    - ``"binary"`` / ``"ubinary"``: one bit per dimension, ``x > 0``, packed 8 to a byte
      (numpy ``packbits`` order); binary is ubinary - 128 as int8. (n, ceil(dim / 8)).
    - ``"float32"``: the embeddings as float32.

    >>> pybert.quantize_embeddings(enc.encode(texts), "ubinary").shape
    (3, 48)
    """
    if precision not in OUTPUT_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, OUTPUT_PRECISIONS))}, "
                         f"got {precision!r}")
    x = np.asarray(embeddings)
    if x.dtype.kind not in "f":
        raise TypeError(f"embeddings must be floats (float32 rows), got dtype {x.dtype}")
    if x.ndim not in (1, 2):
        raise ValueError(f"embeddings must be (n, dim) or (dim,), got shape {x.shape}")
    single = x.ndim == 1
    rows = np.ascontiguousarray(x.reshape(1, -1) if single else x, dtype=np.float32)
    if precision == "float32":
        return x.astype(np.float32)
    if precision.endswith("int8") and rows.shape[0] > 0:
        if ranges is None:
            if calibration_embeddings is not None:
                calibration = np.asarray(calibration_embeddings, dtype=np.float32)
                if calibration.ndim != 2 or calibration.shape[1] != rows.shape[1] \
                        or calibration.shape[0] == 0:
                    raise ValueError(f"calibration_embeddings must be (m, {rows.shape[1]}) with "
                                     f"m >= 1, got shape {calibration.shape}")
            elif rows.shape[0] == 1:
                raise ValueError(f"cannot compute {precision} quantization ranges from a single "
                                 "embedding: pass calibration_embeddings (or ranges) from a "
                                 "representative set of embeddings")
            else:
                calibration = rows
            ranges = _core.column_ranges(np.ascontiguousarray(calibration))
        ranges = np.ascontiguousarray(ranges, dtype=np.float32)
    elif precision.endswith("int8"):
        ranges = np.zeros((2, rows.shape[1]), dtype=np.float32)
    out = _core.quantize_embeddings(rows, precision, ranges=ranges)
    return out[0] if single else out
