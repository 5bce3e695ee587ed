"""pybert.Tokenizer against transformers' AutoTokenizer on the same files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import transformers

import pybert
from conftest import VARIED_TEXTS

FIELDS = ("input_ids", "attention_mask", "token_type_ids")


def reference(tok, texts, pairs=None, max_length=None):
    out = tok(texts, pairs, padding=True, truncation=True, max_length=max_length,
              return_tensors="np")
    return {k: out[k] for k in FIELDS}


def assert_same(ours, ref):
    for k in FIELDS:
        assert ours[k].dtype == np.int64, k
        np.testing.assert_array_equal(ours[k], ref[k], err_msg=k)


@pytest.fixture(scope="module")
def hf_tok(minilm_path):
    return transformers.AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def tok(minilm_path):
    return pybert.Tokenizer.from_pretrained(minilm_path)


@pytest.mark.parametrize("max_length", [None, 16, 5])
def test_single_texts_match_transformers(tok, hf_tok, max_length):
    assert_same(tok(VARIED_TEXTS, max_length=max_length),
                reference(hf_tok, VARIED_TEXTS, max_length=max_length))


@pytest.mark.parametrize("max_length", [None, 24, 7])
def test_pairs_match_transformers(tok, hf_tok, max_length):
    pairs = VARIED_TEXTS[::-1]
    assert_same(tok(VARIED_TEXTS, pairs, max_length=max_length),
                reference(hf_tok, VARIED_TEXTS, pairs, max_length=max_length))


def test_one_string_is_a_batch_of_one(tok, hf_tok):
    assert_same(tok("Hello there"), reference(hf_tok, ["Hello there"]))
    assert tok.tokenize("Hello there") == ["[CLS]", "hello", "there", "[SEP]"]


def test_default_truncation_is_model_max_length(tok):
    assert tok.model_max_length == 512
    assert tok(["x " * 2000])["input_ids"].shape == (1, 512)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_vocab_txt_wordpiece_matches_transformers(minilm_path, tmp_path, do_lower_case):
    shutil.copy(f"{minilm_path}/vocab.txt", tmp_path)
    config = json.load(open(f"{minilm_path}/tokenizer_config.json"))
    config["do_lower_case"] = do_lower_case
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours = pybert.Tokenizer.from_pretrained(tmp_path)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert_same(ours(VARIED_TEXTS), reference(ref, VARIED_TEXTS))
    pairs = VARIED_TEXTS[1:] + VARIED_TEXTS[:1]
    assert_same(ours(VARIED_TEXTS, pairs, max_length=20),
                reference(ref, VARIED_TEXTS, pairs, max_length=20))


def test_bad_input(tok, tmp_path):
    with pytest.raises(TypeError, match=r"texts\[2\] must be a string, got int"):
        tok(["a", "b", 3])
    with pytest.raises(TypeError, match="string or a list of strings"):
        tok(None)
    with pytest.raises(TypeError, match=r"text_pairs\[0\]"):
        tok(["a"], [None])
    with pytest.raises(ValueError, match="pair up"):
        tok(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="max_length"):
        tok(["a"], max_length=0)
    with pytest.raises(FileNotFoundError, match="tokenizer.json and vocab.txt"):
        pybert.Tokenizer.from_pretrained(tmp_path)
    empty = tok([])
    assert all(empty[k].shape == (0, 0) for k in FIELDS)
