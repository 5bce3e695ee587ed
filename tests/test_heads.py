"""LinearHead and the BertFor* models against torch / transformers on the same weights."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import pybert
import pybert.cli
from conftest import bert_config, padded_batch, randomize_, save

LOGITS_ATOL = 1e-4  # max abs difference of logits
PROBS_ATOL = 1e-5   # max abs difference of probabilities (softmax / sigmoid)
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")


def torch_logits(model, ids, mask=None, types=None, **kwargs):
    t = (lambda a: None if a is None else torch.from_numpy(a))
    with torch.no_grad():
        return model(t(ids), attention_mask=t(mask), token_type_ids=t(types), **kwargs)


def assert_max_diff(ours, ref, atol, what):
    diff = np.abs(np.asarray(ours) - np.asarray(ref)).max()
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol}"


# ---- LinearHead ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 32), (3, 7, 32), (32,)], ids=["2d", "3d", "1d"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_head_matches_torch(shape, with_bias):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((14, 32)).astype(np.float32)
    b = rng.standard_normal(14).astype(np.float32) if with_bias else None
    x = rng.standard_normal(shape).astype(np.float32)
    head = pybert.LinearHead(w, b)
    ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                     None if b is None else torch.from_numpy(b))
    assert head(x).shape == shape[:-1] + (14,)
    assert_max_diff(head(x), ref.numpy(), LOGITS_ATOL, "logits")
    assert_max_diff(head.softmax(x), torch.softmax(ref, -1).numpy(), PROBS_ATOL, "softmax")
    assert_max_diff(head.sigmoid(x), torch.sigmoid(ref).numpy(), PROBS_ATOL, "sigmoid")
    np.testing.assert_array_equal(head.predict(x), ref.argmax(-1).numpy())
    assert head.predict(x).dtype == np.int64


def test_linear_head_softmax_is_stable_and_takes_array_likes():
    # logits in the thousands overflow a naive exp; float64 lists are converted
    w = (np.eye(4, 3) * 1000.0).tolist()
    x = [[3.0, -2.0, 1.0], [-5.0, -5.0, -5.0]]
    head = pybert.LinearHead(w)
    ref = torch.softmax(torch.tensor(x) @ torch.tensor(w).T, -1).numpy()
    probs = head.softmax(x)
    assert np.isfinite(probs).all()
    assert_max_diff(probs, ref, PROBS_ATOL, "softmax")
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    # sigmoid of large negative logits is 0, not NaN
    assert (head.sigmoid(x)[1, :3] == 0).all()


def test_linear_head_bad_input():
    head = pybert.LinearHead(np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match=r"x has 7 features .*expected in_features=8"):
        head(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match=r"x has 7 features .*expected in_features=8"):
        head.predict(np.zeros((2, 4, 7)))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        pybert.LinearHead(np.zeros(8))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        pybert.LinearHead(np.zeros((3, 8)), np.zeros(4))
    with pytest.raises(TypeError, match="must hold real numbers"):
        head(np.array([["a"] * 8]))


# ---- task models on random small configs ------------------------------------------------------

def check_hidden_states(ours, ref, mask):
    keep = mask.astype(bool)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert_max_diff(a[keep], b.numpy()[keep], LOGITS_ATOL, "hidden state")


SEQUENCE_CASES = {
    # the seed's 768 -> 14 head
    "768to14": (dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=1,
                     intermediate_size=128), dict(num_labels=14)),
    "multilabel": (dict(hidden_size=48, num_attention_heads=4, hidden_act="gelu_new"),
                   dict(num_labels=5, problem_type="multi_label_classification")),
    "regression": (dict(hidden_size=32, num_attention_heads=4, type_vocab_size=1),
                   dict(num_labels=1)),
}


@pytest.mark.parametrize("case", SEQUENCE_CASES)
def test_sequence_classification_matches_transformers(tmp_path, case):
    body, head = SEQUENCE_CASES[case]
    cfg = bert_config(**body, **head)
    ref_model = randomize_(transformers.BertForSequenceClassification(cfg), seed=21)
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path))
    assert isinstance(model, pybert.BertForSequenceClassification)
    assert model.num_labels == head["num_labels"]
    ids, mask, types = padded_batch(cfg.vocab_size, [9, 2, 12, 5], 12, cfg.type_vocab_size)
    ref = torch_logits(ref_model, ids, mask, types, output_hidden_states=True)
    out = model(ids, mask, types, output_hidden_states=True)
    assert out.logits.shape == (4, head["num_labels"])
    assert_max_diff(out.logits, ref.logits.numpy(), LOGITS_ATOL, "logits")
    check_hidden_states(out.hidden_states, ref.hidden_states, mask)

    expected = {"multi_label_classification": torch.sigmoid(ref.logits)}.get(
        head.get("problem_type"), ref.logits if head["num_labels"] == 1
        else torch.softmax(ref.logits, -1))
    scores = model.scores(ids, mask, types)
    assert_max_diff(scores, expected.numpy(), PROBS_ATOL, "scores")
    np.testing.assert_array_equal(scores.argmax(-1), ref.logits.argmax(-1).numpy())


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_sequence_classification_of_a_chunked_batch(tmp_path, precision):
    # 1164 tokens on 2 threads go through each layer in chunks of whole sequences (at most
    # _core.encoder_chunk_tokens(2)), and the last layer computes each chunk's first rows alone:
    # each sequence's logits must be those of the sequence alone, to the bit (and, in fp32,
    # transformers' on the whole batch).
    lengths = [250, 3, 200, 0, 240, 1, 180, 230, 60]
    assert pybert._core.encoder_chunk_tokens(2) < sum(lengths)
    cfg = bert_config(max_position_embeddings=256, num_labels=3)
    ref_model = randomize_(transformers.BertForSequenceClassification(cfg), seed=23)
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path), num_threads=2,
                                             precision=precision)
    ids, mask, types = padded_batch(cfg.vocab_size, lengths, max(lengths))
    logits = model(ids, mask, types).logits
    if precision == "fp32":
        ref = torch_logits(ref_model, ids, mask, types).logits.numpy()
        real = np.array(lengths) > 0  # transformers attends to padding in an empty row
        assert_max_diff(logits[real], ref[real], LOGITS_ATOL, "logits")
    for i, n in enumerate(lengths):
        if n:
            alone = model(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n]).logits
            np.testing.assert_array_equal(alone[0], logits[i])


def test_token_classification_matches_transformers(tmp_path):
    cfg = bert_config(hidden_size=40, num_attention_heads=5, num_labels=9, type_vocab_size=3)
    ref_model = randomize_(transformers.BertForTokenClassification(cfg), seed=22)
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path))
    assert isinstance(model, pybert.BertForTokenClassification)
    ids, mask, types = padded_batch(cfg.vocab_size, [11, 3, 16], 16, 3)
    ref = torch_logits(ref_model, ids, mask, types, output_hidden_states=True)
    out = model(ids, mask, types, output_hidden_states=True)
    keep = mask.astype(bool)
    assert out.logits.shape == (3, 16, 9)
    assert_max_diff(out.logits[keep], ref.logits.numpy()[keep], LOGITS_ATOL, "logits")
    assert not out.logits[~keep].any()  # padded positions are zeros
    check_hidden_states(out.hidden_states, ref.hidden_states, mask)
    probs = model.scores(ids, mask, types)
    assert_max_diff(probs[keep], torch.softmax(ref.logits, -1).numpy()[keep], PROBS_ATOL, "probs")
    np.testing.assert_array_equal(probs[keep].argmax(-1), ref.logits.argmax(-1).numpy()[keep])


@pytest.mark.parametrize("tied", [True, False])
def test_masked_lm_matches_transformers(tmp_path, tied):
    cfg = bert_config(hidden_size=48, num_attention_heads=4, vocab_size=300,
                      hidden_act="gelu_new", tie_word_embeddings=tied)
    ref_model = randomize_(transformers.BertForMaskedLM(cfg), seed=23)
    if tied:
        assert ref_model.cls.predictions.decoder.weight is \
            ref_model.bert.embeddings.word_embeddings.weight
    path = save(ref_model, tmp_path)
    model = pybert.AutoModel.from_pretrained(path)
    assert isinstance(model, pybert.BertForMaskedLM)
    ids, mask, types = padded_batch(cfg.vocab_size, [10, 4], 10)
    ref = torch_logits(ref_model, ids, mask, types, output_hidden_states=True)
    out = model(ids, mask, types, output_hidden_states=True)
    keep = mask.astype(bool)
    assert out.logits.shape == (2, 10, 300)
    assert_max_diff(out.logits[keep], ref.logits.numpy()[keep], LOGITS_ATOL, "logits")
    check_hidden_states(out.hidden_states, ref.hidden_states, mask)
    probs = model.scores(ids, mask, types)
    assert_max_diff(probs[keep], torch.softmax(ref.logits, -1).numpy()[keep], PROBS_ATOL, "probs")
    np.testing.assert_array_equal(probs[keep].argmax(-1), ref.logits.argmax(-1).numpy()[keep])

    stored = load_file(os.path.join(path, "model.safetensors"))
    assert ("cls.predictions.decoder.weight" in stored) == (not tied)
    # Tied: the decoder reads the embedding matrix's own memory; untied: its own tensor.
    assert model.shares_word_embeddings() == tied


def test_masked_lm_decoder_is_the_embedding_buffer(tmp_path):
    """The tied decoder reads the word-embedding matrix itself: one address for both, so no
    second vocab x hidden buffer exists, also from a half-precision file whose embeddings are
    converted to fp32 at load (converted once, not once per user)."""
    cfg = bert_config(vocab_size=500)
    ref_model = randomize_(transformers.BertForMaskedLM(cfg), seed=24)
    ids = np.arange(1, 9)[None]
    for dtype in (torch.float32, torch.float16):
        path = save(ref_model.to(dtype), tmp_path / str(dtype))
        model = pybert.BertForMaskedLM.from_pretrained(path)
        assert model._core.decoder_weight_ptr == model._core.word_embeddings_ptr
        assert model.shares_word_embeddings()
        ref = torch_logits(ref_model.float(), ids)  # the same rounded weights, in fp32
        assert_max_diff(model(ids).logits, ref.logits.numpy(), LOGITS_ATOL, "logits")


# ---- the docs' pattern: a LinearHead on the [CLS] of the last N layers ------------------------

def test_linear_head_on_last_layers_cls(tmp_path):
    cfg = bert_config(num_hidden_layers=4, num_labels=3)
    ref_model = randomize_(transformers.BertForSequenceClassification(cfg), seed=25)
    model = pybert.BertForSequenceClassification.from_pretrained(save(ref_model, tmp_path))
    ids, mask, types = padded_batch(cfg.vocab_size, [8, 6], 8)
    rng = np.random.default_rng(3)
    w = rng.standard_normal((14, 4 * cfg.hidden_size)).astype(np.float32)
    b = rng.standard_normal(14).astype(np.float32)

    # as in docs/heads.md
    out = model(ids, attention_mask=mask, output_hidden_states=True)
    features = np.concatenate([h[:, 0] for h in out.hidden_states[-4:]], axis=-1)
    head = pybert.LinearHead(w, b)
    probs = head.softmax(features)

    ref = torch_logits(ref_model, ids, mask, output_hidden_states=True)
    ref_feat = torch.cat([h[:, 0] for h in ref.hidden_states[-4:]], -1)
    ref_probs = torch.softmax(ref_feat @ torch.from_numpy(w).T + torch.from_numpy(b), -1)
    assert_max_diff(probs, ref_probs.numpy(), PROBS_ATOL, "probs")
    np.testing.assert_array_equal(head.predict(features), ref_probs.argmax(-1).numpy())


# ---- the real MiniLM body with random heads, through text --------------------------------------

def minilm_with_head(cls, minilm_path, path, seed, **config):
    ref_model = cls.from_pretrained(minilm_path, **config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in ref_model.named_parameters():
            if not name.startswith("bert."):  # the head only; the body stays MiniLM's
                noise = torch.randn(p.shape, generator=g) * 0.2
                p.copy_(1.0 + noise if "LayerNorm.weight" in name else noise)
    ref_model.save_pretrained(path)
    for f in TOKENIZER_FILES:
        shutil.copy(os.path.join(minilm_path, f), path)
    return ref_model


@pytest.fixture(scope="module")
def hf_tok(minilm_path):
    return transformers.AutoTokenizer.from_pretrained(minilm_path)


TEXTS = ["The movie was a delight from start to finish.",
         "Paris is the capital of France, isn't it?",
         "Cheap flights to Zürich",
         "a"]


@pytest.fixture(scope="module")
def minilm_classifier(minilm_path, tmp_path_factory):
    """MiniLM's body with a random 14-label head, saved with its tokenizer: (path, reference)."""
    path = tmp_path_factory.mktemp("minilm_classifier")
    return path, minilm_with_head(transformers.BertForSequenceClassification, minilm_path, path,
                                  31, num_labels=14, id2label={i: f"topic{i}" for i in range(14)})


