"""BertModel: load a Hugging Face checkpoint directory of the BERT family and run the encoder in
the C++ core. One class runs every family (config.json's ``model_type`` picks the weight names);
``RobertaModel``, ``XLMRobertaModel``, ``DistilBertModel``, ``ElectraModel``, ``AlbertModel``
and ``MegatronBertModel`` are names for it (``pybert.AutoModel``, in heads.py, picks a class by
config.json ``architectures``)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Tuple

import numpy as np

from . import _core, _hub, _inputs
from ._handle import CoreHandle
from .config import BertConfig
from .recipe import pickles_as_recipe
from .safetensors import load_safetensors
from .tokenizer import Tokenizer, has_tokenizer_files
from .torch_pickle import load_torch_weights

__all__ = ["AlbertModel", "BertModel", "BertOutput", "DistilBertModel",
           "ElectraModel", "MegatronBertModel", "RobertaModel", "XLMRobertaModel", "load_weights"]

# Looked for in this order; safetensors is mapped in place, pytorch_model.bin is read into memory.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclasses.dataclass
class BertOutput:
    """What BertModel returns. Padded positions of the (batch, seq, hidden) arrays are zeros."""

    last_hidden_state: np.ndarray                  # (batch, seq, hidden) float32
    pooler_output: Optional[np.ndarray] = None     # (batch, hidden) float32, None without pooler
    hidden_states: Optional[Tuple[np.ndarray, ...]] = None  # num_hidden_layers + 1 arrays


def load_weights(path: str | os.PathLike) -> "_core.WeightStore":
    """The weight store of a model directory (or of a weights file given directly)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return load_torch_weights(path) if path.endswith(".bin") else load_safetensors(path)
    for name in WEIGHT_FILES:
        file = os.path.join(path, name)
        if os.path.isfile(file):
            return load_weights(file)
    raise FileNotFoundError(f"no supported weights file in {path!r}: looked for "
                            + ", ".join(WEIGHT_FILES))


@pickles_as_recipe()
class BertModel(CoreHandle):
    """A BERT-family encoder: embeddings -> encoder layers -> pooler, computed in C++.

    Runs BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA (discriminator), ALBERT and
    Megatron-BERT (pre-LN) checkpoints; ``config.model_type`` picks the family.

    >>> model = pybert.BertModel.from_pretrained("path/to/bert")
    >>> out = model([[101, 7592, 102]])
    >>> out.last_hidden_state.shape
    (1, 3, 384)

    A model loaded by ``from_pretrained`` pickles as that call (path, options), not as its
    weights; unpickling maps the weights once per process (see :mod:`pybert.recipe`).
    """

    def __init__(self, config: BertConfig, weights: "_core.WeightStore", *,
                 num_threads: Optional[int] = None, prefix: Optional[str] = None,
                 precision: str = "fp32"):
        self.config = config
        self.precision = _inputs.precision_arg(precision)
        self.tokenizer: Optional[Tokenizer] = None  # set by from_pretrained when files exist
        self._core = _core.BertModel(config.to_core(), weights, prefix=prefix,
                                     num_threads=_inputs.num_threads_arg(num_threads),
                                     precision=precision)
        _inputs.warn_precision_fallback(precision)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, num_threads: Optional[int] = None,
                        precision: str = "fp32") -> "BertModel":
        """Load ``config.json`` and ``model.safetensors`` (else ``pytorch_model.bin``) from a
        Hugging Face model directory, or from a Hub model id (``"org/name"``: the local Hugging
        Face cache, else a download; see ``pybert._hub.resolve``).

        Weights saved from a base model (``BertModel``, ``RobertaModel``, ...) and from a
        ``*For*`` model (``bert.``, ``roberta.``, ``distilbert.``, ``electra.``, ``albert.``
        prefix) both load; head tensors are ignored here. ``model.tokenizer`` is the directory's
        tokenizer (tokenizer.json or vocab.txt), or None when it has none.

        ``precision`` is the arithmetic of the Linear layers: ``"fp32"``, ``"bf16"`` (AMX; the
        fp32 kernels, with a ``PrecisionWarning``, on CPUs without it; attention's products in
        bf16 too), ``"int8"`` (weights quantized per output channel at load, activations per
        token at run time; attention fp32, or for longer sequences on AMX (keys x head size >=
        4096) its products with each input split into three bf16 terms, within ~2^-15 of fp32) or ``"int8_bf16_attention"``
        (opt-in: int8's Linears, bf16's attention; a little less accurate, faster). LayerNorm,
        softmax, GELU and residuals stay fp32; outputs are float32 either way.
        """
        path = _hub.resolve(path)
        config = BertConfig.from_pretrained(path)
        model = cls(config, load_weights(path), num_threads=num_threads, precision=precision)
        if has_tokenizer_files(path):
            model.tokenizer = Tokenizer.from_pretrained(path)
        return model

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                 output_hidden_states: bool = False) -> BertOutput:
        """Run the model on token ids (batch, seq) or one sequence (seq,)."""
        ids = _inputs.id_batch(input_ids, "input_ids")
        mask = _inputs.optional_id_batch(attention_mask, "attention_mask", ids.shape,
                                         allow_bool=True)
        types = _inputs.optional_id_batch(token_type_ids, "token_type_ids", ids.shape)
        _inputs.check_size(ids.shape[0], ids.shape[1], self.config.hidden_size)
        last, pooled, hidden = self._core.forward(ids, mask, types,
                                                  output_hidden_states=bool(output_hidden_states))
        return BertOutput(last, pooled, hidden)

    forward = __call__

    def embeddings(self, input_ids: Any, token_type_ids: Any = None) -> np.ndarray:
        """The embedding layer alone: (batch, seq) ids -> (batch, seq, embedding_size), before
        the projection to hidden_size that ALBERT and some ELECTRAs have."""
        ids = _inputs.id_batch(input_ids, "input_ids")
        types = _inputs.optional_id_batch(token_type_ids, "token_type_ids", ids.shape)
        _inputs.check_size(ids.shape[0], ids.shape[1], self.config.hidden_size)
        return self._core.embed(ids, types)

    def encoder(self, hidden_states: Any, attention_mask: Any = None) -> np.ndarray:
        """The encoder stack alone: (batch, seq, hidden) -> (batch, seq, hidden)."""
        x = _inputs.float_batch(hidden_states, "hidden_states", self.config.hidden_size)
        mask = _inputs.optional_id_batch(attention_mask, "attention_mask", x.shape[:2],
                                         allow_bool=True)
        _inputs.check_size(x.shape[0], x.shape[1], self.config.hidden_size)
        return self._core.encode(x, mask)

    def __repr__(self) -> str:
        c = self.config
        return (f"BertModel(model_type={c.model_type!r}, hidden_size={c.hidden_size}, "
                f"num_hidden_layers={c.num_hidden_layers}, "
                f"num_attention_heads={c.num_attention_heads}, vocab_size={c.vocab_size}, "
                f"precision={self.precision!r})")


# One class runs the whole family; these names read like transformers' classes.
RobertaModel = XLMRobertaModel = DistilBertModel = ElectraModel = AlbertModel = \
    MegatronBertModel = BertModel

# The base-model class names transformers writes in config.json ``architectures`` for them.
BASE_ARCHITECTURES = ("BertModel", "RobertaModel", "XLMRobertaModel", "DistilBertModel",
                      "ElectraModel", "AlbertModel", "MegatronBertModel")
