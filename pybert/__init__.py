"""pybert: BERT inference on CPU, with a C++ core (Eigen + OpenMP + SIMD)."""

from . import _core
from .config import BertConfig
from .encoder import SentenceEncoder
from .heads import (AlbertForSequenceClassification, AlbertForTokenClassification, AutoModel,
                    BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification,
                    DistilBertForSequenceClassification, DistilBertForTokenClassification,
                    ElectraForSequenceClassification, ElectraForTokenClassification, HeadOutput,
                    LinearHead, MegatronBertForSequenceClassification,
                    MegatronBertForTokenClassification, RobertaForSequenceClassification,
                    RobertaForTokenClassification, XLMRobertaForSequenceClassification,
                    XLMRobertaForTokenClassification)
from .modeling import (AlbertModel, BertModel, BertOutput, DistilBertModel, ElectraModel,
                       MegatronBertModel, RobertaModel, XLMRobertaModel)
from .pooling import pool
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = ["AlbertForSequenceClassification", "AlbertForTokenClassification", "AlbertModel",
           "AutoModel", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "BertForTokenClassification", "BertModel", "BertOutput",
           "DistilBertForSequenceClassification", "DistilBertForTokenClassification",
           "DistilBertModel", "ElectraForSequenceClassification", "ElectraForTokenClassification",
           "ElectraModel", "HeadOutput", "LinearHead", "MegatronBertForSequenceClassification",
           "MegatronBertForTokenClassification", "MegatronBertModel",
           "RobertaForSequenceClassification", "RobertaForTokenClassification", "RobertaModel",
           "SentenceEncoder", "Tokenizer", "XLMRobertaForSequenceClassification",
           "XLMRobertaForTokenClassification", "XLMRobertaModel", "cpu_info", "get_num_threads",
           "pool", "set_num_threads"]


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
