"""Token pooling for multi-vector documents: sentence-transformers' HierarchicalTokenPooling
(Ward clustering of a document's token vectors, each cluster replaced by its mean), computed in
the C++ core. A saved pooling module in a MultiVectorEncoder checkpoint is read into one of
these; one can also be given to ``MultiVectorEncoder(token_pooling=)`` / ``encode(token_pooling=)``
or used on its own with ``pool``."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _inputs

__all__ = ["HierarchicalTokenPooling"]


class HierarchicalTokenPooling:
    """Ward-linkage clustering on cosine distance (1 - x_i . x_j, for L2-normalized token
    vectors), as sentence-transformers' ``HierarchicalTokenPooling``: the first
    ``num_protected_tokens`` of each document stay as they are; the rest become
    ``len // pool_factor`` clusters (or at most ``max_tokens`` tokens in all, or the clusters of
    the Ward tree cut at ``distance_threshold``), each replaced by its mean, in the order scipy's
    ``fcluster`` numbers them; every output vector L2-normalized with ``normalize_embeddings``.
    Only inputs of a task in ``tasks`` (default ``["document"]``; no task counts as
    "document") are pooled.

    The clustering is scipy's algorithm, so the output equals sentence-transformers' row for row;
    the one difference is rounding of the dot products, which can break an exact tie (two
    identical token vectors) the other way.

    >>> pooling = pybert.HierarchicalTokenPooling(pool_factor=2)
    >>> docs = enc.encode_document(texts, token_pooling=pooling)   # about half the vectors
    """

    def __init__(self, pool_factor: float = 1.0, *, max_tokens: Optional[int] = None,
                 distance_threshold: Optional[float] = None, num_protected_tokens: int = 1,
                 normalize_embeddings: bool = True,
                 tasks: Union[str, Sequence[str], None] = None):
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, float)) \
                or not math.isfinite(pool_factor) or pool_factor < 1:
            raise ValueError(f"pool_factor must be >= 1 and finite, got {pool_factor}.")
        if isinstance(num_protected_tokens, bool) or not isinstance(num_protected_tokens, int) \
                or num_protected_tokens < 0:
            raise ValueError("num_protected_tokens must be >= 0 and an integer, got "
                             f"{num_protected_tokens}.")
        if distance_threshold is not None:
            if isinstance(distance_threshold, bool) \
                    or not isinstance(distance_threshold, (int, float)) \
                    or not math.isfinite(distance_threshold) or distance_threshold < 0:
                raise ValueError("distance_threshold must be finite and >= 0.")
            if pool_factor != 1 or max_tokens is not None:
                raise ValueError("distance_threshold, max_tokens and a non-default pool_factor "
                                 "are mutually exclusive.")
        if max_tokens is not None:
            if pool_factor != 1:
                raise ValueError("pool_factor and max_tokens are mutually exclusive, got "
                                 f"pool_factor={pool_factor} and max_tokens={max_tokens}.")
            if not _inputs.is_positive_int(max_tokens) or max_tokens <= num_protected_tokens:
                raise ValueError("max_tokens must exceed num_protected_tokens to leave room for "
                                 f"at least one pooled token, got max_tokens={max_tokens} and "
                                 f"num_protected_tokens={num_protected_tokens}.")
        if isinstance(tasks, str):
            tasks = [tasks]
        self.pool_factor = float(pool_factor)
        self.max_tokens = max_tokens
        self.distance_threshold = None if distance_threshold is None else float(distance_threshold)
        self.num_protected_tokens = num_protected_tokens
        self.normalize_embeddings = bool(normalize_embeddings)
        self.tasks: List[str] = list(tasks) if tasks is not None else ["document"]

    @classmethod
    def from_config(cls, config: Dict[str, Any], where: str = "config") -> "HierarchicalTokenPooling":
        """The pooling a saved config.json describes; a config without ``normalize_embeddings``
        means False, as sentence-transformers loads it (indexes pooled before the option)."""
        known = ("pool_factor", "max_tokens", "distance_threshold", "num_protected_tokens",
                 "normalize_embeddings", "tasks")
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"{where}: HierarchicalTokenPooling options {unknown} are not "
                             f"supported (supported: {', '.join(known)})")
        kwargs = {k: config[k] for k in known if k in config}
        kwargs.setdefault("normalize_embeddings", False)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None

    def applies_to(self, task: Optional[str]) -> bool:
        """Whether inputs encoded for ``task`` are pooled (None counts as "document")."""
        return (task or "document") in self.tasks

    def pool_rows(self, rows: np.ndarray, counts: np.ndarray, num_threads: Optional[int] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
        """rows (n, dim) of documents of ``counts`` rows each, in order -> (pooled rows, their
        counts), in the C++ core. Ignores ``tasks``."""
        pooled, new_offsets = _core.token_pool(
            rows, _inputs.offsets(counts), num_protected_tokens=self.num_protected_tokens,
            pool_factor=self.pool_factor, max_tokens=self.max_tokens or 0,
            distance_threshold=self.distance_threshold, normalize=self.normalize_embeddings,
            num_threads=_inputs.num_threads_arg(num_threads))
        return pooled, np.diff(new_offsets)

    def pool(self, embeddings: Any, *, task: Optional[str] = None,
             attention_mask: Optional[np.ndarray] = None, padding_side: str = "right",
             num_threads: Optional[int] = None) -> Union[List[np.ndarray], np.ndarray]:
        """Pool a list of (tokens, dim) arrays (-> a list) or a padded (batch, seq, dim) array
        (-> a padded array, on ``padding_side``), as sentence-transformers' ``pool``. For the
        padded form, ``attention_mask`` (batch, seq) marks the real tokens; without it a
        document runs up to its last (``padding_side="left"``: from its first) nonzero row.
        Inputs of a task outside ``tasks`` come back unchanged."""
        if not self.applies_to(task):
            return embeddings
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        padded = isinstance(embeddings, np.ndarray) and embeddings.ndim == 3
        if padded:
            docs = _unpad(np.asarray(embeddings, dtype=np.float32), attention_mask, padding_side)
        elif isinstance(embeddings, (list, tuple)):
            docs = [np.asarray(d, dtype=np.float32) for d in embeddings]
            if any(d.ndim != 2 for d in docs) or len({d.shape[1] for d in docs}) > 1:
                raise ValueError("embeddings must be 2-D (tokens, dim) arrays of one width, got "
                                 f"shapes {[d.shape for d in docs]}")
        else:
            raise ValueError("embeddings must be a list of (tokens, dim) arrays or a padded "
                             f"(batch, seq, dim) array, got {type(embeddings).__name__}")
        if not docs:
            return [] if not padded else np.zeros((0, 0, embeddings.shape[-1]), np.float32)
        rows, counts = self.pool_rows(np.concatenate(docs), np.array([len(d) for d in docs]),
                                      num_threads)
        out = np.split(rows, np.cumsum(counts)[:-1])
        if not padded:
            return out
        width = int(counts.max())
        result = np.zeros((len(out), width, rows.shape[1]), dtype=np.float32)
        for i, d in enumerate(out):
            if padding_side == "right":
                result[i, :len(d)] = d
            elif len(d):
                result[i, width - len(d):] = d
        return result

    def _key(self) -> Tuple[Any, ...]:
        return (self.pool_factor, self.max_tokens, self.distance_threshold,
                self.num_protected_tokens, self.normalize_embeddings, tuple(self.tasks))

    def __eq__(self, other: Any) -> bool:  # equal settings: an encoder's recipe cache hits
        return isinstance(other, HierarchicalTokenPooling) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"HierarchicalTokenPooling(pool_factor={self.pool_factor}, "
                f"max_tokens={self.max_tokens}, distance_threshold={self.distance_threshold}, "
                f"num_protected_tokens={self.num_protected_tokens}, "
                f"normalize_embeddings={self.normalize_embeddings}, tasks={self.tasks})")


def _unpad(x: np.ndarray, mask: Optional[np.ndarray], padding_side: str) -> List[np.ndarray]:
    """(batch, seq, dim) -> each document's rows: those under mask 1, or without a mask the
    rows up to the last (left padding: from the first) nonzero one."""
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != x.shape[:2]:
            raise ValueError(f"attention_mask must have shape {x.shape[:2]}, got {m.shape}")
        return [doc[row.astype(bool)] for doc, row in zip(x, m)]
    docs = []
    for doc in x:
        real = np.flatnonzero(np.abs(doc).sum(axis=-1) > 0)
        if real.size == 0:
            docs.append(doc[:0])
        elif padding_side == "right":
            docs.append(doc[:real[-1] + 1])
        else:
            docs.append(doc[real[0]:])
    return docs
