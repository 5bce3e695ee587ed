"""pybert: BERT inference on CPU, with a C++ core (Eigen + OpenMP + SIMD)."""

from . import _core
from .config import BertConfig
from .encoder import SentenceEncoder
from .heads import (AutoModel, BertForMaskedLM, BertForSequenceClassification,
                    BertForTokenClassification, HeadOutput, LinearHead)
from .modeling import (AlbertModel, BertModel, BertOutput, DistilBertModel, ElectraModel,
                       MegatronBertModel, RobertaModel, XLMRobertaModel)
from .pooling import pool
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = ["AlbertModel", "AutoModel", "BertConfig", "BertModel", "BertOutput",
           "DistilBertModel", "ElectraModel", "MegatronBertModel", "RobertaModel",
           "XLMRobertaModel", "cpu_info", "set_num_threads", "get_num_threads", "Tokenizer",
           "pool", "SentenceEncoder", "LinearHead", "HeadOutput",
           "BertForSequenceClassification", "BertForTokenClassification", "BertForMaskedLM"]


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
