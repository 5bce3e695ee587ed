"""Model names as well as paths: a Hugging Face Hub model id resolved to a local directory.

The one place pybert turns what a user passes as ``path`` into a directory: an existing directory
is used as it is; otherwise a Hub id (``"org/name"`` or ``"name"``) is looked up in the local
Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache/huggingface/hub) and,
unless ``HF_HUB_OFFLINE`` is set, downloaded into it with ``huggingface_hub`` (imported only here,
only when needed). Anything else is a ``FileNotFoundError`` saying what was tried.
"""

from __future__ import annotations

import os
import re
from typing import Union

__all__ = ["resolve", "is_repo_id", "hub_cache_dir", "offline"]

# What a Hub model id looks like: "name" or "org/name" (letters, digits, "-", "_", ".").
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")

# Files of other runtimes that a pybert model never reads: not downloaded.
_IGNORED = ["*.onnx", "*.onnx_data", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot",
            "*.tflite", "*.gguf", "*.mlmodel", "*.mlpackage/*", "coreml/*", "rust_model.ot"]
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def is_repo_id(name: str) -> bool:
    """Whether ``name`` has the shape of a Hub model id (not whether it exists)."""
    return bool(_REPO_ID.match(name)) and ".." not in name and "--" not in name


def hub_cache_dir() -> str:
    """The Hugging Face hub cache, from the environment as it is now."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids downloads."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve(name_or_path: Union[str, os.PathLike]) -> str:
    """A local directory for a model directory or a Hub model id.

    >>> pybert._hub.resolve("sentence-transformers/all-MiniLM-L6-v2")
    '/home/me/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/...'
    """
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        return path
    if not isinstance(path, str) or not is_repo_id(path):
        raise FileNotFoundError(f"model directory {path!r} does not exist")
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(
            f"model directory {path!r} does not exist, and huggingface_hub is not installed to "
            "look it up as a Hugging Face Hub model id (pip install huggingface_hub)") from None
    cache = hub_cache_dir()
    try:
        return huggingface_hub.snapshot_download(path, cache_dir=cache, local_files_only=True)
    except Exception:  # not cached (or an incomplete snapshot): download below, if allowed
        pass
    if offline():
        raise FileNotFoundError(
            f"{path!r} is not a local directory nor a model in the Hugging Face cache {cache!r}, "
            "and HF_HUB_OFFLINE is set, so it cannot be downloaded")
    # HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)
    where = dict(cache_dir=cache, endpoint=os.environ.get("HF_ENDPOINT") or None, etag_timeout=10)
    try:
        directory = huggingface_hub.snapshot_download(
            path, ignore_patterns=_IGNORED + ["*.bin"], **where)
        if not any(os.path.isfile(os.path.join(directory, w)) for w in _WEIGHTS):
            # No safetensors: the weights are only in pytorch_model.bin.
            directory = huggingface_hub.snapshot_download(
                path, allow_patterns=["pytorch_model.bin", "*/pytorch_model.bin"], **where)
        return directory
    except Exception as e:
        raise FileNotFoundError(
            f"{path!r} is not a local directory nor a model in the Hugging Face cache {cache!r}, "
            f"and downloading it from the Hub failed: {type(e).__name__}: {e}") from None
