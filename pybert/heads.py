"""Heads on the BERT family: LinearHead, the *For* task models and AutoModel.

The arithmetic (Linear, softmax, sigmoid, argmax, top-k) runs in the C++ core; this module owns
the label names, the tokenizer round trip and the choice of scores for each task.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _core, _hub, _inputs
from ._handle import CoreHandle
from .config import BertConfig
from .recipe import pickles_as_recipe
from .modeling import BASE_ARCHITECTURES, BertModel, load_weights
from .tokenizer import Texts, Tokenizer, check_texts, has_tokenizer_files

__all__ = ["LinearHead", "HeadOutput", "BertForSequenceClassification",
           "BertForTokenClassification", "BertForMaskedLM", "AutoModel",
           "RobertaForMaskedLM", "XLMRobertaForMaskedLM", "DistilBertForMaskedLM",
           "MegatronBertForMaskedLM",
           "AlbertForSequenceClassification", "AlbertForTokenClassification",
           "DistilBertForSequenceClassification", "DistilBertForTokenClassification",
           "ElectraForSequenceClassification", "ElectraForTokenClassification",
           "MegatronBertForSequenceClassification", "MegatronBertForTokenClassification",
           "RobertaForSequenceClassification", "RobertaForTokenClassification",
           "XLMRobertaForSequenceClassification", "XLMRobertaForTokenClassification"]


def _features(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a C-contiguous float32 array with a feature (last) axis."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a feature axis, e.g. (n, in_features), got a scalar")
    return np.ascontiguousarray(arr, dtype=np.float32)


class LinearHead(CoreHandle):
    """A Linear layer to labels, computed in C++: ``logits = x @ weight.T + bias``.

    ``weight`` is (out_features, in_features) as in ``nn.Linear``; ``x`` is (..., in_features),
    e.g. (n, in) or (batch, seq, in). Softmax and sigmoid run in the same core op as the product.
    ``num_threads``: threads each call uses (None: ``pybert.set_num_threads``, else every usable
    CPU), as for the models.

    >>> head = pybert.LinearHead(np.random.randn(14, 768), np.zeros(14))
    >>> head.softmax(np.random.randn(2, 768)).shape
    (2, 14)
    """

    def __init__(self, weight: Any, bias: Any = None, *, num_threads: Optional[int] = None):
        w = _features(weight, "weight")
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
        b = None
        if bias is not None:
            b = _features(bias, "bias")
            if b.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},) to match weight "
                                 f"{w.shape}, got {b.shape}")
        self._core = _core.LinearHead(w, b, num_threads=_inputs.num_threads_arg(num_threads))

    @property
    def in_features(self) -> int:
        return self._core.in_features

    @property
    def out_features(self) -> int:
        return self._core.out_features

    def __call__(self, x: Any) -> np.ndarray:
        """Logits (..., out_features)."""
        return self._core.forward(_features(x), scores="logits")

    forward = __call__

    def softmax(self, x: Any) -> np.ndarray:
        """Probabilities (..., out_features) summing to 1 over the labels."""
        return self._core.forward(_features(x), scores="softmax")

    def sigmoid(self, x: Any) -> np.ndarray:
        """An independent probability per label (..., out_features) (multi-label)."""
        return self._core.forward(_features(x), scores="sigmoid")

    def predict(self, x: Any) -> np.ndarray:
        """The index of the most probable label, int64 (...)."""
        return self._core.predict(_features(x))

    def __repr__(self) -> str:
        return f"LinearHead(in_features={self.in_features}, out_features={self.out_features})"


@dataclasses.dataclass
class HeadOutput:
    """What the BertFor* models return. Padded positions of per-token logits are zeros."""

    logits: np.ndarray  # (batch, num_labels) or (batch, seq, num_labels | vocab_size) float32
    hidden_states: Optional[Tuple[np.ndarray, ...]] = None  # num_hidden_layers + 1 arrays


def _top_k_arg(top_k: Optional[int], n: int) -> int:
    if top_k is None:
        return n
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= n:
        raise ValueError(f"top_k must be an integer from 1 to {n}, or None for all; got {top_k!r}")
    return int(top_k)


@pickles_as_recipe()
class _BertWithHead(CoreHandle):
    """What the *For* models share: loading, threads, forward and the tokenizer."""

    _core_class: Any = None
    scores_kind = "softmax"  # what predict reports: "softmax", "sigmoid" or "logits"
    # The model_types the class loads; None: every family (the Bert* classes, as BertModel).
    model_types: Optional[Tuple[str, ...]] = None

    def __init__(self, config: BertConfig, weights: "_core.WeightStore", *,
                 num_threads: Optional[int] = None, prefix: Optional[str] = None,
                 tokenizer: Optional[Tokenizer] = None, precision: str = "fp32"):
        if self.model_types is not None and config.model_type not in self.model_types:
            raise ValueError(f"{type(self).__name__} loads model_type "
                             f"{' or '.join(map(repr, self.model_types))} checkpoints, the config "
                             f"has {config.model_type!r}; pybert.AutoModel picks the class from "
                             "config.json")
        self.config = config
        self.tokenizer = tokenizer
        self.precision = _inputs.precision_arg(precision)
        self._core = self._make_core(config, weights, prefix=prefix,
                                     num_threads=_inputs.num_threads_arg(num_threads),
                                     precision=precision)
        _inputs.warn_precision_fallback(precision)

    def _make_core(self, config: BertConfig, weights: "_core.WeightStore", **kwargs: Any) -> Any:
        return self._core_class(config.to_core(), weights, num_labels=self.num_labels, **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, num_threads: Optional[int] = None,
                        precision: str = "fp32"):
        """Load ``config.json``, ``model.safetensors`` (body and head) and, when the directory
        has one, the tokenizer, from a directory or a Hub model id. ``precision`` ("fp32", "bf16", "int8", "int8_bf16_attention") is the arithmetic of the
        body's Linear layers, as in ``BertModel.from_pretrained``; the head runs in fp32."""
        path = _hub.resolve(path)
        config = BertConfig.from_pretrained(path)
        tokenizer = Tokenizer.from_pretrained(path) if has_tokenizer_files(path) else None
        return cls(config, load_weights(path), num_threads=num_threads, tokenizer=tokenizer,
                   precision=precision)

    @property
    def num_labels(self) -> int:
        """As transformers counts them: the size of id2label, 2 without one."""
        return len(self.config.id2label) if self.config.id2label else 2

    def label(self, index: int) -> str:
        names = self.config.id2label or {}
        return names.get(int(index), f"LABEL_{int(index)}")

    def _inputs(self, input_ids: Any, attention_mask: Any, token_type_ids: Any):
        ids = _inputs.id_batch(input_ids, "input_ids")
        mask = _inputs.optional_id_batch(attention_mask, "attention_mask", ids.shape,
                                         allow_bool=True)
        types = _inputs.optional_id_batch(token_type_ids, "token_type_ids", ids.shape)
        _inputs.check_size(ids.shape[0], ids.shape[1], self.config.hidden_size)
        return ids, mask, types

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                 output_hidden_states: bool = False) -> HeadOutput:
        """Logits of token ids (batch, seq) or one sequence (seq,)."""
        ids, mask, types = self._inputs(input_ids, attention_mask, token_type_ids)
        logits, hidden = self._core.forward(ids, mask, types, scores="logits",
                                            output_hidden_states=bool(output_hidden_states))
        return HeadOutput(logits, hidden)

    forward = __call__

    def scores(self, input_ids: Any, attention_mask: Any = None,
               token_type_ids: Any = None) -> np.ndarray:
        """The scores predict reports, for token ids: the logits turned into probabilities
        (``scores_kind``) in the same core op."""
        ids, mask, types = self._inputs(input_ids, attention_mask, token_type_ids)
        return self._scores({"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
                            self.scores_kind)

    def _tokenize(self, texts: Texts, text_pairs: Optional[Texts] = None,
                  max_length: Optional[int] = None, *, offsets: bool = False
                  ) -> Dict[str, np.ndarray]:
        if self.tokenizer is None:
            raise ValueError(f"{type(self).__name__} has no tokenizer: the model directory has "
                             "no tokenizer.json or vocab.txt; set model.tokenizer or pass "
                             "token ids to model(...)")
        if max_length is None and self.tokenizer.model_max_length is None:
            max_length = self.config.max_position_embeddings
        if offsets:
            return self.tokenizer.encode_with_offsets(texts, max_length=max_length)
        return self.tokenizer(texts, text_pairs, max_length=max_length)

    def _scores(self, batch: Dict[str, np.ndarray], scores: str) -> np.ndarray:
        out, _ = self._core.forward(batch["input_ids"], batch["attention_mask"],
                                    batch["token_type_ids"], scores=scores)
        return out

    def __repr__(self) -> str:
        c = self.config
        return (f"{type(self).__name__}(hidden_size={c.hidden_size}, "
                f"num_hidden_layers={c.num_hidden_layers}, num_labels={self.num_labels})")


class BertForSequenceClassification(_BertWithHead):
    """BERT + a Linear on the pooled [CLS] vector: ``logits`` (batch, num_labels).

    Any family's checkpoint loads, with its own head (config ``model_type``): the pooler then
    ``classifier`` (BERT, ALBERT, Megatron-BERT); the first token through ``classifier.dense`` +
    tanh (RoBERTa, XLM-R) or + GELU (ELECTRA), then ``classifier.out_proj``; DistilBERT's
    ``pre_classifier`` + ReLU, then ``classifier``.

    >>> model = pybert.BertForSequenceClassification.from_pretrained("path/to/classifier")
    >>> model.predict(["great movie", "awful plot"])
    [[{'label': 'positive', 'score': 0.98}], [{'label': 'negative', 'score': 0.95}]]
    """

    _core_class = _core.BertForSequenceClassification

    @property
    def scores_kind(self) -> str:
        """How predict turns logits into scores: a sigmoid per label for multi-label
        classification, the raw logit for a single output (regression, reranking), otherwise a
        softmax over the labels."""
        if self.config.problem_type == "multi_label_classification":
            return "sigmoid"
        return "logits" if self.num_labels == 1 else "softmax"

    def predict(self, texts: Texts, text_pairs: Optional[Texts] = None, top_k: Optional[int] = 1,
                *, max_length: Optional[int] = None, batch_size: int = 32
                ) -> Union[List[Dict[str, Any]], List[List[Dict[str, Any]]]]:
        """Per input, its ``top_k`` labels as ``{"label": name, "score": p}``, best first
        (``top_k=None``: all labels). One string gives one list; a list gives a list of lists."""
        k = _top_k_arg(top_k, self.num_labels)
        single = isinstance(texts, str)
        texts = check_texts(texts)
        pairs = None if text_pairs is None else check_texts(text_pairs, "text_pairs")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts and {len(pairs)} text_pairs; they must "
                             "pair up one to one")
        results: List[List[Dict[str, Any]]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            chunk_pairs = None if pairs is None else pairs[start:start + batch_size]
            scores = self._scores(self._tokenize(chunk, chunk_pairs, max_length),
                                  self.scores_kind)
            index, value = _core.top_k(scores, k, num_threads=self._core.num_threads)
            results += [[{"label": self.label(i), "score": float(v)} for i, v in zip(ii, vv)]
                        for ii, vv in zip(index, value)]
        return results[0] if single else results


class BertForTokenClassification(_BertWithHead):
    """BERT + a Linear on every token: ``logits`` (batch, seq, num_labels)."""

    _core_class = _core.BertForTokenClassification

    def predict(self, texts: Texts, *, max_length: Optional[int] = None
                ) -> Union[List[Dict[str, Any]], List[List[Dict[str, Any]]]]:
        """One label per word, from the word's first sub-token: ``{"word", "label", "score",
        "start", "end"}`` with [start, end) character offsets into the text. One string gives
        one list; a list gives a list of lists."""
        single = isinstance(texts, str)
        texts = check_texts(texts)
        batch = self._tokenize(texts, max_length=max_length, offsets=True)
        index, value = _core.top_k(self._scores(batch, self.scores_kind), 1,
                                    num_threads=self._core.num_threads)  # (batch, seq, 1)
        results = []
        for b, text in enumerate(texts):
            words: List[Dict[str, Any]] = []
            last_word = -1
            for s, word in enumerate(batch["word_ids"][b]):
                start, end = (int(o) for o in batch["offset_mapping"][b, s])
                if word < 0:
                    continue
                if word != last_word:  # a new word: its first sub-token decides
                    words.append({"word": text[start:end], "label": self.label(index[b, s, 0]),
                                  "score": float(value[b, s, 0]), "start": start, "end": end})
                    last_word = word
                else:  # a continuation widens the word's span
                    words[-1]["end"] = end
                    words[-1]["word"] = text[words[-1]["start"]:end]
            results.append(words)
        return results[0] if single else results


class BertForMaskedLM(_BertWithHead):
    """BERT + the masked-LM head: ``logits`` (batch, seq, vocab_size).

    Any family with a masked-LM head pybert runs loads, with its own head names (config
    ``model_type``): BERT and Megatron-BERT's ``cls.predictions``, RoBERTa and XLM-R's
    ``lm_head`` (exact GELU), DistilBERT's ``vocab_transform`` / ``vocab_layer_norm`` /
    ``vocab_projector``. The decoder's weight is the word-embedding matrix itself (tied, as in
    the checkpoint), not a copy; it stays fp32 at every precision. The head runs on the real
    tokens only; padded positions of ``logits`` are zeros.
    """

    _core_class = _core.BertForMaskedLM

    def _make_core(self, config: BertConfig, weights: "_core.WeightStore", **kwargs: Any) -> Any:
        tied = bool(config.extra.get("tie_word_embeddings", True))
        return self._core_class(config.to_core(), weights, tie_word_embeddings=tied, **kwargs)

    @property
    def num_labels(self) -> int:
        return self.config.vocab_size

    def shares_word_embeddings(self) -> bool:
        """Whether the decoder reads the very memory of the word embeddings."""
        return self._core.decoder_weight_ptr == self._core.word_embeddings_ptr

    def fill_mask(self, text: str, top_k: int = 5, *, max_length: Optional[int] = None
                  ) -> List[List[Dict[str, Any]]]:
        """For each mask token (``tokenizer.mask_token``: [MASK], RoBERTa's <mask>) in ``text``,
        in order, its ``top_k`` most probable tokens:
        ``{"token": vocabulary string, "token_id", "score": probability}``, best first."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        k = _top_k_arg(top_k, self.config.vocab_size)
        batch = self._tokenize(text, max_length=max_length)
        mask_token = self.tokenizer.mask_token
        mask_id = self.tokenizer.token_to_id(mask_token)
        positions = np.flatnonzero(batch["input_ids"][0] == mask_id) if mask_id is not None \
            else np.array([], dtype=np.int64)
        if positions.size == 0:
            raise ValueError(f"fill_mask needs a {mask_token} token in the text, found none "
                             f"in {text!r}")
        probs = self._core.forward_at(batch["input_ids"], batch["attention_mask"],
                                      batch["token_type_ids"], positions,
                                      scores=self.scores_kind)
        index, value = _core.top_k(probs, k, num_threads=self._core.num_threads)
        return [[{"token": self.tokenizer.id_to_token(i), "token_id": int(i), "score": float(v)}
                 for i, v in zip(ii, vv)] for ii, vv in zip(index, value)]


def _for_family(base: type, stem: str, model_type: str) -> type:
    """``base`` (a BertFor* class) for one family, named as transformers names it:
    ``_for_family(BertForSequenceClassification, "Roberta", "roberta")`` is
    RobertaForSequenceClassification, which loads only ``model_type: "roberta"`` checkpoints."""
    name = stem + base.__name__[len("Bert"):]
    doc = (f"transformers' {name}: {base.__name__} on ``model_type`` {model_type!r} "
           "checkpoints, with that family's weight names.")
    return type(name, (base,), {"__doc__": doc, "__module__": __name__, "__qualname__": name,
                                "model_types": (model_type,)})


RobertaForSequenceClassification = _for_family(BertForSequenceClassification, "Roberta",
                                               "roberta")
XLMRobertaForSequenceClassification = _for_family(BertForSequenceClassification, "XLMRoberta",
                                                  "xlm-roberta")
DistilBertForSequenceClassification = _for_family(BertForSequenceClassification, "DistilBert",
                                                  "distilbert")
ElectraForSequenceClassification = _for_family(BertForSequenceClassification, "Electra",
                                               "electra")
AlbertForSequenceClassification = _for_family(BertForSequenceClassification, "Albert", "albert")
MegatronBertForSequenceClassification = _for_family(BertForSequenceClassification,
                                                    "MegatronBert", "megatron-bert")

RobertaForTokenClassification = _for_family(BertForTokenClassification, "Roberta", "roberta")
XLMRobertaForTokenClassification = _for_family(BertForTokenClassification, "XLMRoberta",
                                               "xlm-roberta")
DistilBertForTokenClassification = _for_family(BertForTokenClassification, "DistilBert",
                                               "distilbert")
ElectraForTokenClassification = _for_family(BertForTokenClassification, "Electra", "electra")
AlbertForTokenClassification = _for_family(BertForTokenClassification, "Albert", "albert")
MegatronBertForTokenClassification = _for_family(BertForTokenClassification, "MegatronBert",
                                                 "megatron-bert")

RobertaForMaskedLM = _for_family(BertForMaskedLM, "Roberta", "roberta")
XLMRobertaForMaskedLM = _for_family(BertForMaskedLM, "XLMRoberta", "xlm-roberta")
DistilBertForMaskedLM = _for_family(BertForMaskedLM, "DistilBert", "distilbert")
MegatronBertForMaskedLM = _for_family(BertForMaskedLM, "MegatronBert", "megatron-bert")
MASKED_LM_CLASSES = (BertForMaskedLM, RobertaForMaskedLM, XLMRobertaForMaskedLM,
                     DistilBertForMaskedLM, MegatronBertForMaskedLM)

_ARCHITECTURES = {
    **{name: BertModel for name in BASE_ARCHITECTURES},
    **{cls.__name__: cls for cls in (
        BertForSequenceClassification, BertForTokenClassification, BertForMaskedLM,
        RobertaForSequenceClassification, XLMRobertaForSequenceClassification,
        DistilBertForSequenceClassification, ElectraForSequenceClassification,
        AlbertForSequenceClassification, MegatronBertForSequenceClassification,
        RobertaForTokenClassification, XLMRobertaForTokenClassification,
        DistilBertForTokenClassification, ElectraForTokenClassification,
        AlbertForTokenClassification, MegatronBertForTokenClassification, RobertaForMaskedLM,
        XLMRobertaForMaskedLM, DistilBertForMaskedLM, MegatronBertForMaskedLM)},
}


class AutoModel:
    """Loads the class a checkpoint names first in config.json ``architectures``: a *For* task
    model of the family, or ``BertModel`` for a base model of the BERT family (and when the list
    is absent).

    >>> pybert.AutoModel.from_pretrained("path/to/classifier")
    BertForSequenceClassification(hidden_size=768, num_hidden_layers=12, num_labels=14)
    """

    supported = tuple(_ARCHITECTURES)

    @staticmethod
    def from_pretrained(path: str | os.PathLike, num_threads: Optional[int] = None,
                        precision: str = "fp32"):
        path = _hub.resolve(path)
        config = BertConfig.from_pretrained(path)
        names = config.architectures or ["BertModel"]
        cls = _ARCHITECTURES.get(names[0])
        if cls is None and config.model_type != "bert":
            # The heads are BERT's; for the other families AutoModel loads the body, as the
            # family classes (RobertaModel, ...) do, whatever head the checkpoint has.
            cls = BertModel
        if cls is None:
            raise ValueError(f"architecture {names[0]!r} in {os.fspath(path)!r}/config.json is "
                             f"not supported; supported: {', '.join(_ARCHITECTURES)}")
        return cls.from_pretrained(path, num_threads=num_threads, precision=precision)
