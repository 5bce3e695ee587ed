"""pybert: BERT inference on CPU, with a C++ core (Eigen + SIMD kernels + its own threads)."""

from . import _core
from .config import BertConfig
from .cross_encoder import CrossEncoder
from .encoder import SentenceEncoder
from .heads import (AlbertForSequenceClassification, AlbertForTokenClassification, AutoModel,
                    BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification,
                    DistilBertForMaskedLM, DistilBertForSequenceClassification,
                    DistilBertForTokenClassification, ElectraForSequenceClassification,
                    ElectraForTokenClassification, HeadOutput, LinearHead,
                    MegatronBertForMaskedLM, MegatronBertForSequenceClassification,
                    MegatronBertForTokenClassification, RobertaForMaskedLM,
                    RobertaForSequenceClassification, RobertaForTokenClassification,
                    XLMRobertaForMaskedLM, XLMRobertaForSequenceClassification,
                    XLMRobertaForTokenClassification)
from .modeling import (AlbertModel, BertModel, BertOutput, DistilBertModel, ElectraModel,
                       MegatronBertModel, RobertaModel, XLMRobertaModel)
from ._inputs import PrecisionWarning
from .multivector import MultiVectorEncoder, maxsim
from .pooling import pool
from .quantize import quantize_embeddings
from .sparse import SparseEmbeddings, SparseEncoder
from .token_pooling import HierarchicalTokenPooling
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = ["AlbertForSequenceClassification", "AlbertForTokenClassification", "AlbertModel",
           "AutoModel", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "BertForTokenClassification", "BertModel", "BertOutput", "CrossEncoder",
           "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
           "DistilBertForTokenClassification",
           "DistilBertModel", "ElectraForSequenceClassification", "ElectraForTokenClassification",
           "ElectraModel", "HeadOutput", "HierarchicalTokenPooling", "LinearHead", "MegatronBertForMaskedLM",
           "MegatronBertForSequenceClassification",
           "MegatronBertForTokenClassification", "MegatronBertModel", "MultiVectorEncoder",
           "PrecisionWarning", "RobertaForMaskedLM", "RobertaForSequenceClassification",
           "RobertaForTokenClassification", "RobertaModel", "SentenceEncoder", "SparseEmbeddings",
           "SparseEncoder", "Tokenizer", "XLMRobertaForMaskedLM",
           "XLMRobertaForSequenceClassification",
           "XLMRobertaForTokenClassification", "XLMRobertaModel", "cpu_info", "get_num_threads",
           "maxsim", "pool", "quantize_embeddings", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Default thread count for models created without ``num_threads`` (<= 0: all usable CPUs)."""
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return _core.get_num_threads()


def cpu_info() -> dict:
    """The ISA features pybert detected and the kernels each precision uses.

    ``arch``: "x86_64" or "aarch64", with that architecture's features (x86-64: ``avx2``,
    ``fma``, ``avx512``, ``avx512_vnni``, ``avx512_bf16``, ``amx_tile``, ``amx_bf16``,
    ``amx_int8``; aarch64: ``neon``, ``dotprod``, ``i8mm``, ``bf16``).
    ``fp32_kernels``: "avx512", "avx2", "neon" or "generic"; ``bf16_kernels``: "amx_bf16" or
    "neon_bf16", or the fp32 kernels' name where the CPU has no bf16 matrix unit;
    ``int8_kernels``: "amx_int8", "avx512_vnni", "avx2", "neon_i8mm", "neon_dotprod" or
    "generic".  ``isa_cap`` is the ``PYBERT_ISA`` cap in force, or None; ``isa_caps`` the caps
    this architecture knows, widest first (x86-64: "avx512": no AMX, "avx2": nothing wider,
    "generic": portable C++ only; aarch64: "i8mm": no bf16, "dotprod": no i8mm, "neon": no
    optional extension, "generic").
    """
    info = dict(_core.cpu_features())
    info["usable_cpus"] = _core.usable_cpus()
    return info
