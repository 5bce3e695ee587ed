"""pybert.Tokenizer on RoBERTa (byte-level BPE) and XLM-R (SentencePiece Unigram) tokenizer.json
files against transformers' RobertaTokenizer / XLMRobertaTokenizer, and text -> hidden states
through RobertaModel end to end. The vocabularies are trained here with `tokenizers` (no hub);
transformers' own tokenizer classes write the tokenizer.json files, so they hold the real
families' pipelines (normalizer, pre-tokenizer, post-processor, special tokens)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tokenizers
import torch
import transformers
from tokenizers import models, pre_tokenizers, trainers

import pybert
from conftest import VARIED_TEXTS, assert_close_unmasked, randomize_, save

CORPUS = VARIED_TEXTS * 2 + ["the cat sat on the mat", "tokenizers learn merges from text",
                             "une phrase en français", "ein deutscher Satz über Straßen"]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    bpe = tokenizers.Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS + ["<mask>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = transformers.RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=40)
    path = tmp_path_factory.mktemp("roberta_tok")
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory):
    uni = tokenizers.Tokenizer(models.Unigram())
    uni.pre_tokenizer = pre_tokenizers.Metaspace()
    uni.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=250, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False))
    pieces = [tuple(p) for p in json.loads(uni.to_str())["model"]["vocab"]]
    assert [p for p, _ in pieces[:4]] == SPECIALS  # XLM-R's ids 0..3
    tok = transformers.XLMRobertaTokenizer(vocab=pieces + [("<mask>", 0.0)], model_max_length=40)
    path = tmp_path_factory.mktemp("xlmr_tok")
    tok.save_pretrained(path)
    return path


def compare(path, reference_class, pairs, max_length):
    ref_tok = reference_class.from_pretrained(path)
    ours = pybert.Tokenizer.from_pretrained(path)
    ref = ref_tok(VARIED_TEXTS, pairs, padding=True, truncation=True, max_length=max_length,
                  return_tensors="np")
    got = ours(VARIED_TEXTS, pairs, max_length=max_length)
    np.testing.assert_array_equal(got["input_ids"], ref["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], ref["attention_mask"])
    # these families take no token types: transformers returns none, pybert all zeros
    assert "token_type_ids" not in ref and not got["token_type_ids"].any()
    assert (got["input_ids"][got["attention_mask"] == 0] == ref_tok.pad_token_id).all()


@pytest.mark.parametrize("max_length", [None, 9])
@pytest.mark.parametrize("with_pairs", [False, True], ids=["single", "pairs"])
def test_roberta_bpe_matches_transformers(roberta_dir, with_pairs, max_length):
    compare(roberta_dir, transformers.RobertaTokenizer, VARIED_TEXTS[::-1] if with_pairs else None,
            max_length)


@pytest.mark.parametrize("max_length", [None, 9])
@pytest.mark.parametrize("with_pairs", [False, True], ids=["single", "pairs"])
def test_xlmr_sentencepiece_matches_transformers(xlmr_dir, with_pairs, max_length):
    compare(xlmr_dir, transformers.XLMRobertaTokenizer,
            VARIED_TEXTS[::-1] if with_pairs else None, max_length)


def test_text_to_roberta_hidden_states(tmp_path, roberta_dir):
    ref_tok = transformers.RobertaTokenizer.from_pretrained(roberta_dir)
    cfg = transformers.RobertaConfig(vocab_size=len(ref_tok), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=48,
                                     max_position_embeddings=48, type_vocab_size=1,
                                     pad_token_id=ref_tok.pad_token_id)
    ref_model = randomize_(transformers.RobertaModel(cfg), seed=3)
    model = pybert.RobertaModel.from_pretrained(save(ref_model, tmp_path))
    batch = pybert.Tokenizer.from_pretrained(roberta_dir)(VARIED_TEXTS)
    out = model(**batch)
    ref_in = ref_tok(VARIED_TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model(**ref_in)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(),
                          batch["attention_mask"], 1e-4)
