"""Reading safetensors files without torch: the header is parsed here, the data is mapped by
the C++ core, which checks every byte range against the file before reading it."""

from __future__ import annotations

import json
import os
import struct
from typing import List, Tuple

from . import _core

__all__ = ["load_safetensors"]

_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format caps the header at 100 MB


def _header(path: str) -> Tuple[int, List[tuple]]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header size)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise ValueError(f"{path}: header length {n} runs past the end of the file "
                             f"({size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: malformed safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header must be a JSON object")
    records = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ValueError(f"{path}: entry {name!r} must be an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise ValueError(f"{path}: tensor {name!r} has no dtype string")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape)):
            raise ValueError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and 0 <= o < 2**63
                           for o in offsets)):
            raise ValueError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
        if any(d >= 2**62 for d in shape):
            raise ValueError(f"{path}: tensor {name!r} has a dimension too large")
        records.append((name, dtype, shape, offsets[0], offsets[1]))
    return 8 + n, records


def load_safetensors(path: str | os.PathLike) -> "_core.WeightStore":
    """Map a ``.safetensors`` file into a weight store (fp32, fp16 and bf16 tensors)."""
    path = os.fspath(path)
    data_offset, records = _header(path)
    return _core.WeightStore.from_safetensors(path, data_offset, records)
