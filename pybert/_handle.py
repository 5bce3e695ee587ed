"""What every model class built on a core object shares: its thread count and its lifetime."""

from __future__ import annotations

from typing import Any, Optional

from . import _inputs


class CoreHandle:
    """Mixin for classes holding their C++ model in ``self._core``."""

    _core: Any

    @property
    def num_threads(self) -> Optional[int]:
        """Threads each call uses; None: ``pybert.set_num_threads``, else every usable CPU."""
        return self._core.num_threads or None

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        self._core.num_threads = _inputs.num_threads_arg(value)

    def close(self) -> None:
        """Release the weights and their file mapping; later calls raise ValueError. A call
        running on another thread finishes first, on weights it still holds."""
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class ModelWrapper:
    """Mixin for the text-level classes (SentenceEncoder, CrossEncoder) around ``self.model``:
    its thread count and lifetime are theirs."""

    model: Any

    @property
    def num_threads(self) -> Optional[int]:
        """Threads each call uses; None: ``pybert.set_num_threads``, else every usable CPU."""
        return self.model.num_threads

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        self.model.num_threads = value

    def close(self) -> None:
        """Release the weights (see ``CoreHandle.close``)."""
        self.model.close()
