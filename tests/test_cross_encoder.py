"""pybert.CrossEncoder against sentence-transformers' CrossEncoder, on checkpoints it saved
itself from random-weight transformers models of two sizes and two families."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import CrossEncoder as STCrossEncoder

import pybert
from conftest import VARIED_TEXTS, with_tokenizer

ATOL = 1e-5  # max abs difference against sentence-transformers (fp32 both)

SIZES = {"small": {}, "larger": dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                                     intermediate_size=96)}
CLASSES = {"bert": transformers.BertForSequenceClassification,
           "roberta": transformers.RobertaForSequenceClassification}
QUERY = "the cat sat on the mat"
DOCUMENTS = [t for t in VARIED_TEXTS if t] + ["the cat sat", "une phrase en français"]


def saved_cross_encoder(request, tmp_path, family="bert", size="small", num_labels=1, **kwargs):
    """A sentence-transformers CrossEncoder of a random classifier, saved with its own save()
    and loaded back by sentence-transformers: (its reference, the saved directory)."""
    hf, ce_dir = tmp_path / "hf", tmp_path / "ce"
    with_tokenizer(request, family, CLASSES[family], hf, 5, num_labels=num_labels,
                   **SIZES[size])
    torch.set_num_threads(2)
    STCrossEncoder(os.fspath(hf), device="cpu", **kwargs).save(os.fspath(ce_dir))
    return STCrossEncoder(os.fspath(ce_dir), device="cpu"), ce_dir


def assert_close(ours, ref):
    ref = np.asarray(ref)
    assert ours.dtype == np.float32 and ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.abs(ours - ref).max()
    assert diff <= ATOL, f"max abs diff {diff:.3g} > {ATOL}"


@pytest.mark.parametrize("family", list(CLASSES))
@pytest.mark.parametrize("size", list(SIZES))
def test_predict_and_rank_match(request, tmp_path, family, size):
    ref, path = saved_cross_encoder(request, tmp_path, family, size)
    ce = pybert.CrossEncoder(path)
    assert ce.activation == "sigmoid" and ce.max_length == ref.max_seq_length == 40
    pairs = [(QUERY, d) for d in DOCUMENTS] + [(d, QUERY) for d in DOCUMENTS[:5]]
    assert_close(ce.predict(pairs, batch_size=4), ref.predict(pairs, batch_size=4))
    one = ce.predict(pairs[0])
    assert isinstance(one, np.float32) and abs(one - ref.predict(pairs[0])) <= ATOL
    ours, theirs = ce.rank(QUERY, DOCUMENTS), ref.rank(QUERY, DOCUMENTS)
    assert [r["corpus_id"] for r in ours] == [r["corpus_id"] for r in theirs]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(ours, theirs)) <= ATOL
    top = ce.rank(QUERY, DOCUMENTS, top_k=3, return_documents=True)
    assert top == [{**r, "text": DOCUMENTS[r["corpus_id"]]} for r in ours[:3]]
    assert_close(ce.predict(pairs, activation_fn="identity"),
                 ref.predict(pairs, activation_fn=torch.nn.Identity()))
    assert_close(ce.predict(pairs, activation_fn=torch.nn.Tanh()),
                 ref.predict(pairs, activation_fn=torch.nn.Tanh()))


@pytest.mark.parametrize("family", list(CLASSES))
def test_several_labels_identity_and_softmax(request, tmp_path, family):
    ref, path = saved_cross_encoder(request, tmp_path, family, "small", num_labels=3)
    ce = pybert.CrossEncoder(path)
    assert ce.activation == "logits" and ce.num_labels == 3
    pairs = [(QUERY, d) for d in DOCUMENTS]
    assert_close(ce.predict(pairs), ref.predict(pairs))
    assert_close(ce.predict(pairs, apply_softmax=True), ref.predict(pairs, apply_softmax=True))
    assert_close(ce.predict(pairs[0]), ref.predict(pairs[0]))
    with pytest.raises(ValueError, match="needs a model with one label"):
        ce.rank(QUERY, DOCUMENTS)


def test_saved_activation_and_max_length(request, tmp_path):
    ref, path = saved_cross_encoder(request, tmp_path, activation_fn=torch.nn.Tanh())
    assert json.loads((path / "config_sentence_transformers.json").read_text())[
        "activation_fn"].endswith("Tanh")
    ce = pybert.CrossEncoder(path)
    pairs = [(QUERY, d) for d in DOCUMENTS]
    assert ce.activation == "tanh"
    assert_close(ce.predict(pairs), ref.predict(pairs))
    short = pybert.CrossEncoder(path, max_length=12)
    ref_short = STCrossEncoder(os.fspath(path), device="cpu", max_length=12)
    assert_close(short.predict(pairs), ref_short.predict(pairs))
    assert not np.allclose(short.predict(pairs), ce.predict(pairs), atol=1e-3)
    # a custom function runs on the logits
    assert_close(ce.predict(pairs, activation_fn=lambda x: x * 2),
                 ref.predict(pairs, activation_fn=torch.nn.Identity()) * 2)


def test_legacy_activation_in_config_json(request, tmp_path):
    ref, path = saved_cross_encoder(request, tmp_path)
    (path / "config_sentence_transformers.json").unlink()
    config = json.loads((path / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity"
    (path / "config.json").write_text(json.dumps(config))
    ref = STCrossEncoder(os.fspath(path), device="cpu")
    ce = pybert.CrossEncoder(path)
    assert ce.activation == "logits"
    pairs = [(QUERY, d) for d in DOCUMENTS]
    assert_close(ce.predict(pairs), ref.predict(pairs))


def test_empty_and_bad_input(request, tmp_path):
    _, path = saved_cross_encoder(request, tmp_path)
    ce = pybert.CrossEncoder(path, num_threads=1)
    ce.num_threads = 2
    again = pickle.loads(pickle.dumps(ce))  # a recipe: path and options
    assert again.num_threads == 2 and again.predict(("a", "b")) == ce.predict(("a", "b"))
    assert ce.predict([]).shape == (0,)
    assert ce.rank(QUERY, []) == []
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a pair of two strings"):
        ce.predict([("a", "b"), ("a",)])
    with pytest.raises(TypeError, match="inputs must be a pair of two strings"):
        ce.predict(["a", 3])
    with pytest.raises(TypeError, match="inputs must be a pair of texts or a list of pairs"):
        ce.predict("just a string")
    with pytest.raises(TypeError, match="documents must be a list of strings"):
        ce.rank(QUERY, "one document")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        ce.rank(QUERY, ["a"], top_k=0)
    with pytest.raises(ValueError, match="activation_fn 'relu' is not one of"):
        ce.predict([("a", "b")], activation_fn="relu")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ce.predict([("a", "b")], batch_size=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pybert.CrossEncoder(tmp_path / "missing")


def test_unsupported_checkpoints_are_named(request, tmp_path):
    _, path = saved_cross_encoder(request, tmp_path)
    st_config = json.loads((path / "config_sentence_transformers.json").read_text())
    st_config["activation_fn"] = "torch.nn.modules.activation.ReLU"
    (path / "config_sentence_transformers.json").write_text(json.dumps(st_config))
    with pytest.raises(ValueError, match=r"'torch.nn.modules.activation.ReLU' is not supported "
                       r".*torch.nn.Sigmoid"):
        pybert.CrossEncoder(path)
    modules = json.loads((path / "modules.json").read_text())
    modules.append({"idx": 1, "name": "1", "path": "1_LogitScore",
                    "type": "sentence_transformers.cross_encoder.modules.LogitScore"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"module '1' of type '.*LogitScore' is not supported "
                       r"by pybert's CrossEncoder"):
        pybert.CrossEncoder(path)


def test_cli_rerank_matches_sentence_transformers(request, tmp_path, capsys):
    from pybert import cli

    ref, path = saved_cross_encoder(request, tmp_path)
    docs = [d for d in DOCUMENTS if d == d.strip() and "\n" not in d]  # one line each
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(docs + [""]), encoding="utf-8")
    assert cli.main(["rerank", "--model", str(path), "--top", "4", QUERY, str(corpus)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"query: {QUERY}" and len(out) == 5
    for k, (row, r) in enumerate(zip(out[1:], ref.rank(QUERY, docs, top_k=4)), 1):
        rank, score, text = row.split(maxsplit=2)
        assert rank == f"{k}." and text == docs[r["corpus_id"]]
        assert abs(float(score) - r["score"]) <= 1e-4  # printed with 4 decimals
    assert cli.main(["rerank", "--model", str(path), "--top", "0", QUERY, str(corpus)]) == 2
    assert "--top must be at least 1" in capsys.readouterr().err
    assert cli.main(["rerank", "--model", str(tmp_path / "nope"), QUERY, str(corpus)]) == 2
    assert "does not exist" in capsys.readouterr().err