@pytest.fixture(scope="module")
def minilm_mlm(minilm_path, tmp_path_factory):
    """MiniLM's body with a random masked-LM head (decoder tied): (path, reference)."""
    path = tmp_path_factory.mktemp("minilm_mlm")
    return path, minilm_with_head(transformers.BertForMaskedLM, minilm_path, path, 35)


def test_minilm_sequence_classification_predict(minilm_classifier, hf_tok):
    path, ref_model = minilm_classifier
    model = pybert.AutoModel.from_pretrained(path)
    enc = hf_tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model(**enc).logits
    ids = enc["input_ids"].numpy()
    out = model(ids, enc["attention_mask"].numpy(), enc["token_type_ids"].numpy())
    assert_max_diff(out.logits, ref.numpy(), LOGITS_ATOL, "logits")

    ref_p, ref_i = torch.softmax(ref, -1).topk(3)
    preds = model.predict(TEXTS, top_k=3)
    assert len(preds) == len(TEXTS)
    for pred, pi, ii in zip(preds, ref_p.numpy(), ref_i.numpy()):
        assert [p["label"] for p in pred] == [f"topic{i}" for i in ii]
        assert_max_diff([p["score"] for p in pred], pi, PROBS_ATOL, "probs")
    one = model.predict(TEXTS[0])
    assert len(one) == 1 and one[0]["label"] == preds[0][0]["label"]
    assert len(model.predict(TEXTS[:2], top_k=None)[0]) == 14


