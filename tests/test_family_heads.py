"""The families' task heads (RobertaForSequenceClassification, ...) against transformers on random
small configs, and SentenceEncoder on RoBERTa / XLM-R / DistilBERT checkpoints against
sentence-transformers built from the same directory."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import SentenceTransformer

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer import modules as st_models
except ImportError:
    from sentence_transformers import models as st_models

import pybert
from conftest import (FAMILIES, VARIED_TEXTS, assert_close_unmasked, padded_batch, randomize_,
                      replace_tensor, save, with_tokenizer)

LOGITS_ATOL = 1e-4  # max abs difference of logits and hidden states
PROBS_ATOL = 1e-5   # max abs difference of probabilities, and of sentence embeddings

PROBLEMS = {
    "single-label": dict(num_labels=3),
    "multi-label": dict(num_labels=4, problem_type="multi_label_classification"),
    "one-output": dict(num_labels=1),  # regression / reranking: predict reports the raw logit
}
# ELECTRA's head applies exact GELU whatever hidden_act says: a ReLU body tells the two apart.
BODY_OVERRIDES = {"electra": dict(hidden_act="relu")}


def takes_token_types(ref_model):
    return not type(ref_model).__name__.startswith("DistilBert")


def right_padded(cfg, seed):
    """A right-padded batch (one row a single token) with the family's pad id under the mask."""
    ids, mask, types = padded_batch(cfg.vocab_size, [9, 1, 12, 5], 12,
                                    getattr(cfg, "type_vocab_size", 1), seed)
    ids[mask == 0] = cfg.pad_token_id
    return ids, mask, types


def run_both(model, ref_model, ids, mask, types):
    types = types if takes_token_types(ref_model) else None
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        **({} if types is None else {"token_type_ids": torch.from_numpy(types)}),
                        output_hidden_states=True)
    return model(ids, mask, types, output_hidden_states=True), ref


def assert_max_diff(ours, ref, atol, what):
    diff = np.abs(np.asarray(ours) - np.asarray(ref)).max()
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol}"


def token_classifier(family):
    """transformers' *ForTokenClassification class of a family."""
    return getattr(transformers, FAMILIES[family][2].__name__.replace("Sequence", "Token"))


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_sequence_classification_matches_transformers(tmp_path, family, problem):
    make_config, _, classifier, _ = FAMILIES[family]
    cfg = make_config(**PROBLEMS[problem], **BODY_OVERRIDES.get(family, {}))
    ref_model = randomize_(classifier(cfg), seed=len(family) + len(problem))
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path))
    assert type(model) is getattr(pybert, classifier.__name__)  # e.g. RobertaForSequence...
    assert model.num_labels == cfg.num_labels

    ids, mask, types = right_padded(cfg, seed=len(family))
    out, ref = run_both(model, ref_model, ids, mask, types)
    assert out.logits.shape == (4, cfg.num_labels)
    assert_max_diff(out.logits, ref.logits.numpy(), LOGITS_ATOL, "logits")
    assert len(out.hidden_states) == len(ref.hidden_states) == cfg.num_hidden_layers + 1
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        assert_close_unmasked(ours, theirs.numpy(), mask, LOGITS_ATOL)

    expected = {"multi-label": torch.sigmoid(ref.logits), "one-output": ref.logits}.get(
        problem, torch.softmax(ref.logits, -1))
    scores = model.scores(ids, mask, types if takes_token_types(ref_model) else None)
    assert_max_diff(scores, expected.numpy(), PROBS_ATOL, "scores")
    np.testing.assert_array_equal(scores.argmax(-1), ref.logits.argmax(-1).numpy())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_token_classification_matches_transformers(tmp_path, family):
    cfg = FAMILIES[family][0](num_labels=5)
    ref_model = randomize_(token_classifier(family)(cfg), seed=3)
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path))
    assert type(model) is getattr(pybert, type(ref_model).__name__)
    ids, mask, types = right_padded(cfg, seed=3)
    out, ref = run_both(model, ref_model, ids, mask, types)
    assert_close_unmasked(out.logits, ref.logits.numpy(), mask, LOGITS_ATOL)
    assert not out.logits[~mask.astype(bool)].any()


# ---- through text: predict and SentenceEncoder on checkpoints with a tokenizer.json -------------

