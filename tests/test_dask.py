"""Models pickle as their recipe; pybert.dask.embed on a LocalCluster of 2 worker processes
equals single-process SentenceEncoder.encode, loads the model once per worker, and survives a
worker that dies mid-job."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import dask.bag as db
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import transformers
from distributed import Client, LocalCluster

import pybert
import pybert.dask
import pybert.recipe
from conftest import VARIED_TEXTS, bert_config, randomize_, run_python, save
from dask_worker_helpers import FATAL_TEXT, cached_num_threads, exit_once

ATOL = 1e-6  # distributed vs single-process, same fp32 code on both sides

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json")


def varied_sentences(n: int, seed: int = 0, max_words: int = 80) -> list:
    """``n`` sentences of 0 to ``max_words`` words (the longest truncated), drawn from English
    words, accented and non-Latin text, numbers and emoji, with the VARIED_TEXTS among them."""
    rng = np.random.default_rng(seed)
    words = " ".join(VARIED_TEXTS).split() + (
        "the a cat dog sat on mat running quickly Paris 2024 3.5 don't isn't (yes) [no] "
        "straße 東京 😀 naïve e-mail @home #tag").split()
    sentences = [" ".join(rng.choice(words, size=rng.integers(0, max_words + 1))) for _ in range(n)]
    for i, text in enumerate(VARIED_TEXTS):
        sentences[i * (n // len(VARIED_TEXTS))] = text
    return sentences


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, minilm_path) -> str:
    """A random 2-layer BERT (hidden 32) with MiniLM's tokenizer; max length 64 tokens."""
    path = tmp_path_factory.mktemp("small_bert")
    config = bert_config(vocab_size=30522, max_position_embeddings=64)
    save(randomize_(transformers.BertModel(config)), path)
    for name in TOKENIZER_FILES:
        shutil.copy(os.path.join(minilm_path, name), path)
    return os.fspath(path)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


@pytest.fixture
def fresh_client(client):
    """The cluster with every worker's model cache (and load count) emptied."""
    client.run(pybert.recipe.clear_cache)
    return client


def assert_close(ours, ref):
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    diff = np.abs(ours - ref).max()
    assert diff <= ATOL, f"max abs diff {diff:.3g} > {ATOL}"


# --- pickling, in one process --------------------------------------------------------------