def test_minilm_cross_encoder_pairs_raw_score(tmp_path, minilm_path, hf_tok):
    ref_model = minilm_with_head(transformers.BertForSequenceClassification, minilm_path,
                                 tmp_path, 32, num_labels=1)
    model = pybert.BertForSequenceClassification.from_pretrained(tmp_path)
    queries = ["what is the capital of france"] * 3
    passages = ["Paris is the capital of France.", "Bananas are yellow.",
                "France's capital city, Paris, lies on the Seine."]
    enc = hf_tok(queries, passages, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = ref_model(**enc).logits[:, 0].numpy()
    preds = model.predict(queries, passages)
    assert_max_diff([p[0]["score"] for p in preds], ref, LOGITS_ATOL, "raw scores")
    assert {p[0]["label"] for p in preds} == {"LABEL_0"}


def test_minilm_multi_label_predict(tmp_path, minilm_path, hf_tok):
    ref_model = minilm_with_head(transformers.BertForSequenceClassification, minilm_path,
                                 tmp_path, 33, num_labels=4,
                                 problem_type="multi_label_classification")
    model = pybert.BertForSequenceClassification.from_pretrained(tmp_path)
    enc = hf_tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = torch.sigmoid(ref_model(**enc).logits).numpy()
    preds = model.predict(TEXTS, top_k=None)
    for pred, r in zip(preds, ref):
        order = np.argsort(-r, kind="stable")
        assert [p["label"] for p in pred] == [f"LABEL_{i}" for i in order]
        assert_max_diff([p["score"] for p in pred], r[order], PROBS_ATOL, "sigmoid")


def test_minilm_token_classification_predict(tmp_path, minilm_path, hf_tok):
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    ref_model = minilm_with_head(transformers.BertForTokenClassification, minilm_path, tmp_path,
                                 34, num_labels=5, id2label=labels)
    model = pybert.AutoModel.from_pretrained(tmp_path)
    text = "Angela Merkel visited Zürich-Oerlikon yesterday, unbelievably!"
    enc = hf_tok(text, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        probs = torch.softmax(ref_model(**enc).logits[0], -1)
    expected, seen = [], set()
    for s, word in enumerate(enc.word_ids(0)):
        if word is None:
            continue
        if word not in seen:
            seen.add(word)
            expected.append([offsets[s][0], offsets[s][1], int(probs[s].argmax()),
                             float(probs[s].max())])
        else:
            expected[-1][1] = offsets[s][1]
    words = model.predict(text)
    assert len(words) == len(expected) > 6  # "Zürich-Oerlikon" is three words, "unbelievably" one
    for w, (start, end, label, score) in zip(words, expected):
        assert (w["start"], w["end"], w["label"]) == (start, end, labels[label])
        assert w["word"] == text[start:end]
        assert abs(w["score"] - score) <= PROBS_ATOL
    assert [w["word"] for w in words][:2] == ["Angela", "Merkel"]
    assert model.predict([text, "Bonn"])[0] == words


def test_minilm_fill_mask(minilm_mlm, hf_tok):
    path, ref_model = minilm_mlm
    model = pybert.AutoModel.from_pretrained(path)
    assert model.shares_word_embeddings()
    text = "The capital of [MASK] is Paris, and [MASK] is in Europe."
    enc = hf_tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = ref_model(**enc).logits[0]
    where = (enc["input_ids"][0] == hf_tok.mask_token_id).nonzero()[:, 0]
    ref_p, ref_i = torch.softmax(logits[where], -1).topk(5)
    result = model.fill_mask(text, top_k=5)
    assert len(result) == 2
    for per_mask, pp, ii in zip(result, ref_p.numpy(), ref_i.numpy()):
        assert [t["token_id"] for t in per_mask] == ii.tolist()
        assert [t["token"] for t in per_mask] == hf_tok.convert_ids_to_tokens(ii.tolist())
        assert_max_diff([t["score"] for t in per_mask], pp, PROBS_ATOL, "probs")

    with pytest.raises(ValueError, match=r"needs a \[MASK\] token"):
        model.fill_mask("no mask here")
    with pytest.raises(ValueError, match="top_k must be an integer"):
        model.fill_mask(text, top_k=0)


# ---- CLI --------------------------------------------------------------------------------------

def test_cli_classify(minilm_classifier, tmp_path, capsys):
    path, _ = minilm_classifier
    model = pybert.BertForSequenceClassification.from_pretrained(path)
    lines = tmp_path / "in.txt"
    lines.write_text("\n".join(TEXTS[:3]) + "\n\n")
    assert pybert.cli.main(["classify", "--model", str(path), str(lines)]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = model.predict(TEXTS[:3])
    assert [line.split("\t")[0] for line in out] == [p[0]["label"] for p in expected]
    assert [float(line.split("\t")[1]) for line in out] == pytest.approx(
        [p[0]["score"] for p in expected], abs=1e-5)

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("what is it\ta cat\nwho\tnobody\n")
    assert pybert.cli.main(["classify", "--model", str(path), "--pairs", "--top-k", "2",
                            str(pairs)]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = model.predict(["what is it", "who"], ["a cat", "nobody"], top_k=2)
    assert [line.split("\t")[::2] for line in out] == [[p["label"] for p in e] for e in expected]

    pairs.write_text("no tab on this line\n")
    assert pybert.cli.main(["classify", "--model", str(path), "--pairs", str(pairs)]) == 2
    assert "--pairs expects 'text<TAB>pair'" in capsys.readouterr().err


def test_cli_fill_mask(minilm_mlm, capsys):
    path, _ = minilm_mlm
    model = pybert.BertForMaskedLM.from_pretrained(path)
    text = "Paris is the [MASK] of France."
    assert pybert.cli.main(["fill-mask", "--model", str(path), "--top-k", "3", text]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == [t["token"] for t in model.fill_mask(text, 3)[0]]
    assert pybert.cli.main(["fill-mask", "--model", str(path), "no mask"]) == 2
    assert "needs a [MASK] token" in capsys.readouterr().err


# ---- loading and bad input --------------------------------------------------------------------

def test_checkpoint_missing_classifier(tmp_path):
    cfg = bert_config(num_labels=3)
    path = save(randomize_(transformers.BertForSequenceClassification(cfg), seed=41), tmp_path)
    file = os.path.join(path, "model.safetensors")
    tensors = load_file(file)
    del tensors["classifier.weight"]
    save_file(tensors, file)
    with pytest.raises(ValueError, match=r"BertForSequenceClassification head: missing tensor "
                                         r"'classifier.weight' \(expected shape \(3, 32\)\)"):
        pybert.BertForSequenceClassification.from_pretrained(path)


def test_body_only_checkpoint_has_no_head(tmp_path):
    path = save(randomize_(transformers.BertModel(bert_config()), seed=42), tmp_path)
    with pytest.raises(ValueError, match="BertForTokenClassification head: missing tensor "
                                         "'classifier.weight'"):
        pybert.BertForTokenClassification.from_pretrained(path)
    with pytest.raises(ValueError, match="BertForMaskedLM head: missing tensor "
                                         "'cls.predictions.transform.dense.weight'"):
        pybert.BertForMaskedLM.from_pretrained(path)
    assert isinstance(pybert.AutoModel.from_pretrained(path), pybert.BertModel)


def test_sequence_classification_needs_pooler(tmp_path):
    # a token-classification checkpoint has a classifier but no pooler
    cfg = bert_config(num_labels=2)
    path = save(randomize_(transformers.BertForTokenClassification(cfg), seed=43), tmp_path)
    with pytest.raises(ValueError, match="needs the pooler"):
        pybert.BertForSequenceClassification.from_pretrained(path)


def test_misshaped_classifier_is_named(tmp_path):
    cfg = bert_config(num_labels=4)
    path = save(randomize_(transformers.BertForSequenceClassification(cfg), seed=44), tmp_path)
    cfg_file = os.path.join(path, "config.json")
    values = json.load(open(cfg_file))
    values["id2label"] = {str(i): f"L{i}" for i in range(6)}
    json.dump(values, open(cfg_file, "w"))
    with pytest.raises(ValueError, match=r"'classifier.weight' has shape \(4, 32\), "
                                         r"expected \(6, 32\)"):
        pybert.BertForSequenceClassification.from_pretrained(path)


def test_unsupported_architecture_lists_supported(tmp_path):
    path = save(randomize_(transformers.BertForPreTraining(bert_config()), seed=45), tmp_path)
    with pytest.raises(ValueError, match="'BertForPreTraining'.*not supported; supported: "
                                         "BertModel, RobertaModel, .*MegatronBertModel, "
                                         "BertForSequenceClassification, "
                                         "BertForTokenClassification, BertForMaskedLM"):
        pybert.AutoModel.from_pretrained(path)


def test_text_methods_need_a_tokenizer(tmp_path):
    cfg = bert_config(num_labels=2)
    path = save(randomize_(transformers.BertForSequenceClassification(cfg), seed=46), tmp_path)
    model = pybert.BertForSequenceClassification.from_pretrained(path)
    assert model.tokenizer is None
    with pytest.raises(ValueError, match="has no tokenizer"):
        model.predict("hello")
    with pytest.raises(ValueError, match="top_k must be an integer from 1 to 2"):
        model.predict("hello", top_k=3)


def test_heads_pickle_as_their_recipe(tmp_path):
    import pickle

    cfg = bert_config(num_labels=3)
    ref = randomize_(transformers.BertForSequenceClassification(cfg), seed=40)
    clf = pybert.AutoModel.from_pretrained(save(ref, tmp_path))
    blob = pickle.dumps(clf)
    assert len(blob) < 2000  # the recipe, not the weights
    again = pickle.loads(blob)
    assert type(again) is pybert.BertForSequenceClassification
    ids = np.array([[1, 5, 7, 2]])
    np.testing.assert_array_equal(again(ids).logits, clf(ids).logits)


def test_heads_close_and_context_manager(tmp_path):
    cfg = bert_config(num_labels=3)
    path = save(randomize_(transformers.BertForSequenceClassification(cfg), seed=41), tmp_path)
    ids = np.array([[1, 5, 7, 2]])
    with pybert.AutoModel.from_pretrained(path) as clf:
        assert not clf.closed
        clf(ids)
    assert clf.closed
    with pytest.raises(ValueError, match="this model is closed"):
        clf(ids)
