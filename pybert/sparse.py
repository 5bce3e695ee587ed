"""SparseEncoder: SPLADE vectors over the vocabulary, as sentence-transformers' SparseEncoder.

The masked-LM logits of every real token go through log(1 + relu(.)) and are pooled (max or
sum) over the sequence in the decoder GEMM's epilogue in the C++ core: no (tokens, vocab_size)
logits are ever stored. Results are CSR rows (``SparseEmbeddings``), numpy only.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _inputs, _st
from .config import BertConfig
from .encoder import (SentenceConfig, _check_max_pooled_tokens, _load_sentence_model, _progress,
                      _read_json)
from .heads import MASKED_LM_CLASSES
from .modeling import load_weights
from .recipe import pickles_as_recipe
from .safetensors import load_safetensors
from .tokenizer import check_texts

__all__ = ["SparseEncoder", "SparseEmbeddings"]

_TRANSFORMERS = ("Transformer", "MLMTransformer")
_ROUTE_MODULES = _TRANSFORMERS + ("SpladePooling", "SparseStaticEmbedding")
_SUPPORTED = _TRANSFORMERS + ("SpladePooling", "Router", "SparseStaticEmbedding", "Pooling",
                              "Dense", "LayerNorm", "Normalize", "SparseAutoEncoder")
_SIMILARITIES = ("dot", "cosine", "euclidean", "manhattan")
_Csr = Tuple[np.ndarray, np.ndarray, np.ndarray]  # indptr (n + 1), indices int32, data float32


class SparseEmbeddings:
    """Sparse vectors as compressed sparse rows: row r holds ``indices[indptr[r]:indptr[r+1]]``
    (int32 columns, ascending) with ``data`` (float32) at the same places; ``shape`` is
    (rows, vocab_size), or (vocab_size,) for the vector of one text."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                 shape: Tuple[int, ...]):
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.shape = tuple(shape)

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return self.shape[0] if len(self.shape) == 2 else 1

    def _rows(self) -> int:
        return len(self.indptr) - 1

    def toarray(self) -> np.ndarray:
        """The dense float32 array of ``shape``."""
        dense = np.zeros((self._rows(), self.shape[-1]), dtype=np.float32)
        rows = np.repeat(np.arange(self._rows()), np.diff(self.indptr))
        dense[rows, self.indices] = self.data
        return dense.reshape(self.shape)

    def to_scipy(self):
        """A ``scipy.sparse.csr_matrix`` of (rows, vocab_size) (needs scipy)."""
        try:
            import scipy.sparse
        except ImportError:
            raise ImportError("to_scipy needs scipy: pip install scipy") from None
        return scipy.sparse.csr_matrix((self.data, self.indices, self.indptr),
                                       shape=(self._rows(), self.shape[-1]))

    def row(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """(indices, values) of row i."""
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.data[lo:hi]

    def __repr__(self) -> str:
        return f"SparseEmbeddings(shape={self.shape}, nnz={self.nnz})"


def _concat(parts: List[Tuple[np.ndarray, np.ndarray, np.ndarray]], order: np.ndarray
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR batches (in ``order`` of the texts they hold) -> one CSR in text order."""
    counts, indices, data = [], [], []
    for indptr, idx, val in parts:
        counts.append(np.diff(indptr))
        indices.extend(np.split(idx, indptr[1:-1]))
        data.extend(np.split(val, indptr[1:-1]))
    n = len(order)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)  # rank[i]: where text i's row sits in batch order
    counts_all = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    indptr = _inputs.offsets(counts_all[rank])
    out_idx = np.concatenate([indices[r] for r in rank]) if n else np.zeros(0, np.int32)
    out_val = np.concatenate([data[r] for r in rank]) if n else np.zeros(0, np.float32)
    return indptr, out_idx.astype(np.int32, copy=False), out_val.astype(np.float32, copy=False)


class _SpladeRoute:
    """``Transformer`` (fill-mask) + ``SpladePooling``: the masked LM, its activation and its
    pooling in the core (SpladeModel)."""

    def __init__(self, transformer: "_st.Module", pooling: "_st.Module",
                 max_length: Optional[int], num_threads: int, precision: str):
        self.pooling_strategy = str(pooling.config.get("pooling_strategy", "max"))
        self.activation_function = str(pooling.config.get("activation_function", "relu"))
        if self.pooling_strategy not in ("max", "sum"):
            raise ValueError(f"SpladePooling pooling_strategy {self.pooling_strategy!r} is not "
                             "supported (supported: max, sum)")
        if self.activation_function not in ("relu", "log1p_relu"):
            raise ValueError(f"SpladePooling activation_function {self.activation_function!r} "
                             "is not supported (supported: relu, log1p_relu)")
        self.config = BertConfig.from_pretrained(transformer.path)
        architectures = self.config.architectures or []
        masked_lm = [cls.__name__ for cls in MASKED_LM_CLASSES]
        if architectures[:1] not in [[name] for name in masked_lm]:
            raise ValueError(f"{transformer.path}: SparseEncoder runs masked-LM checkpoints "
                             f"({', '.join(masked_lm)}), config.json names "
                             f"{architectures or 'no architecture'}")
        st_config = _st.transformer_config(transformer.path)
        self.tokenizer = _st.load_tokenizer(transformer.path, st_config)
        self._core = _core.SpladeModel(
            self.config.to_core(), load_weights(transformer.path),
            tie_word_embeddings=bool(self.config.extra.get("tie_word_embeddings", True)),
            num_threads=num_threads, precision=precision)
        self.max_seq_length = max_length if max_length is not None \
            else _st.max_seq_length(st_config, self.tokenizer, self)
        self.dimension = self.config.vocab_size

    @property
    def num_threads(self) -> int:
        return self._core.num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._core.num_threads = value

    def close(self) -> None:
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def encode(self, texts: List[str], max_active_dims: int, prompt: str = "") -> _Csr:
        batch = self.tokenizer(texts, max_length=self.max_seq_length)
        return self._core.encode(batch["input_ids"], batch["attention_mask"],
                                 batch["token_type_ids"], pooling_strategy=self.pooling_strategy,
                                 activation_function=self.activation_function,
                                 max_active_dims=max_active_dims)


class _StaticRoute:
    """``SparseStaticEmbedding`` (the query side of inference-free SPLADE): each token present
    in the text (tokenized without special tokens) gets its static weight, e.g. its IDF."""

    def __init__(self, module: "_st.Module", num_threads: int):
        file = os.path.join(module.path, "model.safetensors")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no model.safetensors in {module.path!r}")
        store = load_safetensors(file)
        if "weight" not in store:
            raise ValueError(f"{file} has no tensor 'weight' (SparseStaticEmbedding's weights)")
        self.weight = np.ascontiguousarray(store.get("weight"), dtype=np.float32)
        if self.weight.ndim != 1:
            raise ValueError(f"{file}: SparseStaticEmbedding weight must be 1-D (vocab_size,), "
                             f"got shape {self.weight.shape}")
        self.tokenizer = _st.load_tokenizer(module.path, {})
        self.max_seq_length = self.tokenizer.model_max_length
        self.dimension = int(self.weight.shape[0])
        self.num_threads = num_threads
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def encode(self, texts: List[str], max_active_dims: int, prompt: str = "") -> _Csr:
        if self.closed:
            raise ValueError("the model is closed")
        batch = self.tokenizer(texts, max_length=self.max_seq_length, add_special_tokens=False)
        return _core.token_presence(batch["input_ids"], batch["attention_mask"], self.weight,
                                    max_active_dims=max_active_dims,
                                    num_threads=self.num_threads)


class _CsrRoute:
    """``Transformer``, ``Pooling`` (and ``Dense``, ``LayerNorm``, ``Normalize``), then
    ``SparseAutoEncoder`` (CSR, "Beyond Matryoshka"): the sentence embedding as SentenceEncoder
    computes it, then the autoencoder's k largest latents (relu), all in the core."""

    def __init__(self, root: str, entries: List[Dict[str, Any]], sae: "_st.Module",
                 max_length: Optional[int], num_threads: int, precision: str):
        self.sentence = SentenceConfig.from_modules(root, entries)
        self.model = _load_sentence_model(self.sentence, num_threads or None, precision)
        if self.model.tokenizer is None:
            raise FileNotFoundError(f"no tokenizer in {self.sentence.transformer_path!r}")
        self.tokenizer = self.model.tokenizer.lowercased() if self.sentence.do_lower_case \
            else self.model.tokenizer
        self.config = self.model.config
        self.max_seq_length = max_length if max_length is not None \
            else _st.max_seq_length({"max_seq_length": self.sentence.max_seq_length},
                                    self.tokenizer, self)
        file = os.path.join(sae.path, "model.safetensors")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no model.safetensors in {sae.path!r}")
        store = load_safetensors(file)
        weight = next((n for n in ("encoder.weight", "decoder.linear.weight") if n in store), None)
        for name in (weight or "encoder.weight", "latent_bias", "pre_bias"):
            if name not in store:
                raise ValueError(f"{file} has no tensor {name!r} (SparseAutoEncoder's weights)")
        self.k = int(sae.config.get("k", 8))
        self._sae = _core.SparseAutoEncoder(
            store.get(weight), store.get("latent_bias"), store.get("pre_bias"),
            normalize=bool(sae.config.get("normalize", False)), num_threads=num_threads)
        self.dimension = self._sae.dim

    @property
    def num_threads(self) -> int:
        return self._sae.num_threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._sae.num_threads = value
        self.model._core.num_threads = value

    def close(self) -> None:
        self.model.close()
        self._sae.close()

    @property
    def closed(self) -> bool:
        return self._sae.closed

    def encode(self, texts: List[str], max_active_dims: int, prompt: str = "") -> _Csr:
        if self.closed:
            raise ValueError("the model is closed")
        batch = self.tokenizer(texts, max_length=self.max_seq_length)
        prompt_length = 0 if not prompt or self.sentence.include_prompt \
            else self.tokenizer.prompt_length(prompt, max_length=self.max_seq_length)
        if "max" in self.sentence.pooling:
            _check_max_pooled_tokens(batch["attention_mask"], batch["input_ids"].shape,
                                     prompt_length)
        x = self.model._core.forward(batch["input_ids"], batch["attention_mask"],
                                     batch["token_type_ids"], modes=None, pooler=False,
                                     normalize_modules=True, normalize_last=False,
                                     prompt_length=prompt_length, truncate_dim=0)
        return self._sae.encode(x, max_active_dims or self.k)


_MODEL_ROUTES = (_SpladeRoute, _CsrRoute)  # the routes that run a transformer


def _route(modules: List["_st.Module"], max_length: Optional[int], num_threads: int,
           precision: str, root: Optional[str] = None
           ) -> Union[_SpladeRoute, _StaticRoute, _CsrRoute]:
    kinds = [m.kind for m in modules]
    if kinds == ["SparseStaticEmbedding"]:
        return _StaticRoute(modules[0], num_threads)
    if len(modules) == 2 and kinds[0] in _TRANSFORMERS and kinds[1] == "SpladePooling":
        return _SpladeRoute(modules[0], modules[1], max_length, num_threads, precision)
    if root is not None and kinds[-1:] == ["SparseAutoEncoder"] and kinds[0] == "Transformer":
        entries = _read_json(os.path.join(root, "modules.json"))[:-1]
        return _CsrRoute(root, entries, modules[-1], max_length, num_threads, precision)
    raise ValueError(f"SparseEncoder needs a Transformer (fill-mask) then a SpladePooling module, "
                     "a SparseStaticEmbedding (in a Router route), or a Transformer, Pooling, "
                     f"(Dense, LayerNorm, Normalize,) then a SparseAutoEncoder; got {kinds}")


def _as_sparse(embeddings: Union[SparseEmbeddings, np.ndarray], name: str) -> SparseEmbeddings:
    """SparseEmbeddings as given, or the nonzeros of a 1-D / 2-D dense array."""
    if isinstance(embeddings, SparseEmbeddings):
        return embeddings
    dense = np.asarray(embeddings, dtype=np.float32)
    if dense.ndim not in (1, 2):
        raise ValueError(f"{name} must be SparseEmbeddings or a 1-D or 2-D array, got "
                         f"{dense.ndim}-D")
    rows = np.atleast_2d(dense)
    nz = rows != 0
    return SparseEmbeddings(_inputs.offsets(nz.sum(1)),
                            np.nonzero(nz)[1].astype(np.int32), rows[nz], dense.shape)


def _rows(x: SparseEmbeddings, i: int) -> SparseEmbeddings:
    """Row i of x as a one-row SparseEmbeddings."""
    lo, hi = x.indptr[i], x.indptr[i + 1]
    return SparseEmbeddings(np.array([0, hi - lo], dtype=np.int64), x.indices[lo:hi],
                            x.data[lo:hi], (1, x.shape[-1]))


@pickles_as_recipe("__init__")
class SparseEncoder:
    """SPLADE checkpoints saved by sentence-transformers (``Transformer`` with
    ``transformer_task="fill-mask"`` or the older ``MLMTransformer``, then ``SpladePooling``) on
    a BERT, RoBERTa, XLM-R, DistilBERT or Megatron-BERT masked LM, and inference-free SPLADE (a
    ``Router`` whose query route is a ``SparseStaticEmbedding``, its document route SPLADE):
    ``encode`` returns one sparse vector over the vocabulary per text, equal to
    sentence-transformers' ``SparseEncoder.encode``.

    >>> enc = pybert.SparseEncoder("path/to/splade")
    >>> emb = enc.encode(["what is splade?"])      # SparseEmbeddings (1, 30522)
    >>> enc.decode(emb, top_k=3)
    [[('spl', 2.1), ('##ade', 1.9), ('what', 0.4)]]

    The decoder (the tied word embeddings) is packed for the GEMM kernel at load: one more copy
    of vocab_size x hidden floats. ``precision`` is the body's (the head runs in fp32).
    ``max_length`` applies to the SPLADE routes.
    """

    def __init__(self, path: Union[str, os.PathLike], max_length: Optional[int] = None,
                 num_threads: Optional[int] = None, precision: str = "fp32", *,
                 max_active_dims: Optional[int] = None,
                 prompts: Optional[Dict[str, str]] = None,
                 default_prompt_name: Optional[str] = None):
        self.path = _st.check_dir(path)
        self.precision = _inputs.precision_arg(precision)
        threads = _inputs.num_threads_arg(num_threads)
        if os.path.isfile(os.path.join(self.path, "modules.json")):
            modules = _st.read_modules(self.path, "SparseEncoder", _SUPPORTED)
        else:  # a plain masked-LM directory: sentence-transformers' default, max pooling
            modules = [_st.Module("Transformer", "", self.path, {}),
                       _st.Module("SpladePooling", "", "", {})]
        if [m.kind for m in modules] == ["Router"]:
            self._router: Optional[_st.Router] = _st.read_router(
                modules[0].path, "SparseEncoder", _ROUTE_MODULES)
            self._routes = {name: _route(route, max_length, threads, self.precision)
                            for name, route in self._router.routes.items()}
        else:
            self._router = None
            self._routes = {"": _route(modules, max_length, threads, self.precision, self.path)}
        dims = {r.dimension for r in self._routes.values()}
        if len(dims) != 1:
            raise ValueError(f"{self.path}: the Router's routes give vectors of different sizes "
                             f"{sorted(dims)}")
        _inputs.warn_precision_fallback(self.precision)
        # The SPLADE route (the document side of inference-free SPLADE) names the model.
        main = next((r for r in self._routes.values() if isinstance(r, _MODEL_ROUTES)),
                    next(iter(self._routes.values())))
        self.tokenizer = main.tokenizer
        splade = isinstance(main, _SpladeRoute)
        # None for a Router of static routes only
        self.config: Optional[BertConfig] = main.config if isinstance(main, _MODEL_ROUTES) \
            else None
        self.pooling_strategy = main.pooling_strategy if splade else None
        self.activation_function = main.activation_function if splade else None
        saved = _st.model_config(self.path)
        self.max_active_dims = _inputs.optional_positive_int(
            max_active_dims if max_active_dims is not None else saved.get("max_active_dims"),
            "max_active_dims")
        self._prompts = _st.Prompts(saved, prompts, default_prompt_name)
        self.similarity_fn_name = saved.get("similarity_fn_name") or "dot"

    @property
    def max_seq_length(self) -> Optional[int]:
        """Tokens a text keeps on the routes that run a model (longer ones are truncated)."""
        models = [r for r in self._routes.values() if isinstance(r, _MODEL_ROUTES)]
        return models[0].max_seq_length if models else None

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        length = _inputs.optional_positive_int(value, "max_seq_length")
        if length is None:
            raise ValueError("max_seq_length must be a positive integer, got None")
        for route in self._routes.values():
            if isinstance(route, _MODEL_ROUTES):
                route.max_seq_length = length

    @property
    def similarity_fn_name(self) -> str:
        """How ``similarity`` scores: "dot" (sentence-transformers' default for sparse models),
        "cosine", "euclidean" or "manhattan" (negated distances); from
        config_sentence_transformers.json."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str) -> None:
        self._similarity_fn_name = _st.similarity_name(value, _SIMILARITIES)

    def similarity(self, a: Union[SparseEmbeddings, np.ndarray],
                   b: Union[SparseEmbeddings, np.ndarray]) -> np.ndarray:
        """float32 (len(a), len(b)) scores of every row of ``a`` against every row of ``b`` by
        ``similarity_fn_name``, in the C++ core on the sparse rows."""
        x, y = _as_sparse(a, "a"), _as_sparse(b, "b")
        if x.shape[-1] != y.shape[-1]:
            raise ValueError(f"a has {x.shape[-1]} columns, b {y.shape[-1]}")
        return _core.sparse_similarity(x.indptr, x.indices, x.data, y.indptr, y.indices, y.data,
                                       cols=x.shape[-1], similarity=self._similarity_fn_name,
                                       num_threads=_inputs.num_threads_arg(self.num_threads))

    def similarity_pairwise(self, a: Union[SparseEmbeddings, np.ndarray],
                            b: Union[SparseEmbeddings, np.ndarray]) -> np.ndarray:
        """float32 (n,) scores of row i of ``a`` against row i of ``b``."""
        x, y = _as_sparse(a, "a"), _as_sparse(b, "b")
        n = len(x.indptr) - 1
        if n != len(y.indptr) - 1:
            raise ValueError(f"a has {n} rows, b {len(y.indptr) - 1}; similarity_pairwise pairs "
                             "them one to one")
        return np.array([self.similarity(_rows(x, i), _rows(y, i))[0, 0] for i in range(n)],
                        dtype=np.float32).reshape(n)

    @staticmethod
    def sparsity(embeddings: Union[SparseEmbeddings, np.ndarray]) -> Dict[str, float]:
        """{"active_dims": mean nonzeros per row, "sparsity_ratio": 1 - that / columns}, as
        sentence-transformers' ``SparseEncoder.sparsity``."""
        x = _as_sparse(embeddings, "embeddings")
        rows, cols = len(x.indptr) - 1, x.shape[-1]
        if rows == 0 or cols == 0:
            return {"active_dims": 0.0, "sparsity_ratio": 1.0}
        active = float(np.mean(np.diff(x.indptr)))
        return {"active_dims": active, "sparsity_ratio": 1.0 - active / cols}

    @property
    def num_threads(self) -> Optional[int]:
        """Threads each call uses; None: ``pybert.set_num_threads``, else every usable CPU."""
        return next(iter(self._routes.values())).num_threads or None

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        for route in self._routes.values():
            route.num_threads = _inputs.num_threads_arg(value)

    def close(self) -> None:
        """Release the weights and their file mapping; later calls raise ValueError. A call
        running on another thread finishes first, on weights it still holds."""
        for route in self._routes.values():
            route.close()

    @property
    def closed(self) -> bool:
        return all(route.closed for route in self._routes.values())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def prompts(self) -> Dict[str, str]:
        return dict(self._prompts.prompts)

    def get_embedding_dimension(self) -> int:
        return next(iter(self._routes.values())).dimension

    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
               max_active_dims: Optional[int] = None, prompt_name: Optional[str] = None,
               prompt: Optional[str] = None, show_progress: Optional[bool] = None,
               task: Optional[str] = None) -> SparseEmbeddings:
        """SparseEmbeddings of shape (n, vocab_size) for a list of texts, (vocab_size,) for one
        string. ``max_active_dims`` (default: the model's) keeps each vector's largest entries
        only, as sentence-transformers does. ``task`` picks a Router's route ("query",
        "document"; None: its default route) and is ignored without a Router."""
        return self._encode(sentences, batch_size, max_active_dims,
                            self._prompts.resolve(prompt, prompt_name), show_progress, task)

    def encode_query(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
                     max_active_dims: Optional[int] = None, prompt_name: Optional[str] = None,
                     prompt: Optional[str] = None, show_progress: Optional[bool] = None
                     ) -> SparseEmbeddings:
        """``encode`` with the model's "query" prompt, if it has one, and task "query"."""
        return self._encode(sentences, batch_size, max_active_dims,
                            self._prompts.for_query(prompt, prompt_name), show_progress, "query")

    def encode_document(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
                        max_active_dims: Optional[int] = None, prompt_name: Optional[str] = None,
                        prompt: Optional[str] = None, show_progress: Optional[bool] = None
                        ) -> SparseEmbeddings:
        """``encode`` with the model's "document" (else "passage", "corpus") prompt, if any, and
        task "document"."""
        return self._encode(sentences, batch_size, max_active_dims,
                            self._prompts.for_document(prompt, prompt_name), show_progress,
                            "document")

    def _encode(self, sentences: Union[str, Sequence[str]], batch_size: int,
                max_active_dims: Optional[int], prompt: str, show_progress: Optional[bool],
                task: Optional[str]) -> SparseEmbeddings:
        single = isinstance(sentences, str)
        texts = [prompt + t for t in check_texts(sentences, "sentences")]
        batch_size = _inputs.batch_size_arg(batch_size)
        route = self._routes[self._router.resolve(task)] if self._router is not None \
            else self._routes[""]
        limit = (self.max_active_dims if max_active_dims is None
                 else _inputs.optional_positive_int(max_active_dims, "max_active_dims"))
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]
        parts = [route.encode([texts[i] for i in idx], limit or 0, prompt)
                 for idx in _progress(batches, show_progress)]
        indptr, indices, data = _concat(parts, order)
        dim = route.dimension
        return SparseEmbeddings(indptr, indices, data, (dim,) if single else (len(texts), dim))

    @staticmethod
    def intersection(embeddings_1: Union[SparseEmbeddings, np.ndarray],
                     embeddings_2: Union[SparseEmbeddings, np.ndarray]) -> SparseEmbeddings:
        """The dimensions two sparse vectors share, as sentence-transformers'
        ``SparseEncoder.intersection``: ``embeddings_1`` one vector (vocab_size,),
        ``embeddings_2`` one vector or rows (n, vocab_size); the result has ``embeddings_2``'s
        shape and holds the products ``embeddings_1 * row`` that are positive (so ``decode``
        shows which tokens a query and a document match on)."""
        a, b = _as_sparse(embeddings_1, "embeddings_1"), _as_sparse(embeddings_2, "embeddings_2")
        if len(a.shape) != 1:
            raise ValueError(f"Expected a 1-D vector for embeddings_1, got shape {a.shape}")
        if a.shape[-1] != b.shape[-1]:
            raise ValueError(f"Vocab dimension mismatch: embeddings_1 has {a.shape[-1]}, "
                             f"embeddings_2 has {b.shape[-1]}.")
        a_idx, a_val = a.row(0)
        counts, indices, data = [], [], []
        for r in range(len(b.indptr) - 1):
            b_idx, b_val = b.row(r)
            common, ia, ib = np.intersect1d(a_idx, b_idx, assume_unique=True,
                                            return_indices=True)
            product = a_val[ia] * b_val[ib]
            keep = product > 0
            counts.append(int(keep.sum()))
            indices.append(common[keep])
            data.append(product[keep])
        return SparseEmbeddings(_inputs.offsets(counts),
                                np.concatenate([np.zeros(0, np.int32)] + indices).astype(np.int32),
                                np.concatenate([np.zeros(0, np.float32)] + data), b.shape)

    def decode(self, embeddings: Union[SparseEmbeddings, np.ndarray], top_k: Optional[int] = None
               ) -> Union[List[Tuple[str, float]], List[List[Tuple[str, float]]]]:
        """(token, weight) pairs of each vector's nonzero entries, largest weight first (at most
        ``top_k``); one list for a 1-D input, a list per row otherwise."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                                  or top_k <= 0):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        sparse = _as_sparse(embeddings, "embeddings")
        one = len(sparse.shape) == 1
        results = []
        for r in range(len(sparse.indptr) - 1):
            idx, val = sparse.row(r)
            best = np.argsort(-val, kind="stable")[:top_k]
            results.append([(self.tokenizer.id_to_token(int(idx[i])), float(val[i]))
                            for i in best])
        return results[0] if one else results

    def __repr__(self) -> str:
        routes = "" if self._router is None else f"routes={sorted(self._routes)}, "
        splade = "" if self.pooling_strategy is None else (
            f"pooling_strategy={self.pooling_strategy!r}, "
            f"activation_function={self.activation_function!r}, ")
        return (f"SparseEncoder(path={self.path!r}, {routes}{splade}"
                f"max_seq_length={self.max_seq_length}, max_active_dims={self.max_active_dims})")

