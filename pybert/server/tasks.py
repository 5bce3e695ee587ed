"""What a served model does: each task turns one request's inputs into token ids (``prepare``,
off the batcher) and runs the prepared inputs of several requests in one model call (``run``, in
the batcher's worker thread), returning one result per request.

Tasks: ``embed`` (SentenceEncoder: dense vectors), ``classify`` (a *ForSequenceClassification:
labels), ``rerank`` (CrossEncoder: a relevance score per query-document pair), ``sparse``
(SparseEncoder, SPLADE: sparse vectors over the vocabulary)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .config import DEFAULT_MODEL_NAME, TASKS
from .validation import RequestError

Tokens = Dict[str, np.ndarray]  # input_ids, attention_mask, token_type_ids: int64 (n, seq)


def _lengths(batch: Tokens) -> List[int]:
    return batch["attention_mask"].sum(axis=1).tolist()


def _truncated(tokenizer: Any, texts: List[str], max_length: int, truncate: bool,
               direction: str, pairs: Optional[List[str]] = None) -> Tokens:
    """Token ids of ``texts`` cut at ``max_length`` tokens; with ``truncate`` False, an input
    longer than that is a 413 instead (TEI's ``truncate: false``)."""
    limit = max_length if truncate else max_length + 1  # one more token shows it is too long
    batch = tokenizer(texts, pairs, max_length=limit, direction=direction)
    if not truncate:
        over = np.flatnonzero(batch["attention_mask"].sum(axis=1) > max_length)
        if over.size:
            raise RequestError(413, f"inputs[{over[0]}] has more than {max_length} tokens, the "
                                    "model's limit; shorten it or send \"truncate\": true",
                               param="inputs")
    return batch


@dataclasses.dataclass
class EmbedInputs:
    texts: List[str]
    prompt_name: Optional[str] = None  # one of the model's prompts; None: its default prompt
    truncate: bool = True              # False: inputs over max_seq_length are refused
    direction: str = "right"           # which end truncation cuts
    normalize: Optional[bool] = None   # None: as the model's config says
    dimensions: Optional[int] = None   # keep the first values only (then normalized)


@dataclasses.dataclass
class EmbedJob:
    """One request's token ids and how its vectors are made (``encode_tokens``' options)."""

    batch: Tokens
    prompt_length: int              # leading prompt tokens pooling leaves out
    normalize: Optional[bool]
    truncate_dim: Optional[int]


class EmbedTask:
    """Sentence embeddings with a SentenceEncoder. A batch joins its requests' token rows and
    runs the model once per kind of request (prompt excluded from pooling or not, normalization,
    size): one call in the usual batch, where all take the model's configured vectors."""

    name = "embed"

    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.tokenizer = encoder.tokenizer
        self.dimension = encoder.get_sentence_embedding_dimension()
        self.max_length = encoder.max_seq_length

    @property
    def prompts(self) -> Dict[str, Optional[str]]:
        """sentence-transformers' named prompts of the model."""
        return dict(self.encoder.prompts)

    def prompt(self, name: Optional[str]) -> str:
        """The text put before each input for ``name`` (None: the default prompt, if any)."""
        from ..encoder import resolve_prompt

        return resolve_prompt(self.encoder.prompts, self.encoder.default_prompt_name, None,
                              name) or ""

    def prepare(self, inputs: Any) -> Tuple[EmbedJob, List[int]]:
        """Token ids of one request, and the token count of each input."""
        if not isinstance(inputs, EmbedInputs):
            inputs = EmbedInputs(list(inputs))
        prompt = self.prompt(inputs.prompt_name)
        texts = [prompt + t for t in inputs.texts] if prompt else inputs.texts
        batch = _truncated(self.tokenizer, texts, self.max_length, inputs.truncate,
                           inputs.direction)
        excluded = prompt and not self.encoder.config.include_prompt
        prompt_length = self.tokenizer.prompt_length(prompt, max_length=self.max_length) \
            if excluded else 0
        dims = None if inputs.dimensions in (None, self.dimension) else inputs.dimensions
        normalize = inputs.normalize
        if dims is not None and normalize is None:
            normalize = True  # a cut vector is re-normalized, as OpenAI's dimensions answers
        if dims is None and normalize == self.encoder.normalize:
            normalize = None  # as configured: the model's own Normalize, nothing more
        return EmbedJob(batch, prompt_length, normalize, dims), _lengths(batch)

    def run(self, jobs: List[EmbedJob]) -> List[np.ndarray]:
        """(n_i, dimensions_i) float32 vectors per request: one model call for each kind of
        request in the batch."""
        kinds: Dict[Tuple[int, Optional[bool], Optional[int]], List[int]] = {}
        for i, job in enumerate(jobs):
            kinds.setdefault((job.prompt_length, job.normalize, job.truncate_dim), []).append(i)
        out: List[Any] = [None] * len(jobs)
        for (prompt_length, normalize, truncate_dim), chosen in kinds.items():
            batches = [jobs[i].batch for i in chosen]
            vectors = self.encoder.encode_tokens(
                self.tokenizer.concat(batches), normalize=normalize, truncate_dim=truncate_dim,
                prompt_length=prompt_length)
            ends = np.cumsum([b["input_ids"].shape[0] for b in batches])
            for i, part in zip(chosen, np.split(vectors, ends[:-1])):
                out[i] = finite_vectors(part)
        return out

    def info(self) -> Dict[str, Any]:
        return {"dimension": self.dimension, "max_seq_length": self.max_length,
                "pooling": self.encoder.pooling, "normalize": self.encoder.normalize}


@dataclasses.dataclass
class ClassifyInputs:
    texts: List[str]
    text_pairs: Optional[List[str]]
    top_k: int
    truncate: bool = True


class ClassifyTask:
    """Sequence classification (and cross-encoder scoring of pairs) with a
    BertForSequenceClassification: a batch runs ``predict`` once on all its requests' inputs
    (once for the texts and once for the pairs when a batch holds both kinds)."""

    name = "classify"

    def __init__(self, model: Any):
        if model.tokenizer is None:
            raise ValueError("the classifier's directory has no tokenizer (tokenizer.json or "
                             "vocab.txt); pybert serve needs one")
        self.model = model
        self.tokenizer = model.tokenizer
        # Longer inputs are truncated, to what the tokenizer and the position table allow.
        positions = model.config.max_position_embeddings
        limit = model.tokenizer.model_max_length
        self.max_length = positions if limit is None else min(limit, positions)

    @property
    def labels(self) -> List[str]:
        return [self.model.label(i) for i in range(self.model.num_labels)]

    def prepare(self, inputs: ClassifyInputs) -> Tuple[ClassifyInputs, List[int]]:
        batch = _truncated(self.tokenizer, inputs.texts, self.max_length, inputs.truncate,
                           "right", inputs.text_pairs)
        return inputs, _lengths(batch)

    def run(self, requests: List[ClassifyInputs]) -> List[List[List[Dict[str, Any]]]]:
        results: List[Any] = [None] * len(requests)
        for with_pairs in (False, True):
            chosen = [i for i, r in enumerate(requests) if (r.text_pairs is not None) == with_pairs]
            if not chosen:
                continue
            texts = [t for i in chosen for t in requests[i].texts]
            pairs = [p for i in chosen for p in requests[i].text_pairs] if with_pairs else None
            labels = iter(self.model.predict(texts, pairs, top_k=None, max_length=self.max_length,
                                             batch_size=len(texts)))
            for i in chosen:  # predict sorts labels best first: a request's top_k is a prefix
                results[i] = [next(labels)[:requests[i].top_k] for _ in requests[i].texts]
        return results

    def info(self) -> Dict[str, Any]:
        return {"num_labels": self.model.num_labels, "max_length": self.max_length,
                "labels": self.labels}


@dataclasses.dataclass
class RerankInputs:
    query: str
    documents: List[str]
    truncate: bool = True
    raw_scores: bool = False  # the logits, without the model's activation (TEI's raw_scores)


class RerankTask:
    """Query-document relevance with a CrossEncoder: a batch scores every request's pairs in
    one ``predict`` call; scores are ``CrossEncoder.predict``'s (and so ``rank``'s)."""

    name = "rerank"

    def __init__(self, model: Any):
        self.model = model
        self.tokenizer = model.tokenizer
        self.max_length = model.max_length

    def prepare(self, inputs: RerankInputs) -> Tuple[RerankInputs, List[int]]:
        batch = _truncated(self.tokenizer, [inputs.query] * len(inputs.documents),
                           self.max_length, inputs.truncate, "right", inputs.documents)
        return inputs, _lengths(batch)

    def run(self, requests: List[RerankInputs]) -> List[np.ndarray]:
        """(n_documents,) float32 scores per request: one ``predict`` call for the requests
        that take the model's activation, one for those that ask for raw scores."""
        out: List[Any] = [None] * len(requests)
        for raw in (False, True):
            chosen = [i for i, r in enumerate(requests) if r.raw_scores == raw]
            if not chosen:
                continue
            pairs = [(requests[i].query, d) for i in chosen for d in requests[i].documents]
            scores = np.asarray(self.model.predict(pairs, batch_size=len(pairs),
                                                   activation_fn="identity" if raw else None),
                                dtype=np.float32).reshape(len(pairs))
            ends = np.cumsum([len(requests[i].documents) for i in chosen])
            for i, part in zip(chosen, np.split(scores, ends[:-1])):
                out[i] = part
        return out

    def info(self) -> Dict[str, Any]:
        return {"max_length": self.max_length}


class SparseTask:
    """SPLADE sparse vectors with a SparseEncoder: a batch encodes every request's texts at
    once; each request gets its rows as (indices, values) pairs over the vocabulary."""

    name = "sparse"

    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.tokenizer = encoder.tokenizer
        self.max_length = encoder.max_seq_length

    @property
    def prompts(self) -> Dict[str, Optional[str]]:
        return dict(self.encoder.prompts)

    def prompt(self, name: Optional[str]) -> str:
        """The text of prompt ``name`` ("" for None: ``encode`` applies the default itself)."""
        return (self.encoder.prompts.get(name) or "") if name else ""

    def prepare(self, inputs: EmbedInputs) -> Tuple[EmbedInputs, List[int]]:
        prompt = self.prompt(inputs.prompt_name)
        batch = _truncated(self.tokenizer, [prompt + t for t in inputs.texts], self.max_length,
                           inputs.truncate, inputs.direction)
        return inputs, _lengths(batch)

    def run(self, requests: List[EmbedInputs]) -> List[List[Tuple[np.ndarray, np.ndarray]]]:
        """Per request, per input, its (indices, values): one ``encode`` call for each prompt
        in the batch."""
        names: Dict[Optional[str], List[int]] = {}
        for i, r in enumerate(requests):
            names.setdefault(r.prompt_name, []).append(i)
        out: List[Any] = [None] * len(requests)
        for name, chosen in names.items():
            texts = [t for i in chosen for t in requests[i].texts]
            csr = self.encoder.encode(texts, batch_size=len(texts), prompt_name=name)
            rows = [(csr.indices[a:b], finite_vectors(csr.data[a:b]))
                    for a, b in zip(csr.indptr[:-1], csr.indptr[1:])]
            start = 0
            for i in chosen:
                out[i] = rows[start:start + len(requests[i].texts)]
                start += len(requests[i].texts)
        return out

    def info(self) -> Dict[str, Any]:
        return {"max_seq_length": self.max_length}


def finite_vectors(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as C-contiguous float32 (what orjson serializes), or a RuntimeError (a 500
    answer) when the model produced NaN or infinity, which JSON cannot carry."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise RuntimeError("the model produced non-finite values")
    return vectors


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def detect_task(model_dir: str) -> str:
    """The task a model directory is for: ``rerank`` for a sequence classifier with one label (a
    cross-encoder, sentence-transformers' or plain), ``classify`` for one with several,
    ``sparse`` for a sentence-transformers SPLADE model, else ``embed``."""
    config = _read_json(os.path.join(model_dir, "config.json")) or {}
    if any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or ()):
        labels = config.get("id2label")
        n = len(labels) if isinstance(labels, dict) else config.get("num_labels", 2)
        return "rerank" if n == 1 else "classify"
    modules = _read_json(os.path.join(model_dir, "modules.json"))
    if isinstance(modules, list):
        kinds = {str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)}
        if kinds & {"SpladePooling", "MLMTransformer"}:
            return "sparse"
    return "embed"


