"""Reading ``pytorch_model.bin`` without torch.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` (a pickle of the state dict) and one
``<name>/data/<key>`` entry per storage (raw little-endian elements). A pickle can call any
function it names, so this unpickler resolves only the handful of globals a state dict needs:

    collections.OrderedDict                    the dict itself
    torch._utils._rebuild_tensor_v2            a tensor: storage, offset, size, stride
    torch._utils._rebuild_parameter            an nn.Parameter around such a tensor
    torch.{Float,Half,BFloat16,Long}Storage    storage element types

Anything else (``os.system``, ``builtins.eval``, ...) raises ValueError naming it, before it
is called. Tensors are copied out of the archive with every index checked against its storage.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from . import _core

__all__ = ["load_torch_state_dict", "load_torch_weights"]

_MAX_PICKLE = 100 * 1024 * 1024  # a state dict's pickle holds names and shapes only

# storage type -> (numpy element type read from the file, as little-endian)
_STORAGES = {
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",  # raw bfloat16 bits, widened to float32 below
    "LongStorage": "i8",
}


class _StorageType:
    """The marker a pickle names for a storage's element type (torch.FloatStorage, ...)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a storage type cannot be given state")


class _Storage:
    __slots__ = ("kind", "key", "numel")

    def __init__(self, kind: str, key: str, numel: int):
        self.kind, self.key, self.numel = kind, key, numel

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a storage cannot be given state")


class _TensorRef:
    """A tensor the pickle described; its elements are read once the pickle is done."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: _Storage, offset: int, size: Tuple[int, ...],
                 stride: Tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("a tensor cannot be given state")


def _int_tuple(value: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of integers, got {value!r}")
    return value


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor must be built on a storage of the archive")
    if not isinstance(storage_offset, int) or isinstance(storage_offset, bool):
        raise pickle.UnpicklingError(f"tensor storage offset must be an integer, "
                                     f"got {storage_offset!r}")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} disagree")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None
                       ) -> _TensorRef:
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGES},
}


class _Refused(pickle.UnpicklingError):
    pass


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"refused to load global '{module}.{name}': a pytorch_model.bin may "
                           "only hold tensors (float32, float16, bfloat16, int64) in an "
                           "OrderedDict") from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, location, numel)
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or isinstance(pid[4], bool) or pid[4] < 0):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return _Storage(pid[1].name, pid[2], pid[4])


def _read_tensor(archive: zipfile.ZipFile, prefix: str, ref: _TensorRef, endian: str,
                 storages: Dict[str, np.ndarray]) -> np.ndarray:
    st = ref.storage
    data = storages.get(st.key)
    code = endian + _STORAGES[st.kind]
    if data is None:
        entry = f"{prefix}/data/{st.key}"
        try:
            info = archive.getinfo(entry)
        except KeyError:
            raise ValueError(f"storage {st.key!r} is missing from the archive") from None
        need = st.numel * np.dtype(code).itemsize
        if info.file_size != need:
            raise ValueError(f"storage {st.key!r} holds {info.file_size} bytes, its "
                             f"{st.numel} {st.kind} elements need {need}")
        data = np.frombuffer(archive.read(entry), dtype=code)
        storages[st.key] = data
    numel = int(np.prod(ref.size, dtype=object)) if ref.size else 1
    if any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride) or ref.offset < 0:
        raise ValueError(f"tensor size {ref.size}, stride {ref.stride} or offset {ref.offset} "
                         "is negative")
    if numel > 0:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
        if last >= st.numel or numel > st.numel:
            raise ValueError(f"tensor of size {ref.size}, stride {ref.stride} at offset "
                             f"{ref.offset} reads past its storage of {st.numel} elements")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[ref.offset:], shape=ref.size, strides=[s * item for s in ref.stride],
            writeable=False)
        out = np.array(view, dtype=data.dtype.newbyteorder("="))
    else:
        out = np.zeros(ref.size, dtype=data.dtype.newbyteorder("="))
    if st.kind == "BFloat16Storage":  # bfloat16 bits are the high half of a float32
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def load_torch_state_dict(path: str | os.PathLike) -> Dict[str, np.ndarray]:
    """The tensors of a ``torch.save`` state dict as numpy arrays (bfloat16 as float32).

    Raises ValueError for anything that is not such a file, including a pickle that names a
    global other than those listed in this module's docstring.
    """
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch.save zip archive (the legacy pre-1.6 format is "
                         "not supported: save it again or convert it to safetensors)")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError(f"expected one <name>/data.pkl entry, found {len(pickles)}")
            prefix = pickles[0][: -len("/data.pkl")]
            if archive.getinfo(pickles[0]).file_size > _MAX_PICKLE:
                raise ValueError("data.pkl is larger than a state dict's pickle can be")
            endian = "<"
            if f"{prefix}/byteorder" in archive.namelist():
                order = archive.read(f"{prefix}/byteorder").strip()
                if order not in (b"little", b"big"):
                    raise ValueError(f"unknown byteorder {order!r}")
                endian = "<" if order == b"little" else ">"
            state = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0]))).load()
            if not isinstance(state, dict):
                raise ValueError(f"the pickle holds a {type(state).__name__}, expected a state "
                                 "dict (an OrderedDict of tensors)")
            storages: Dict[str, np.ndarray] = {}
            tensors = {}
            for name, value in state.items():
                if not isinstance(name, str) or not isinstance(value, _TensorRef):
                    raise ValueError(f"state dict entry {name!r} is not a named tensor")
                tensors[name] = _read_tensor(archive, prefix, value, endian, storages)
            return tensors
    except _Refused as e:
        raise ValueError(f"{path}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{path}: invalid pytorch_model.bin: {e}") from None
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, RecursionError, MemoryError,
            UnicodeDecodeError) as e:
        raise ValueError(f"{path}: invalid pytorch_model.bin: {type(e).__name__}: {e}") from None


def load_torch_weights(path: str | os.PathLike) -> "_core.WeightStore":
    """A weight store of the floating-point tensors of a ``pytorch_model.bin``, copied into
    memory as float32 (int64 buffers such as ``position_ids`` are not weights and are left out).
    """
    store = _core.WeightStore.empty()
    for name, values in load_torch_state_dict(path).items():
        if values.dtype.kind == "f":
            store.add(name, values)
    return store
