"""MultiVectorEncoder: one vector per token (ColBERT-style late interaction), as
sentence-transformers' MultiVectorEncoder, and ``maxsim`` to score with them.

The Dense projection and the per-token normalization run in the C++ core on the packed rows of
the tokens kept, and so does token pooling (HierarchicalTokenPooling) on those rows; Python picks
which tokens (the skiplist, query expansion) and the lengths.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _core, _inputs, _st
from ._handle import CoreHandle
from .config import BertConfig
from .encoder import _progress
from .modeling import load_weights
from .recipe import pickles_as_recipe
from .safetensors import load_safetensors
from .token_pooling import HierarchicalTokenPooling
from .tokenizer import check_texts

__all__ = ["MultiVectorEncoder", "maxsim"]

_SUPPORTED = ("Transformer", "Dense", "MultiVectorMask", "Normalize", "HierarchicalTokenPooling")
_SIMILARITIES = ("maxsim", "meanmaxsim")
# torch activation classes a Dense module may name (its activation_function).
_DENSE_ACTIVATIONS = ("Identity", "Tanh", "ReLU", "GELU")


def _dense(module: "_st.Module") -> Dict[str, Any]:
    """weight (out, in), bias or None, activation name of a sentence-transformers Dense."""
    config = module.config
    if config.get("module_input_name", "token_embeddings") != "token_embeddings":
        raise ValueError(f"{module.path}: a Dense on {config.get('module_input_name')!r} is not "
                         "supported in a MultiVectorEncoder (supported: token_embeddings)")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity"))
    name = activation.rsplit(".", 1)[-1]
    if name not in _DENSE_ACTIVATIONS:
        raise ValueError(f"{module.path}: Dense activation_function {activation!r} is not "
                         f"supported (supported: {', '.join(_DENSE_ACTIVATIONS)})")
    file = os.path.join(module.path, "model.safetensors")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"no model.safetensors in {module.path!r}")
    store = load_safetensors(file)
    names = ["linear.weight"] + (["linear.bias"] if config.get("bias", True) else [])
    for tensor in names:
        if tensor not in store:
            raise ValueError(f"{file} has no tensor {tensor!r}")
    return {"weight": store.get("linear.weight"),
            "bias": store.get("linear.bias") if len(names) == 2 else None, "activation": name}


@pickles_as_recipe("__init__")
class MultiVectorEncoder(CoreHandle):
    """Multi-vector checkpoints saved by sentence-transformers' ``MultiVectorEncoder``:
    ``Transformer`` (with its ``query_length``, ``document_length`` and ``query_expansion``:
    with ``attend`` false, as classic ColBERT, the expansion tokens attend to the query while
    no token attends to them),
    ``Dense`` on the token embeddings, ``MultiVectorMask`` (skiplist), ``Normalize``, and a
    ``HierarchicalTokenPooling`` last (``pybert.HierarchicalTokenPooling``).
    ``encode*`` return one float32 (tokens, dim) array per text, as sentence-transformers' with
    ``convert_to_numpy=True``. ``token_pooling`` (here or per ``encode`` call): a
    ``pybert.HierarchicalTokenPooling`` applied after the checkpoint's own modules, as
    sentence-transformers' argument of that name (not part of the checkpoint).

    >>> enc = pybert.MultiVectorEncoder("path/to/colbert")
    >>> q = enc.encode_query("what is late interaction?")          # (tokens, 128)
    >>> pybert.maxsim(q, enc.encode_document(["...", "..."]))        # (2,) scores
    """

    def __init__(self, path: Union[str, os.PathLike], max_length: Optional[int] = None,
                 num_threads: Optional[int] = None, precision: str = "fp32", *,
                 prompts: Optional[Dict[str, str]] = None,
                 default_prompt_name: Optional[str] = None,
                 truncate_dim: Optional[int] = None,
                 similarity_fn_name: Optional[str] = None,
                 token_pooling: Optional[HierarchicalTokenPooling] = None):
        self.path = _st.check_dir(path)
        self.token_pooling = _token_pooling_arg(token_pooling)
        self.truncate_dim = _inputs.optional_positive_int(truncate_dim, "truncate_dim")
        modules = _st.read_modules(self.path, "MultiVectorEncoder", _SUPPORTED)
        kinds = [m.kind for m in modules]
        pooling = "HierarchicalTokenPooling"
        if not kinds or kinds[0] != "Transformer" or kinds.count("Transformer") != 1 \
                or kinds.count("Dense") > 1 or kinds.count(pooling) > 1 \
                or (pooling in kinds and kinds[-1] != pooling):
            raise ValueError(f"{self.path}: MultiVectorEncoder needs one Transformer first, then "
                             "at most one Dense, MultiVectorMask and Normalize, and at most one "
                             f"HierarchicalTokenPooling last; got {kinds}")
        self._pipeline_pooling = HierarchicalTokenPooling.from_config(
            modules[-1].config, modules[-1].path) if kinds[-1] == pooling else None
        transformer = modules[0]
        dense = next((m for m in modules if m.kind == "Dense"), None)
        mask = next((m for m in modules if m.kind == "MultiVectorMask"), None)
        normalize = any(m.kind == "Normalize" for m in modules)
        if dense is not None and normalize and kinds.index("Normalize") < kinds.index("Dense"):
            raise ValueError(f"{self.path}: Normalize before Dense is not supported")
        self.config = BertConfig.from_pretrained(transformer.path)
        st_config = _st.transformer_config(transformer.path)
        self.tokenizer = _st.load_tokenizer(transformer.path, st_config)
        self.query_length = st_config.get("query_length")
        self.document_length = st_config.get("document_length")
        self.query_expansion = st_config.get("query_expansion")
        if self.query_expansion is not None:
            self._check_expansion(self.query_expansion)
        mask_config = mask.config if mask else {}
        self.skiplist_words: List[str] = list(mask_config.get("skiplist_words") or [])
        tasks = mask_config.get("skiplist_tasks") or ["document"]
        self.skiplist_tasks: List[str] = [tasks] if isinstance(tasks, str) else list(tasks)
        self.keep_only_token_ids = mask_config.get("keep_only_token_ids")
        self._skip_ids = np.array(sorted({i for i in map(self.tokenizer.token_to_id,
                                                          self.skiplist_words) if i is not None}),
                                  dtype=np.int64)
        self._has_mask = mask is not None
        if dense is not None:
            d = _dense(dense)
        else:  # no projection: the identity, hidden -> hidden
            d = {"weight": np.eye(self.config.hidden_size, dtype=np.float32), "bias": None,
                 "activation": "Identity"}
        self.precision = _inputs.precision_arg(precision)
        self._core = _core.MultiVectorModel(
            self.config.to_core(), load_weights(transformer.path), d["weight"], d["bias"],
            activation=d["activation"], normalize=normalize,
            num_threads=_inputs.num_threads_arg(num_threads), precision=self.precision)
        _inputs.warn_precision_fallback(self.precision)
        self.max_seq_length = max_length if max_length is not None \
            else _st.max_seq_length(st_config, self.tokenizer, self)
        saved = _st.model_config(self.path)
        self._prompts = _st.Prompts(saved, prompts, default_prompt_name)
        self.similarity_fn_name = similarity_fn_name or saved.get("similarity_fn_name") \
            or "maxsim"

    @property
    def similarity_fn_name(self) -> str:
        """How ``similarity`` scores: "maxsim", or "meanmaxsim" (divided by the query's token
        count); from config_sentence_transformers.json unless given."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str) -> None:
        self._similarity_fn_name = _st.similarity_name(value, _SIMILARITIES)

    def similarity(self, queries: Any, documents: Any) -> np.ndarray:
        """float32 (n_queries, n_documents) scores by ``similarity_fn_name``, as
        sentence-transformers' ``similarity``; each argument a list of (tokens, dim) arrays,
        or one (tokens, dim) array (a batch of one)."""
        qs, ds = _multi_vectors(queries, "queries"), _multi_vectors(documents, "documents")
        out = np.zeros((len(qs), len(ds)), dtype=np.float32)
        for i, q in enumerate(qs):
            out[i] = maxsim(q, ds, num_threads=self.num_threads,
                            length_normalize=self._similarity_fn_name == "meanmaxsim")
        return out

    def similarity_pairwise(self, queries: Any, documents: Any) -> np.ndarray:
        """float32 (n,) scores of queries[i] against documents[i], as ``similarity``'s
        diagonal."""
        qs, ds = _multi_vectors(queries, "queries"), _multi_vectors(documents, "documents")
        if len(qs) != len(ds):
            raise ValueError(f"got {len(qs)} queries and {len(ds)} documents; similarity_pairwise "
                             "pairs them one to one")
        return np.array([maxsim(q, [d], num_threads=self.num_threads,
                                length_normalize=self._similarity_fn_name == "meanmaxsim")[0]
                         for q, d in zip(qs, ds)], dtype=np.float32).reshape(len(qs))

    def _check_expansion(self, expansion: Dict[str, Any]) -> None:
        strategy, length = expansion.get("strategy"), expansion.get("length")
        if strategy not in ("fixed", "min") or not _inputs.is_positive_int(length):
            raise ValueError(f"query_expansion {expansion!r} is not supported (supported: "
                             "strategy 'fixed' or 'min' with a positive 'length')")
        token = expansion.get("token")
        self._expansion_id = self.tokenizer.token_to_id(token if token is not None else "[MASK]")
        if self._expansion_id is None:
            raise ValueError(f"query_expansion token {token or '[MASK]'!r} is not in the "
                             "tokenizer's vocabulary")

    @property
    def prompts(self) -> Dict[str, str]:
        return dict(self._prompts.prompts)

    def get_embedding_dimension(self) -> int:
        """The width of each token vector ``encode`` returns (``truncate_dim`` applied)."""
        return min(self._core.dim, self.truncate_dim or self._core.dim)

    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
               prompt_name: Optional[str] = None, prompt: Optional[str] = None,
               task: Optional[str] = None, show_progress: Optional[bool] = None, *,
               normalize_embeddings: bool = False, truncate_dim: Optional[int] = None,
               token_pooling: Optional[HierarchicalTokenPooling] = None
               ) -> Union[np.ndarray, List[np.ndarray]]:
        """A float32 (tokens, dim) array per text (one array for one string). ``task``:
        None, "query" or "document" (the lengths, expansion and skiplist of that side).
        ``normalize_embeddings`` L2-normalizes every token vector; ``token_pooling`` (default:
        the encoder's) then pools them when its ``tasks`` include the task; ``truncate_dim``
        (default: the encoder's) keeps each vector's first features, renormalized, as
        sentence-transformers does."""
        if task not in (None, "query", "document"):
            raise ValueError(f"task must be None, 'query' or 'document', got {task!r}")
        return self._encode(sentences, batch_size, self._prompts.resolve(prompt, prompt_name),
                            task, show_progress, normalize_embeddings, truncate_dim,
                            token_pooling)

    def encode_query(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
                     prompt_name: Optional[str] = None, prompt: Optional[str] = None,
                     show_progress: Optional[bool] = None, *, normalize_embeddings: bool = False,
                     truncate_dim: Optional[int] = None,
                     token_pooling: Optional[HierarchicalTokenPooling] = None
                     ) -> Union[np.ndarray, List[np.ndarray]]:
        """``encode`` as a query: the "query" prompt, ``query_length``, query expansion."""
        return self._encode(sentences, batch_size, self._prompts.for_query(prompt, prompt_name),
                            "query", show_progress, normalize_embeddings, truncate_dim,
                            token_pooling)

    def encode_document(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
                        prompt_name: Optional[str] = None, prompt: Optional[str] = None,
                        show_progress: Optional[bool] = None, *,
                        normalize_embeddings: bool = False, truncate_dim: Optional[int] = None,
                        token_pooling: Optional[HierarchicalTokenPooling] = None
                        ) -> Union[np.ndarray, List[np.ndarray]]:
        """``encode`` as a document: the "document" prompt, ``document_length``, the skiplist."""
        return self._encode(sentences, batch_size,
                            self._prompts.for_document(prompt, prompt_name), "document",
                            show_progress, normalize_embeddings, truncate_dim, token_pooling)

    def _tokenize(self, texts: List[str], task: Optional[str]) -> Dict[str, np.ndarray]:
        """Token ids and the tokens to output (``keep``), as sentence-transformers' Transformer
        preprocessing and MultiVectorMask choose them."""
        length = {"query": self.query_length, "document": self.document_length}.get(task)
        expansion = self.query_expansion if task == "query" else None
        if expansion is not None:
            if expansion["strategy"] == "fixed":
                length = expansion["length"]
            elif length is not None:
                length = max(length, expansion["length"])
        batch = self.tokenizer(texts, max_length=length if length is not None
                               else self.max_seq_length)
        keep = batch["attention_mask"].copy()
        if expansion is not None:  # pads up to the expansion length become expansion tokens
            floor = expansion["length"]
            seq = batch["input_ids"].shape[1]
            if seq < floor:
                batch = {k: np.pad(v, ((0, 0), (0, floor - seq))) for k, v in batch.items()}
                keep = np.pad(keep, ((0, 0), (0, floor - seq)))
            positions = (batch["attention_mask"] == 0) & \
                (np.arange(batch["input_ids"].shape[1]) < floor)
            batch["input_ids"][positions] = self._expansion_id
            if expansion.get("attend", False):
                batch["attention_mask"][positions] = 1
            else:  # classic ColBERT: they attend to the query, nothing attends to them
                batch["query_only"] = positions.astype(np.int64)
            keep[positions] = 1
        if self._has_mask and (task or "document") in self.skiplist_tasks and self._skip_ids.size:
            keep &= ~np.isin(batch["input_ids"], self._skip_ids)
        if self._has_mask and task != "query" and self.keep_only_token_ids:
            keep &= np.isin(batch["input_ids"], np.asarray(self.keep_only_token_ids))
        batch["keep"] = keep
        return batch

    def _encode(self, sentences: Union[str, Sequence[str]], batch_size: int, prompt: str,
                task: Optional[str], show_progress: Optional[bool],
                normalize_embeddings: bool = False, truncate_dim: Optional[int] = None,
                token_pooling: Optional[HierarchicalTokenPooling] = None
                ) -> Union[np.ndarray, List[np.ndarray]]:
        single = isinstance(sentences, str)
        texts = [prompt + t for t in check_texts(sentences, "sentences")]
        batch_size = _inputs.batch_size_arg(batch_size)
        truncate = _inputs.optional_positive_int(truncate_dim, "truncate_dim")
        truncate = self.truncate_dim if truncate is None else truncate
        width = min(self._core.dim, truncate or self._core.dim)
        # sentence-transformers' order: the checkpoint's modules (its pooling last), then
        # normalize_embeddings, the call's pooling, truncate_dim (renormalized).
        pipeline = self._pipeline_pooling
        pipeline = pipeline if pipeline is not None and pipeline.applies_to(task) else None
        extra = _token_pooling_arg(token_pooling)
        extra = self.token_pooling if extra is None else extra
        extra = extra if extra is not None and extra.applies_to(task) else None
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: List[np.ndarray] = [np.zeros((0, width), np.float32)] * len(texts)
        for idx in _progress([order[i:i + batch_size] for i in range(0, len(texts), batch_size)],
                             show_progress):
            batch = self._tokenize([texts[i] for i in idx], task)
            pooled = pipeline is not None or extra is not None
            vectors = self._core.encode(batch["input_ids"], batch["attention_mask"],
                                        batch["token_type_ids"], batch["keep"],
                                        batch.get("query_only"),
                                        truncate_dim=0 if pooled else truncate or 0,
                                        normalize_embeddings=bool(normalize_embeddings)
                                        and not pooled)
            counts = batch["keep"].sum(axis=1)
            if pooled:
                threads = self.num_threads
                if pipeline is not None:
                    vectors, counts = pipeline.pool_rows(vectors, counts, threads)
                if normalize_embeddings:
                    vectors = _core.normalize_rows(vectors, num_threads=threads or 0)
                if extra is not None:
                    vectors, counts = extra.pool_rows(vectors, counts, threads)
                if truncate:
                    vectors = _core.normalize_rows(vectors, width=truncate,
                                                   num_threads=threads or 0)
            for i, rows in zip(idx, np.split(vectors, np.cumsum(counts)[:-1])):
                out[i] = rows
        return out[0] if single else out

    def __repr__(self) -> str:
        return (f"MultiVectorEncoder(path={self.path!r}, dim={self._core.dim}, "
                f"query_length={self.query_length}, document_length={self.document_length})")


