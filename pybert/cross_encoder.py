"""CrossEncoder: (query, document) pairs in, relevance scores out, as sentence-transformers'
``CrossEncoder`` (``predict``, ``rank``), on the core's sequence-classification models."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _hub, _inputs
from ._handle import ModelWrapper
from .encoder import _progress, _prompt_config, _read_json, resolve_prompt
from .heads import BertForSequenceClassification
from .recipe import pickles_as_recipe
from .tokenizer import check_texts

__all__ = ["CrossEncoder"]

# torch activation classes a checkpoint may name -> the scores the core computes.
_ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "logits", "Tanh": "tanh", "Softmax": "softmax"}
# activation_fn given by name
_ACTIVATION_NAMES = {"sigmoid": "sigmoid", "identity": "logits", "logits": "logits",
                     "tanh": "tanh", "softmax": "softmax"}

Pair = Tuple[str, str]


def _saved_activation(path: str, config_extra: Dict[str, Any]) -> Optional[str]:
    """The activation a checkpoint saved, where sentence-transformers looks for it:
    config_sentence_transformers.json ``activation_fn``, else config.json
    ``sentence_transformers.activation_fn``, else the pre-v4 ``sbert_ce_default_activation_function``;
    None when none is saved (or, as sentence-transformers without trust_remote_code, when it is
    not a torch class: the default then applies, with a warning)."""
    st_file = os.path.join(path, "config_sentence_transformers.json")
    name = (_read_json(st_file) if os.path.isfile(st_file) else {}).get("activation_fn")
    if name is None:
        name = (config_extra.get("sentence_transformers") or {}).get("activation_fn")
    if name is None:
        name = config_extra.get("sbert_ce_default_activation_function")
    if name is None:
        return None
    if not str(name).startswith("torch."):
        warnings.warn(f"{path}: activation function {name!r} is not a torch class; using the "
                      "default, as sentence-transformers does without trust_remote_code",
                      stacklevel=4)
        return None
    short = str(name).rsplit(".", 1)[-1]
    if short not in _ACTIVATIONS:
        raise ValueError(f"{path}: activation function {name!r} is not supported by pybert "
                         f"(supported: {', '.join('torch.nn.' + a for a in _ACTIVATIONS)})")
    return _ACTIVATIONS[short]


def _check_modules(path: str) -> None:
    """A cross-encoder directory with modules.json must hold one Transformer module (a
    sequence-classification model); other modules (LogitScore, Dense scores) are refused."""
    modules_file = os.path.join(path, "modules.json")
    if not os.path.isfile(modules_file):
        return
    for module in _read_json(modules_file):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind != "Transformer" or module.get("path", "") not in ("", "."):
            raise ValueError(f"{modules_file}: module {module.get('name')!r} of type "
                             f"{module.get('type')!r} is not supported by pybert's CrossEncoder "
                             "(supported: one Transformer module, a *ForSequenceClassification "
                             "model in the directory itself)")


def _pairs(inputs: Any) -> Tuple[List[Pair], bool]:
    """``inputs`` as a list of (text, text) pairs, and whether it was one pair (a list or tuple
    whose first item is not itself a list or tuple, as sentence-transformers decides)."""
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
        raise TypeError(f"inputs must be a pair of texts or a list of pairs, got "
                        f"{type(inputs).__name__}")
    items = list(inputs)
    single = len(items) > 0 and not isinstance(items[0], (list, tuple))
    if single:
        items = [items]
    pairs = []
    for i, pair in enumerate(items):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 \
                or not all(isinstance(t, str) for t in pair):
            where = "inputs" if single else f"inputs[{i}]"
            raise TypeError(f"{where} must be a pair of two strings (text, text_pair), got "
                            f"{pair!r:.80}")
        pairs.append((pair[0], pair[1]))
    return pairs, single


@pickles_as_recipe("__init__")
class CrossEncoder(ModelWrapper):
    """Scores for text pairs from a cross-encoder checkpoint (any BERT family's
    ``*ForSequenceClassification``, as sentence-transformers' ``CrossEncoder`` saves it).

    >>> ce = pybert.CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
    >>> ce.predict([("How many people live in Berlin?", "Berlin has 3.5 million people.")])
    array([0.9991], dtype=float32)
    >>> ce.rank("How many people live in Berlin?", ["Berlin has 3.5 million people.", "Paris"])
    [{'corpus_id': 0, 'score': 0.9991}, {'corpus_id': 1, 'score': 0.0001}]

    ``path`` is a directory or a Hub model id. The activation on the logits is the one the
    checkpoint saved, else sigmoid for one label and none (the logits) for several;
    ``max_length`` truncates the pairs (longest first), default the tokenizer's
    ``model_max_length`` capped by the position table. ``precision`` is the body's, as in
    ``BertModel.from_pretrained``; the head and the activation run in fp32.
    """

    def __init__(self, path: Union[str, os.PathLike], max_length: Optional[int] = None,
                 num_threads: Optional[int] = None, precision: str = "fp32"):
        self.path = _hub.resolve(path)
        _check_modules(self.path)
        self.model = BertForSequenceClassification.from_pretrained(
            self.path, num_threads=num_threads, precision=precision)
        if self.model.tokenizer is None:
            raise FileNotFoundError(f"no tokenizer in {self.path!r}: looked for tokenizer.json "
                                    "and vocab.txt")
        self.tokenizer = self.model.tokenizer
        self.config = self.model.config
        self.num_labels = self.model.num_labels
        saved = _saved_activation(self.path, self.config.extra)
        self.activation = saved or ("sigmoid" if self.num_labels == 1 else "logits")
        positions = self.model._core.max_sequence_length
        if max_length is not None:
            if not _inputs.is_positive_int(max_length):
                raise ValueError(f"max_length must be a positive integer or None, got "
                                 f"{max_length!r}")
            self.max_length = int(max_length)
        else:
            limit = self.tokenizer.model_max_length
            self.max_length = positions if limit is None else min(limit, positions)
        self.prompts, self.default_prompt_name = _prompt_config(self.path)

    def _scores_kind(self, activation_fn: Any) -> Tuple[str, Optional[Callable]]:
        """What the core computes for ``activation_fn``, and a Python callable to apply after it
        (a user function on the logits), as (scores kind, callable or None)."""
        if activation_fn is None:
            return self.activation, None
        if isinstance(activation_fn, str):
            if activation_fn not in _ACTIVATION_NAMES:
                raise ValueError(f"activation_fn {activation_fn!r} is not one of "
                                 f"{', '.join(map(repr, _ACTIVATION_NAMES))} or a callable")
            return _ACTIVATION_NAMES[activation_fn], None
        cls = type(activation_fn)
        if cls.__module__.startswith("torch.") and cls.__name__ in _ACTIVATIONS:
            return _ACTIVATIONS[cls.__name__], None  # torch.nn.Sigmoid() and friends
        if not callable(activation_fn):
            raise TypeError(f"activation_fn must be None, a name or a callable, got "
                            f"{type(activation_fn).__name__}")
        return "logits", activation_fn

    def predict(self, inputs: Any, batch_size: int = 32, activation_fn: Any = None,
                apply_softmax: bool = False, show_progress_bar: Optional[bool] = None, *,
                prompt_name: Optional[str] = None, prompt: Optional[str] = None
                ) -> Union[np.ndarray, np.floating]:
        """Scores of (text, text_pair) pairs: float32 (n,) for a one-label model, (n, num_labels)
        otherwise; one pair gives one score (a float32 scalar, or (num_labels,)); no pairs give
        an empty array.

        ``activation_fn``: None (the model's), a name (``"sigmoid"``, ``"identity"``,
        ``"tanh"``, ``"softmax"``), a ``torch.nn`` activation of those, or any callable on the
        float32 logits. ``apply_softmax``: softmax over the labels after it (several labels).
        ``prompt`` (or the prompt named ``prompt_name``, else the default prompt) is put before
        each pair's first text.
        """
        pairs, single = _pairs(inputs)
        batch_size = _inputs.batch_size_arg(batch_size)
        kind, function = self._scores_kind(activation_fn)
        if apply_softmax and self.num_labels > 1 and kind == "logits" and function is None:
            kind = "softmax"
            apply_softmax = False
        text_prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        if text_prompt:
            pairs = [(text_prompt + a, b) for a, b in pairs]
        scores = np.empty((len(pairs), self.num_labels), dtype=np.float32)
        order = np.argsort([-(len(a) + len(b)) for a, b in pairs], kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
        for idx in _progress(batches, show_progress_bar):
            batch = self.tokenizer([pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                                   max_length=self.max_length)
            scores[idx] = self.model._scores(batch, kind)
        if function is not None:
            scores = np.asarray(function(scores), dtype=np.float32)
        if apply_softmax and self.num_labels > 1 and len(scores):
            scores = _core.ops.softmax(np.ascontiguousarray(scores, dtype=np.float32),
                                       num_threads=_inputs.num_threads_arg(self.num_threads))
        if self.num_labels == 1:
            scores = scores.reshape(len(pairs))
        return scores[0] if single else scores

    def rank(self, query: str, documents: Sequence[str], top_k: Optional[int] = None,
             return_documents: bool = False, batch_size: int = 32, activation_fn: Any = None,
             show_progress_bar: Optional[bool] = None, *, prompt_name: Optional[str] = None,
             prompt: Optional[str] = None) -> List[Dict[str, Any]]:
        """``documents`` by their score against ``query``, best first (ties keep the documents'
        order): ``{"corpus_id": index, "score": float}`` plus ``"text"`` with
        ``return_documents``; the ``top_k`` best, or all. One-label models only."""
        if self.num_labels != 1:
            raise ValueError(f"CrossEncoder.rank() needs a model with one label, this one has "
                             f"{self.num_labels}; use predict() on the pairs instead")
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if isinstance(documents, str):
            raise TypeError("documents must be a list of strings, got one string")
        documents = check_texts(documents, "documents")
        if top_k is not None and not _inputs.is_positive_int(top_k):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        scores = self.predict([(query, d) for d in documents], batch_size=batch_size,
                              activation_fn=activation_fn, show_progress_bar=show_progress_bar,
                              prompt_name=prompt_name, prompt=prompt) if documents else []
        results = [{"corpus_id": i, "score": float(s)} for i, s in enumerate(scores)]
        if return_documents:
            for r in results:
                r["text"] = documents[r["corpus_id"]]
        results.sort(key=lambda r: r["score"], reverse=True)  # stable, as sentence-transformers
        return results[:top_k]

    def __repr__(self) -> str:
        c = self.config
        return (f"CrossEncoder(path={self.path!r}, model_type={c.model_type!r}, "
                f"num_labels={self.num_labels}, activation={self.activation!r}, "
                f"max_length={self.max_length})")