def load_task(model_dir: str, task: Optional[str] = None, num_threads: Optional[int] = None,
              precision: str = "fp32") -> Any:
    """The task object of a model directory (``task`` None: ``detect_task``'s)."""
    task = detect_task(model_dir) if task is None else task
    kwargs = {"num_threads": num_threads, "precision": precision}
    if task == "embed":
        from ..encoder import SentenceEncoder

        return EmbedTask(SentenceEncoder(model_dir, **kwargs))
    if task == "classify":
        from ..heads import BertForSequenceClassification

        return ClassifyTask(BertForSequenceClassification.from_pretrained(model_dir, **kwargs))
    if task == "rerank":
        from .. import CrossEncoder  # type: ignore[attr-defined]

        return RerankTask(CrossEncoder(model_dir, **kwargs))
    if task == "sparse":
        from .. import SparseEncoder  # type: ignore[attr-defined]

        return SparseTask(SparseEncoder(model_dir, **kwargs))
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def served_name(model_dir: str) -> str:
    """The name a model directory is served under by default: ``all-MiniLM-L6-v2`` for the
    default model, else the directory's name."""
    from ..encoder import default_model_path

    with contextlib.suppress(FileNotFoundError):
        if os.path.realpath(model_dir) == os.path.realpath(default_model_path()):
            return DEFAULT_MODEL_NAME
    return os.path.basename(os.path.normpath(model_dir))


def parse_model_spec(spec: str, task: Optional[str] = None) -> Tuple[Optional[str], str]:
    """``"[TASK:]DIR"`` as (task, directory); without a TASK prefix, ``task`` (None: detect)."""
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in TASKS:
        return prefix, rest
    return task, spec
