"""pybert: BERT inference on CPU, with a C++ core (Eigen + OpenMP + SIMD)."""

import os as _os

# OpenMP worker threads must not spin on a core once a call is done: in a server that core belongs
# to the other request threads. libgomp reads its wait policy once, when it loads (with _core just
# below), so it is set here unless the user chose one. See README, "Threads".
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

from . import _core  # noqa: E402
from .config import BertConfig  # noqa: E402
from .modeling import BertModel, BertOutput  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BertConfig", "BertModel", "BertOutput", "cpu_info", "set_num_threads",
           "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Default thread count for models created without ``num_threads`` (<= 0: all usable CPUs)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return _core.get_num_threads()


def cpu_info() -> dict:
    """The ISA features pybert detected and the kernels it uses."""
    info = dict(_core.cpu_features())
    info["usable_cpus"] = _core.usable_cpus()
    return info