@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "distilbert"])
def test_predict_from_text(request, tmp_path, family):
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    ref_model, tok = with_tokenizer(request, family, FAMILIES[family][2], tmp_path, 7,
                                    num_labels=3, id2label=labels)
    model = pybert.AutoModel.from_pretrained(tmp_path)
    enc = tok(VARIED_TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(ref_model(**enc).logits, -1)
    ref_p, ref_i = probs.topk(2)
    preds = model.predict(VARIED_TEXTS, top_k=2, batch_size=5)
    for pred, pp, ii in zip(preds, ref_p.numpy(), ref_i.numpy()):
        assert [p["label"] for p in pred] == [labels[i] for i in ii]
        assert_max_diff([p["score"] for p in pred], pp, PROBS_ATOL, "probs")


@pytest.mark.parametrize("family, pooling, normalize", [
    ("roberta", "mean", True), ("xlm-roberta", "cls", False), ("distilbert", "max", False)])
def test_sentence_encoder_matches_sentence_transformers(request, tmp_path, family, pooling,
                                                        normalize):
    hf, st_dir = tmp_path / "hf", tmp_path / "st"
    with_tokenizer(request, family, FAMILIES[family][1], hf, 9)
    torch.set_num_threads(2)
    modules = [st_models.Transformer(os.fspath(hf)), st_models.Pooling(32, pooling_mode=pooling)]
    st = SentenceTransformer(modules=modules + [st_models.Normalize()] * normalize, device="cpu")
    st.save(os.fspath(st_dir))

    enc = pybert.SentenceEncoder(st_dir)
    assert (enc.pooling, enc.normalize, enc.max_seq_length) == ([pooling], normalize, 40)
    ours = enc.encode(VARIED_TEXTS, batch_size=5)
    ref = st.encode(VARIED_TEXTS, batch_size=5, convert_to_numpy=True)
    assert ours.shape == ref.shape == (len(VARIED_TEXTS), 32)
    assert_max_diff(ours, ref, PROBS_ATOL, "embeddings")


# ---- strict loading --------------------------------------------------------------------------

def saved_classifier(tmp_path, family, make=None, **config):
    cfg = FAMILIES[family][0](num_labels=3, **config)
    model = (make or FAMILIES[family][2])(cfg)
    path = save(randomize_(model, seed=12), tmp_path)
    return path, os.path.join(path, "model.safetensors")


@pytest.mark.parametrize("family, name, shape, message", [
    ("roberta", "classifier.out_proj.weight", None,
     r"RobertaForSequenceClassification head: missing tensor 'classifier.out_proj.weight' "
     r"\(expected shape \(3, 32\)\)"),
    ("distilbert", "pre_classifier.weight", (32, 16),
     r"DistilBertForSequenceClassification head: tensor 'pre_classifier.weight' has shape "
     r"\(32, 16\), expected \(32, 32\)"),
    ("electra", "classifier.dense.bias", None,
     r"ElectraForSequenceClassification head: missing tensor 'classifier.dense.bias'"),
], ids=["roberta-missing", "distilbert-misshaped", "electra-missing"])
def test_head_tensor_is_named(tmp_path, family, name, shape, message):
    path, file = saved_classifier(tmp_path, family)
    replace_tensor(file, name, shape)
    with pytest.raises(ValueError, match=message):
        pybert.AutoModel.from_pretrained(path)


def test_albert_sequence_classification_needs_the_pooler(tmp_path):
    # a token-classification checkpoint holds a `classifier` but no pooler
    path, _ = saved_classifier(tmp_path, "albert", make=token_classifier("albert"))
    with pytest.raises(ValueError, match="AlbertForSequenceClassification needs the pooler: the "
                                         "checkpoint has no 'albert.pooler.weight'"):
        pybert.AlbertForSequenceClassification.from_pretrained(path)


def test_family_class_refuses_another_family(tmp_path):
    path, _ = saved_classifier(tmp_path, "distilbert")
    with pytest.raises(ValueError, match="RobertaForSequenceClassification loads model_type "
                                         "'roberta' checkpoints, the config has 'distilbert'"):
        pybert.RobertaForSequenceClassification.from_pretrained(path)
    # the Bert* classes run any family, as BertModel does
    model = pybert.BertForSequenceClassification.from_pretrained(path)
    assert model.config.model_type == "distilbert"
