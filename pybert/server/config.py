"""The defaults of ``pybert serve``, in one place: the CLI builds its flags from them."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

TASKS = ("embed", "classify", "rerank", "sparse")
HOST = "127.0.0.1"
PORT = 8000
LOG_LEVEL = "info"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
GRACEFUL_TIMEOUT_S = 30.0
API_KEY_ENV = "PYBERT_API_KEY"  # read when --api-key is not given
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"  # the served name of the default model


def _limit(default: Any, help_text: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class ServerConfig:
    """The limits and batching knobs of ``pybert serve``; each field is the CLI flag of the same
    name (``--max-batch-tokens``, ...), with this default and help."""

    max_batch_tokens: int = _limit(8192, "tokens in one model call; 0 runs every request alone")
    max_wait_ms: float = _limit(5.0, "how long a request may wait for others to batch with")
    max_inputs: int = _limit(2048, "inputs in one request (OpenAI's limit); more get 413")
    max_request_tokens: int = _limit(300_000, "tokens in one request, after truncation "
                                              "(OpenAI's limit); more get 413")
    max_body_bytes: int = _limit(8 << 20, "bytes in one request body; larger bodies get 413")
    max_queue: int = _limit(1024, "requests waiting for a model; more get 503")

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_wait_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_inputs", "max_request_tokens", "max_body_bytes", "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def flags(cls) -> Dict[str, Dict[str, Any]]:
        """``{"--max-batch-tokens": argparse keywords, ...}`` for every field."""
        out = {}
        for f in dataclasses.fields(cls):
            out["--" + f.name.replace("_", "-")] = {
                "dest": f.name, "type": type(f.default), "default": f.default,
                "help": f"{f.metadata['help']} (default: {f.default})"}
        return out
