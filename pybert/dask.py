"""Sentence embeddings of a Dask collection, computed on the Dask workers.

Needs Dask (``pip install "pybert[dask]"``); ``import pybert`` does not import it.

>>> import dask.dataframe as dd, pybert.dask
>>> ddf = dd.read_parquet("corpus/")                  # a text column, many partitions
>>> vectors = pybert.dask.embed(ddf, column="text")  # dask Array (n, 384), one block a partition
>>> vectors.to_zarr("vectors.zarr")                  # or .compute(), da.store(...), ...

The encoder travels to the workers as its recipe (path and options, see :mod:`pybert.recipe`):
each worker process maps the weights once, on its first task, and keeps them for every later
task. Each task's thread budget is chosen so that all tasks running at once on a host share its
CPUs without oversubscribing them (see :func:`thread_budget`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import dask
import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import numpy as np

from . import _core, _inputs
from .encoder import SentenceEncoder
from .recipe import Recipe, load, recipe_of

__all__ = ["embed", "thread_budget", "tasks_at_once"]

# Tasks that may run at once: one count for the whole machine (local schedulers), or one per
# host name (a distributed cluster).
TasksAtOnce = Union[int, Dict[str, int]]


def tasks_at_once() -> TasksAtOnce:
    """How many tasks the current Dask scheduler runs at once, on each host.

    With a distributed Client: the threads of all workers on each host (from the scheduler's
    worker list). Without one: 1 for the synchronous scheduler, else dask's ``num_workers``
    setting or, unset, the usable CPUs (the threaded and process schedulers' default pool)."""
    try:
        from distributed import default_client
        client = default_client()
    except (ImportError, ValueError):  # no distributed, or no client
        client = None
    if client is not None:
        per_host: Dict[str, int] = {}
        for worker in client.scheduler_info(n_workers=-1)["workers"].values():
            per_host[worker["host"]] = per_host.get(worker["host"], 0) + worker["nthreads"]
        return per_host
    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
        return 1
    return int(dask.config.get("num_workers", None) or _core.usable_cpus())


def thread_budget(at_once: TasksAtOnce) -> int:
    """pybert threads for one task: ``max(1, usable_cpus // tasks running at once on this host)``.

    ``usable_cpus`` is this process's CPUs (affinity mask and cgroup quota). Inside a distributed
    worker, the host's count comes from ``at_once`` (falling back to the worker's own threads);
    2 workers x 1 thread on 8 CPUs gives 4 threads a task, 4 workers x 2 threads gives 1."""
    if isinstance(at_once, dict):
        from distributed import get_worker
        from distributed.comm import get_address_host

        worker = get_worker()
        count = at_once.get(get_address_host(worker.address), worker.state.nthreads)
    else:
        count = at_once
    return max(1, _core.usable_cpus() // max(1, count))


@dataclasses.dataclass(frozen=True)
class _EmbedTask:
    """What every task of one embed() call runs: texts of one partition -> (n, dim) vectors."""

    recipe: Recipe                  # the encoder's, num_threads chosen on the worker
    at_once: TasksAtOnce
    num_threads: Optional[int]      # fixed by the caller; None: thread_budget(at_once)
    batch_size: int
    normalize: Optional[bool]
    pooling: Union[str, Sequence[str], None]

    def encoder(self) -> SentenceEncoder:
        threads = self.num_threads or thread_budget(self.at_once)
        return load(self.recipe.replace(num_threads=threads))

    def __call__(self, texts: Any) -> np.ndarray:
        # Partitions arrive as object arrays (DataFrame column blocks) or lists (Bag).
        texts = list(texts.tolist() if isinstance(texts, np.ndarray) else texts)
        return self.encoder().encode(texts, batch_size=self.batch_size, normalize=self.normalize,
                                     pooling=self.pooling, show_progress=False)

    def rows(self, texts: Any) -> List[np.ndarray]:
        """One (dim,) vector per text, for Bags."""
        return list(self(texts))

    def __dask_tokenize__(self) -> Any:
        return ("pybert.dask.embed", self.recipe.__dask_tokenize__(), repr(self.at_once),
                self.num_threads, self.batch_size, self.normalize, repr(self.pooling))


def embed(data: Union[dd.DataFrame, dd.Series, db.Bag],
          model: Union[SentenceEncoder, str, os.PathLike, None] = None, *,
          column: Optional[str] = None, batch_size: int = 32, normalize: Optional[bool] = None,
          pooling: Union[str, Sequence[str], None] = None, num_threads: Optional[int] = None,
          lengths: bool = True) -> Union[da.Array, db.Bag]:
    """Embed every text of a Dask collection on the workers; lazy, like any Dask collection.

    ``data``: a Dask DataFrame (with ``column``, the text column), a Dask Series, or a Dask Bag
    of strings. ``model``: a SentenceEncoder, or a model directory (default: all-MiniLM-L6-v2);
    the workers must see the same path. ``batch_size``, ``normalize``, ``pooling``: as
    ``SentenceEncoder.encode``. ``num_threads``: pybert threads per task; None picks
    ``thread_budget`` on each worker.

    Returns, aligned with the input:

    - for a DataFrame or Series, a float32 Dask Array (n, dim) whose row blocks are the input's
      partitions, in order. ``lengths=True`` computes the partition lengths first (one pass
      over the text column) so the chunks are known; ``lengths=False`` skips that pass and
      leaves the row chunks unknown (NaN).
    - for a Bag, a Bag of float32 (dim,) vectors, partition for partition.
    """
    batch_size = _inputs.batch_size_arg(batch_size)
    num_threads = _inputs.num_threads_arg(num_threads) or None
    encoder = model if isinstance(model, SentenceEncoder) else SentenceEncoder(model)
    dim = encoder.get_sentence_embedding_dimension(pooling)  # checks pooling, too
    task = _EmbedTask(recipe_of(encoder), tasks_at_once(), num_threads, batch_size,
                      normalize, pooling)

    if isinstance(data, db.Bag):
        if column is not None:
            raise ValueError("column= is for DataFrames; a Bag holds the texts themselves")
        return data.map_partitions(task.rows, token="pybert-embed")
    if not isinstance(data, (dd.DataFrame, dd.Series)):
        raise TypeError("embed() takes a Dask DataFrame (with column=), Series or Bag of "
                        f"strings, got {type(data).__name__}")
    if isinstance(data, dd.DataFrame):
        if column is None:
            raise ValueError("embedding a DataFrame needs column=, the name of its text column")
        if column not in data.columns:
            raise ValueError(f"column {column!r} is not in the DataFrame; its columns are "
                             + ", ".join(map(repr, data.columns)))
        data = data[column]
    elif column is not None:
        raise ValueError("column= is for DataFrames; a Series holds the texts themselves")
    # Object dtype: dask converts pandas' string dtype with a warning otherwise.
    texts = data.astype(object).to_dask_array(lengths=True if lengths else None)  # (n,) object
    return texts.map_blocks(task, token="pybert-embed", chunks=(texts.chunks[0], (dim,)),
                            new_axis=1, dtype=np.float32,
                            meta=np.empty((0, dim), dtype=np.float32))  # (n, dim) float32
