"""pybert.Tokenizer on RoBERTa (byte-level BPE) and XLM-R (SentencePiece Unigram) tokenizer.json
files against transformers' RobertaTokenizer / XLMRobertaTokenizer, and text -> hidden states
through RobertaModel end to end. The tokenizer directories come from conftest (roberta_dir,
xlmr_dir)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import pybert
from conftest import VARIED_TEXTS, assert_close_unmasked, randomize_, save

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