def test_models_pickle_as_their_recipe(small_model):
    pybert.recipe.clear_cache()
    model = pybert.BertModel.from_pretrained(small_model, num_threads=1)
    encoder = pybert.SentenceEncoder(small_model)
    for obj in (model, encoder):
        blob = pickle.dumps(obj)
        assert len(blob) < 1000  # path and options, not 4 MB of weights
        assert pickle.loads(blob) is pickle.loads(blob)  # the second is a cache hit
    assert pybert.recipe.load_count() == 2

    copy = pickle.loads(pickle.dumps(model))
    ids = np.array([[101, 2023, 2003, 102, 0]])
    mask = np.array([[1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(copy(ids, mask).last_hidden_state,
                                  model(ids, mask).last_hidden_state)
    texts = VARIED_TEXTS
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(encoder)).encode(texts),
                                  encoder.encode(texts))


def test_pickle_carries_num_threads_set_after_loading(small_model):
    pybert.recipe.clear_cache()
    encoder = pybert.SentenceEncoder(small_model, num_threads=1)
    encoder.num_threads = 3
    assert pickle.loads(pickle.dumps(encoder)).num_threads == 3
    assert pybert.recipe.recipe_of(encoder).options == (("path", small_model),
                                                       ("num_threads", 3),
                                                       ("precision", "fp32"),
                                                       ("truncate_dim", None), ("prompts", None),
                                                       ("default_prompt_name", None))
    int8 = pybert.SentenceEncoder(small_model, precision="int8")
    assert pickle.loads(pickle.dumps(int8)).model.precision == "int8"


def test_model_built_in_memory_refuses_to_pickle(small_model):
    loaded = pybert.BertModel.from_pretrained(small_model)
    in_memory = pybert.BertModel(loaded.config, pybert.modeling.load_weights(small_model))
    with pytest.raises(TypeError, match=r"cannot be pickled.*BertModel.from_pretrained\(path\)"):
        pickle.dumps(in_memory)


@pybert.recipe.pickles_as_recipe()  # the one line a class adds to opt in
class ToyModel:
    def __init__(self, path, scale):
        self.path, self.scale = path, scale

    @classmethod
    def from_pretrained(cls, path, scale=1.0):
        return cls(path, scale)


class OverridingToyModel(ToyModel):
    """Overrides the constructor without opting in again: must not pickle as its parent."""

    @classmethod
    def from_pretrained(cls, path):
        return super().from_pretrained(path, scale=2.0)


def test_any_class_opts_in_with_one_line(tmp_path):
    pybert.recipe.clear_cache()
    toy = ToyModel.from_pretrained(tmp_path, scale=0.5)
    copy = pickle.loads(pickle.dumps(toy))
    assert (type(copy), copy.path, copy.scale) == (ToyModel, os.fspath(tmp_path), 0.5)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(OverridingToyModel.from_pretrained(tmp_path))
    with pytest.raises(TypeError, match="must be a classmethod"):
        pybert.recipe.pickles_as_recipe("save")(type("T", (), {"save": lambda self: None}))


def test_import_pybert_does_not_import_dask(tmp_path):
    code = "import sys, pybert; print(sorted(m for m in sys.modules if m.startswith('dask')))"
    out = run_python(["-c", code], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- on a LocalCluster of 2 worker processes, 1 thread each ---------------------------------

def test_dataframe_column_equals_single_process_and_loads_once_per_worker(small_model,
                                                                          fresh_client):
    texts = varied_sentences(3000)
    frame = pd.DataFrame({"id": np.arange(len(texts)), "text": texts})
    ddf = dd.from_pandas(frame, npartitions=16)
    encoder = pybert.SentenceEncoder(small_model)
    vectors = pybert.dask.embed(ddf, encoder, column="text", batch_size=32)
    assert vectors.shape == (3000, 32)
    assert vectors.chunks[0] == tuple(ddf.map_partitions(len).compute())  # one block a partition

    assert_close(vectors.compute(), encoder.encode(texts, batch_size=32))
    loads = fresh_client.run(pybert.recipe.load_count)
    assert sorted(loads.values()) == [1, 1], loads
    # 2 workers x 1 thread share the usable CPUs: each task gets usable // 2 threads.
    budget = max(1, pybert.cpu_info()["usable_cpus"] // 2)
    assert list(fresh_client.run(cached_num_threads).values()) == [[budget], [budget]]


def test_minilm_series_with_unknown_lengths(minilm_path, fresh_client):
    texts = varied_sentences(160, seed=1, max_words=24)
    series = dd.from_pandas(pd.Series(texts), npartitions=4)
    encoder = pybert.SentenceEncoder(minilm_path)
    vectors = pybert.dask.embed(series, minilm_path, lengths=False, num_threads=1)
    assert np.isnan(vectors.shape[0]) and vectors.shape[1] == 384
    assert_close(vectors.compute(), encoder.encode(texts))
    assert list(fresh_client.run(cached_num_threads).values()) == [[1], [1]]


def test_killed_worker_is_retried_and_result_is_complete(small_model, fresh_client, tmp_path):
    texts = varied_sentences(1200, seed=2)
    texts[700] = FATAL_TEXT  # in partition 5 of 10
    marker = os.fspath(tmp_path / "worker-exited")
    bag = db.from_sequence(texts, npartitions=10).map_partitions(exit_once, marker)
    encoder = pybert.SentenceEncoder(small_model)
    vectors = pybert.dask.embed(bag, encoder, pooling=["mean", "max"], normalize=True)

    result = np.stack(vectors.compute())
    assert os.path.exists(marker), "no worker was killed: the test did not test anything"
    assert_close(result, encoder.encode(texts, pooling=["mean", "max"], normalize=True))
    fresh_client.wait_for_workers(2, timeout=60)  # the nanny restarted the dead worker


# --- argument checks (no computation) --------------------------------------------------------

def test_embed_rejects_bad_arguments(small_model):
    ddf = dd.from_pandas(pd.DataFrame({"text": ["a", "b"]}), npartitions=1)
    bag = db.from_sequence(["a", "b"])
    with pytest.raises(ValueError, match="needs column="):
        pybert.dask.embed(ddf, small_model)
    with pytest.raises(ValueError, match="'body' is not in the DataFrame; its columns are 'text'"):
        pybert.dask.embed(ddf, small_model, column="body")
    with pytest.raises(ValueError, match="column= is for DataFrames"):
        pybert.dask.embed(bag, small_model, column="text")
    with pytest.raises(TypeError, match="takes a Dask DataFrame.*got list"):
        pybert.dask.embed(["a", "b"], small_model)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pybert.dask.embed(bag, small_model, batch_size=0)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        pybert.dask.embed(bag, small_model, num_threads=0)
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        pybert.dask.embed(bag, small_model, pooling="sum")


def test_thread_budget_rule():
    usable = pybert.cpu_info()["usable_cpus"]
    assert pybert.dask.thread_budget(1) == usable
    assert pybert.dask.thread_budget(2) == max(1, usable // 2)
    assert pybert.dask.thread_budget(10 ** 6) == 1
