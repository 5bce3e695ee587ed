"""The masked-LM head of each family pybert runs it for (BERT, Megatron-BERT, RoBERTa, XLM-R,
DistilBERT), with the family's own weight names: logits against transformers' *ForMaskedLM,
fill-mask through each family's tokenizer, and SparseEncoder (SPLADE) against
sentence-transformers' SparseEncoder on checkpoints it saves itself."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sparse_encoder.modules import SpladePooling

import pybert
import pybert.cli
from conftest import (FAMILIES, VARIED_TEXTS, assert_close_unmasked, bert_config, randomize_,
                      replace_tensor, save, with_tokenizer)

LOGITS_ATOL = 1e-4  # max abs difference of logits and hidden states
PROBS_ATOL = 1e-5   # max abs difference of probabilities and SPLADE weights (fp32 both)
ACTIVE = 1e-6       # SPLADE entries above this must be active in both

MASKED_LM = {  # family -> transformers' class
    "bert": transformers.BertForMaskedLM,
    "megatron-bert": transformers.MegatronBertForMaskedLM,
    "roberta": transformers.RobertaForMaskedLM,
    "xlm-roberta": transformers.XLMRobertaForMaskedLM,
    "distilbert": transformers.DistilBertForMaskedLM,
}
# A ReLU body tells RoBERTa's head (exact GELU whatever hidden_act says) from one that followed
# hidden_act; DistilBERT's head follows its `activation`, here the tanh-approximated GELU.
BODY = {"roberta": dict(hidden_act="relu"), "distilbert": dict(activation="gelu_new"),
        "bert": dict(hidden_act="gelu_new")}


def make_config(family, **overrides):
    make = bert_config if family == "bert" else FAMILIES[family][0]
    base = dict(vocab_size=90, max_position_embeddings=40) if family == "bert" else {}
    return make(**{**base, **BODY.get(family, {}), **overrides})


def padded(cfg, family):
    rng = np.random.default_rng(len(family))
    lengths = [9, 1, 12, 5]
    ids = rng.integers(3, cfg.vocab_size, size=(4, 12))
    mask = (np.arange(12)[None] < np.array(lengths)[:, None]).astype(np.int64)
    ids[mask == 0] = cfg.pad_token_id
    types = None if family == "distilbert" else rng.integers(
        0, getattr(cfg, "type_vocab_size", 1), size=(4, 12)) * mask
    return ids, mask, types


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("family", list(MASKED_LM))
def test_masked_lm_logits_match_transformers(tmp_path, family, tied):
    cfg = make_config(family, tie_word_embeddings=tied)
    ref_model = randomize_(MASKED_LM[family](cfg), seed=len(family) + tied)
    path = save(ref_model, tmp_path)
    stored = load_file(os.path.join(path, "model.safetensors"))
    decoder = {"bert": "cls.predictions.decoder.weight",
               "megatron-bert": "cls.predictions.decoder.weight",
               "distilbert": "vocab_projector.weight"}.get(family, "lm_head.decoder.weight")
    assert (decoder in stored) == (not tied)  # the checkpoint is the layout under test

    model = pybert.AutoModel.from_pretrained(path)
    assert type(model) is getattr(pybert, MASKED_LM[family].__name__)
    assert model.shares_word_embeddings() == tied
    ids, mask, types = padded(cfg, family)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        **({} if types is None else {"token_type_ids": torch.from_numpy(types)}))
    out = model(ids, mask, types)
    assert out.logits.shape == (4, 12, cfg.vocab_size)
    assert_close_unmasked(out.logits, ref.logits.numpy(), mask, LOGITS_ATOL)
    assert not out.logits[mask == 0].any()  # the head ran on the real tokens only
    keep = mask.astype(bool)
    probs = model.scores(ids, mask, types)
    assert np.abs(probs[keep] - torch.softmax(ref.logits, -1).numpy()[keep]).max() <= PROBS_ATOL
    # The head at chosen real positions only (what fill-mask runs).
    at = np.flatnonzero(mask.ravel())[[0, 3, -1]]
    rows = model._core.forward_at(ids, mask, types, at, scores="logits")
    assert np.abs(rows - ref.logits.numpy().reshape(-1, cfg.vocab_size)[at]).max() <= LOGITS_ATOL
    padded_at = np.flatnonzero(mask.ravel() == 0)[:1]
    with pytest.raises(ValueError, match="is a padded token"):
        model._core.forward_at(ids, mask, types, padded_at, scores="logits")


@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "distilbert"])
def test_fill_mask_with_the_family_mask_token(request, tmp_path, family):
    ref_model, tok = with_tokenizer(request, family, MASKED_LM[family], tmp_path, 5)
    model = pybert.AutoModel.from_pretrained(tmp_path)
    assert model.tokenizer.mask_token == tok.mask_token
    text = f"the cat {tok.mask_token} on the {tok.mask_token}"
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(ref_model(**enc).logits[0], -1)
    where = (enc["input_ids"][0] == tok.mask_token_id).nonzero()[:, 0]
    ref_p, ref_i = probs[where].topk(3)
    got = model.fill_mask(text, top_k=3)
    assert len(got) == 2
    for row, pp, ii in zip(got, ref_p.numpy(), ref_i.numpy()):
        assert [t["token_id"] for t in row] == ii.tolist()
        assert np.abs(np.array([t["score"] for t in row]) - pp).max() <= PROBS_ATOL
    with pytest.raises(ValueError, match=re.escape(f"needs a {tok.mask_token} token")):
        model.fill_mask("no mask here")


def test_cli_fill_mask_on_roberta(request, tmp_path, capsys):
    with_tokenizer(request, "roberta", MASKED_LM["roberta"], tmp_path, 6)
    model = pybert.RobertaForMaskedLM.from_pretrained(tmp_path)
    text = "the cat <mask> on the mat"
    assert pybert.cli.main(["fill-mask", "--model", str(tmp_path), "--top-k", "3", text]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == \
        [t["token"] for t in model.fill_mask(text, 3)[0]]


@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "distilbert", "megatron-bert"])
def test_splade_on_each_family_matches_sentence_transformers(request, tmp_path, family):
    hf = tmp_path / "hf"
    if family == "megatron-bert":  # no tokenizer of its own: BERT's WordPiece
        tok_dir = request.getfixturevalue("bert_dir")
        tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
        cfg = make_config(family, vocab_size=len(tok), max_position_embeddings=48)
        save(randomize_(MASKED_LM[family](cfg), seed=8), hf)
        tok.save_pretrained(hf)
    else:
        with_tokenizer(request, family, MASKED_LM[family], hf, 8, **BODY.get(family, {}))
    torch.set_num_threads(2)
    st = SparseEncoder(modules=[Transformer(os.fspath(hf), transformer_task="fill-mask"),
                                SpladePooling(pooling_strategy="max")], device="cpu")
    st.save(os.fspath(tmp_path / "splade"))
    st = SparseEncoder(os.fspath(tmp_path / "splade"), device="cpu")
    ref = st.encode(VARIED_TEXTS, batch_size=5, convert_to_sparse_tensor=False).numpy()
    assert ref.max() > 0.5
    ours = pybert.SparseEncoder(tmp_path / "splade").encode(VARIED_TEXTS, batch_size=5).toarray()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= PROBS_ATOL
    assert np.array_equal(ours > ACTIVE, ref > ACTIVE)


@pytest.mark.parametrize("family, name, message", [
    ("distilbert", "vocab_transform.weight",
     r"DistilBertForMaskedLM head: missing tensor 'vocab_transform.weight' "
     r"\(expected shape \(32, 32\)\)"),
    ("roberta", "lm_head.bias", r"RobertaForMaskedLM head: missing tensor 'lm_head.bias'"),
    ("xlm-roberta", "lm_head.layer_norm.weight",
     r"XLMRobertaForMaskedLM head: missing tensor 'lm_head.layer_norm.weight'"),
])
def test_masked_lm_head_tensor_is_named(tmp_path, family, name, message):
    path = save(randomize_(MASKED_LM[family](make_config(family)), seed=1), tmp_path)
    replace_tensor(os.path.join(path, "model.safetensors"), name)
    with pytest.raises(ValueError, match=message):
        pybert.AutoModel.from_pretrained(path)


@pytest.mark.parametrize("family, cls", [("electra", transformers.ElectraForMaskedLM),
                                         ("albert", transformers.AlbertForMaskedLM)])
def test_masked_lm_of_other_families_is_refused(tmp_path, family, cls):
    path = save(randomize_(cls(FAMILIES[family][0]()), seed=1), tmp_path)
    stem = cls.__name__
    with pytest.raises(ValueError, match=f"{stem} is not supported: pybert runs the masked-LM "
                                         "head of model_type 'bert', 'roberta', 'xlm-roberta', "
                                         "'distilbert', 'megatron-bert'"):
        pybert.BertForMaskedLM.from_pretrained(path)
    with pytest.raises(ValueError, match="RobertaForMaskedLM loads model_type 'roberta'"):
        pybert.RobertaForMaskedLM.from_pretrained(path)