def _token_pooling_arg(value: Any) -> Optional[HierarchicalTokenPooling]:
    if value is not None and not isinstance(value, HierarchicalTokenPooling):
        raise TypeError("token_pooling must be a pybert.HierarchicalTokenPooling or None, got "
                        f"{type(value).__name__}")
    return value


def _multi_vectors(x: Any, name: str) -> List[np.ndarray]:
    """A list of (tokens, dim) arrays, or one (tokens, dim) array as a list of one."""
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return [x]
    if isinstance(x, (str, bytes)) or not isinstance(x, (list, tuple)):
        raise TypeError(f"{name} must be a list of (tokens, dim) arrays or one (tokens, dim) "
                        f"array, got {type(x).__name__}")
    return list(x)


def maxsim(query: Any, documents: Sequence[Any], *, num_threads: Optional[int] = None,
           length_normalize: bool = False) -> np.ndarray:
    """MaxSim scores of one query against documents, in the C++ core: for each document, the
    sum over the query's token vectors of their largest dot product with the document's
    (divided by the query's token count with ``length_normalize``: MeanMaxSim).

    ``query`` (q, dim); ``documents`` a sequence of (d_i, dim) arrays -> float32 (n_docs,).
    A document without tokens scores -1e9, as in sentence-transformers.
    """
    q = np.ascontiguousarray(query, dtype=np.float32)
    if q.ndim != 2:
        raise ValueError(f"query must be 2-D (tokens, dim), got shape {q.shape}")
    if isinstance(documents, np.ndarray) and documents.ndim == 2:
        raise TypeError("documents must be a sequence of (tokens, dim) arrays; for one document "
                        "pass [document]")
    docs = [np.asarray(d, dtype=np.float32) for d in documents]
    for i, d in enumerate(docs):
        if d.ndim != 2 or d.shape[1] != q.shape[1]:
            raise ValueError(f"documents[{i}] must be 2-D (tokens, {q.shape[1]}), got shape "
                             f"{d.shape}")
    rows = np.concatenate(docs) if docs else np.zeros((0, q.shape[1]), np.float32)
    offsets = _inputs.offsets([d.shape[0] for d in docs])
    return _core.maxsim(q, rows, offsets, length_normalize=bool(length_normalize),
                        num_threads=_inputs.num_threads_arg(num_threads))
