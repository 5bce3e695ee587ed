"""Model names as well as paths: Hub model ids resolved from a Hugging Face cache laid out in a
temporary HF_HOME (models--org--name/snapshots/<hash>/..., refs/main), offline and online."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import CrossEncoder as STCrossEncoder
from sentence_transformers import SentenceTransformer

import pybert
from pybert import _hub
from conftest import VARIED_TEXTS, with_tokenizer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_model(hf_home, repo_id, source):
    """Lay `source` (a model directory) out in the hub cache as huggingface_hub does."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(source, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "snapshots" / COMMIT


@pytest.fixture
def hub(request, tmp_path, monkeypatch):
    """A temporary HF_HOME holding a sentence-transformers model ("org/embedder") and a
    cross-encoder ("org/reranker"); downloads point at a closed port."""
    torch.set_num_threads(2)
    with_tokenizer(request, "bert", transformers.BertModel, tmp_path / "hf", 3)
    SentenceTransformer(os.fspath(tmp_path / "hf"), device="cpu").save(os.fspath(tmp_path / "st"))
    with_tokenizer(request, "bert", transformers.BertForSequenceClassification,
                   tmp_path / "hf_ce", 4, num_labels=1)
    STCrossEncoder(os.fspath(tmp_path / "hf_ce"), device="cpu").save(os.fspath(tmp_path / "ce"))
    home = tmp_path / "hf_home"
    cache_model(home, "org/embedder", tmp_path / "st")
    cache_model(home, "org/reranker", tmp_path / "ce")
    monkeypatch.setenv("HF_HOME", os.fspath(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: fails at once
    monkeypatch.chdir(tmp_path)  # "org/embedder" is no directory here
    return tmp_path


@pytest.mark.parametrize("offline", ["1", ""])
def test_cached_models_load_by_name(hub, monkeypatch, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    snapshot = _hub.resolve("org/embedder")
    assert snapshot.endswith(os.path.join("snapshots", COMMIT))
    enc = pybert.SentenceEncoder("org/embedder")
    np.testing.assert_array_equal(enc.encode(VARIED_TEXTS[:3]),
                                  pybert.SentenceEncoder(hub / "st").encode(VARIED_TEXTS[:3]))
    again = pickle.loads(pickle.dumps(enc))  # the recipe keeps the name, not a cwd path
    np.testing.assert_array_equal(again.encode("a"), enc.encode("a"))
    assert pybert.BertModel.from_pretrained("org/embedder").config.hidden_size == 32
    assert isinstance(pybert.AutoModel.from_pretrained("org/reranker"),
                      pybert.BertForSequenceClassification)
    clf = pybert.BertForSequenceClassification.from_pretrained("org/reranker")
    ce = pybert.CrossEncoder("org/reranker")
    assert ce.model.num_labels == clf.num_labels == 1
    pairs = [("a cat", "the mat"), ("hello", "world")]
    np.testing.assert_array_equal(ce.predict(pairs), pybert.CrossEncoder(hub / "ce").predict(pairs))


def test_not_cached_offline_says_so(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"'org/missing' is not a local directory nor a "
                       r"model in the Hugging Face cache .*HF_HUB_OFFLINE is set"):
        pybert.SentenceEncoder("org/missing")


def test_not_cached_online_download_fails_clearly(hub, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(FileNotFoundError, match=r"'org/missing' is not a local directory nor a "
                       r"model in the Hugging Face cache .*downloading it from the Hub failed"):
        pybert.CrossEncoder("org/missing")
    with pytest.raises(FileNotFoundError, match="downloading it from the Hub failed"):
        pybert.BertModel.from_pretrained("missing-model")


def test_paths_that_are_not_names(tmp_path):
    for bad in (tmp_path / "missing", "./relative/dir/x", "a/b/c", "../up"):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            _hub.resolve(bad)
    assert _hub.is_repo_id("sentence-transformers/all-MiniLM-L6-v2")
    assert _hub.is_repo_id("bert-base-uncased") and not _hub.is_repo_id("org//x")
