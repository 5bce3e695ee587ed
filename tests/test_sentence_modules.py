"""SentenceEncoder on the sentence-transformers modules real checkpoints use (Dense with its
activation, every Pooling mode and include_prompt, LayerNorm, Normalize), prompts, truncate_dim
and quantized outputs, against sentence-transformers' SentenceTransformer on checkpoints it saved
itself from random-weight models of two sizes and two families."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import quantize_embeddings as st_quantize

try:  # sentence-transformers >= 5.2 moved its modules
    from sentence_transformers.sentence_transformer import modules as st_models
except ImportError:  # pragma: no cover
    from sentence_transformers import models as st_models

import pybert
from conftest import VARIED_TEXTS, randomize_, with_tokenizer

ATOL = 1e-5  # max abs difference against sentence-transformers (fp32 both)

SIZES = {"small": {}, "larger": dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                                     intermediate_size=96)}
MODEL_CLASSES = {"bert": transformers.BertModel, "roberta": transformers.RobertaModel}
PROMPTS = {"query": "query: ", "document": "passage: ", "classify": "classify this: "}


def st_checkpoint(request, tmp_path, family, size, post, pooling="mean", include_prompt=True,
                  **st_kwargs):
    """A SentenceTransformer of a random `family` body of `size`, pooling, then the modules
    `post` builds from the pooled width; saved with its own save(). -> (model, saved dir)."""
    hf, st_dir = tmp_path / "hf", tmp_path / "st"
    with_tokenizer(request, family, MODEL_CLASSES[family], hf, 11, **SIZES[size])
    torch.set_num_threads(2)
    transformer = st_models.Transformer(os.fspath(hf))
    hidden = transformer.get_embedding_dimension()
    pool = st_models.Pooling(hidden, pooling_mode=pooling, include_prompt=include_prompt)
    modules = [transformer, pool] + post(pool.get_embedding_dimension())
    for i, m in enumerate(modules[2:]):
        randomize_(m, seed=20 + i)
    st = SentenceTransformer(modules=modules, device="cpu", **st_kwargs)
    st.save(os.fspath(st_dir))
    return st, st_dir


def assert_close(ours, ref):
    ref = np.asarray(ref)
    assert ours.dtype == np.float32 and ours.shape == ref.shape, (ours.shape, ref.shape)
    diff = np.abs(ours - ref).max() if ours.size else 0.0
    assert diff <= ATOL, f"max abs diff {diff:.3g} > {ATOL}"


def dense_stack(width):
    """LaBSE's head: Dense + Tanh, then a projection, LayerNorm, a residual Dense and Normalize."""
    return [st_models.Dense(width, 24, activation_function=torch.nn.Tanh()),
            st_models.Dense(24, 16, activation_function=torch.nn.Identity()),
            st_models.LayerNorm(16),
            st_models.Dense(16, 16, activation_function=torch.nn.GELU(), use_residual=True),
            st_models.Dense(16, 12, activation_function=torch.nn.ReLU(), use_residual=True),
            st_models.Normalize()]


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("size", list(SIZES))
def test_dense_layer_norm_normalize_match(request, tmp_path, family, size):
    st, path = st_checkpoint(request, tmp_path, family, size, dense_stack)
    enc = pybert.SentenceEncoder(path)
    assert enc.normalize and enc.get_sentence_embedding_dimension() == 12
    assert_close(enc.encode(VARIED_TEXTS, batch_size=5),
                 st.encode(VARIED_TEXTS, batch_size=5, convert_to_numpy=True))
    # normalize=False skips the Normalize module; True normalizes again at the end
    st_plain = SentenceTransformer(modules=list(st)[:-1], device="cpu")
    assert_close(enc.encode(VARIED_TEXTS, normalize=False), st_plain.encode(VARIED_TEXTS))


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("modes", [("weightedmean",), ("lasttoken",),
                                   ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean",
                                    "lasttoken")])
def test_every_pooling_mode_matches(request, tmp_path, family, modes):
    st, path = st_checkpoint(request, tmp_path, family, "small", lambda w: [],
                             pooling=modes if len(modes) > 1 else modes[0])
    enc = pybert.SentenceEncoder(path)
    assert enc.pooling == [m.replace("_tokens", "") for m in modes]
    assert_close(enc.encode(VARIED_TEXTS, batch_size=4),
                 st.encode(VARIED_TEXTS, batch_size=4, convert_to_numpy=True))


@pytest.mark.parametrize("pooling", ["mean", "cls", "weightedmean", "lasttoken", "max"])
def test_nothing_left_to_pool(request, tmp_path, pooling):
    """A text whose tokens are all prompt (include_prompt false): sentence-transformers' Pooling
    gives zeros (mean, weightedmean, lasttoken) or the first token (cls), which pybert matches,
    and -inf for max, which pybert refuses with an error instead."""
    st, path = st_checkpoint(request, tmp_path, "bert", "small", lambda w: [], pooling=pooling,
                             include_prompt=False)
    enc = pybert.SentenceEncoder(path)
    texts = ["hi", "a much longer sentence with quite a few words in it"]
    batch = enc.tokenize(texts)
    prompt_length = int(batch["attention_mask"][0].sum())  # row 0: every token is "prompt"
    features = st.preprocess(texts)
    features["prompt_length"] = prompt_length
    with torch.no_grad():
        ref = st(features)["sentence_embedding"].numpy()
    if pooling == "max":
        assert np.isneginf(ref[0]).all() and np.isfinite(ref[1]).all()
        with pytest.raises(ValueError, match="row 0 of the tokenized batch has no token left to "
                                             "max-pool.*-inf"):
            enc.encode_tokens(batch, prompt_length=prompt_length)
        assert_close(enc.encode_tokens(enc.tokenize(texts[1:]), prompt_length=prompt_length),
                     ref[1:])
    else:
        assert_close(enc.encode_tokens(batch, prompt_length=prompt_length), ref)


@pytest.mark.parametrize("include_prompt", [True, False])
@pytest.mark.parametrize("pooling", ["mean", "cls", "weightedmean", "lasttoken", "max"])
def test_prompts_and_include_prompt(request, tmp_path, include_prompt, pooling):
    st, path = st_checkpoint(request, tmp_path, "bert", "small", lambda w: [], pooling=pooling,
                             include_prompt=include_prompt, prompts=PROMPTS,
                             default_prompt_name="classify")
    enc = pybert.SentenceEncoder(path)
    assert enc.default_prompt_name == "classify" and enc.prompts["query"] == "query: "
    texts = VARIED_TEXTS[:6]
    assert_close(enc.encode(texts), st.encode(texts))  # the default prompt
    assert_close(enc.encode_query(texts), st.encode_query(texts))
    assert_close(enc.encode_document(texts), st.encode_document(texts))
    assert_close(enc.encode(texts, prompt_name="query"), st.encode(texts, prompt_name="query"))
    assert_close(enc.encode(texts, prompt="Represent: "), st.encode(texts, prompt="Represent: "))
    with pytest.raises(ValueError, match="prompt name 'nope' not found"):
        enc.encode(texts, prompt_name="nope")


def test_query_and_document_prompts_never_fall_back_to_the_default(request, tmp_path):
    st, path = st_checkpoint(request, tmp_path, "bert", "small", lambda w: [],
                             prompts={"classify": "classify: "}, default_prompt_name="classify")
    enc = pybert.SentenceEncoder(path)
    texts = VARIED_TEXTS[:4]
    assert_close(enc.encode_query(texts), st.encode_query(texts))
    assert_close(enc.encode_document(texts), st.encode_document(texts))
    assert_close(enc.encode_query(texts), enc.encode(texts, prompt=""))


@pytest.mark.parametrize("truncate_dim", [5, 12, 100])
def test_truncate_dim_in_constructor_and_encode(request, tmp_path, truncate_dim):
    st, path = st_checkpoint(request, tmp_path, "bert", "small", dense_stack)
    texts = VARIED_TEXTS[:7]
    ours = pybert.SentenceEncoder(path, truncate_dim=truncate_dim)
    ref = SentenceTransformer(os.fspath(path), device="cpu", truncate_dim=truncate_dim)
    assert ours.get_sentence_embedding_dimension() == ref.get_embedding_dimension() \
        == min(truncate_dim, 12)
    assert_close(ours.encode(texts), ref.encode(texts))
    assert_close(ours.encode(texts, normalize=True), ref.encode(texts, normalize_embeddings=True))
    full = pybert.SentenceEncoder(path)
    assert_close(full.encode(texts, truncate_dim=truncate_dim),
                 st.encode(texts, truncate_dim=truncate_dim))
    with pytest.raises(ValueError, match="truncate_dim must be a positive integer"):
        full.encode(texts, truncate_dim=0)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_output_precision_is_bit_identical(encoder_minilm, precision):
    texts = VARIED_TEXTS
    ours = encoder_minilm.encode(texts, output_precision=precision)
    ref = st_quantize(encoder_minilm.encode(texts), precision)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary", "float32"])
@pytest.mark.parametrize("dim", [1, 7, 8, 13, 384])
def test_quantize_embeddings_is_bit_identical(precision, dim):
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((50, dim)).astype(np.float32)
    x[3] = 0.0  # exact zeros: > 0 is false
    x[:, 0] = 0.5  # a constant column: step 1
    calibration = rng.standard_normal((20, dim)).astype(np.float32) * 0.5
    for kwargs in ({}, {"calibration_embeddings": calibration}):
        ours = pybert.quantize_embeddings(x, precision, **kwargs)
        ref = st_quantize(x, precision, **kwargs)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)
    one = pybert.quantize_embeddings(x[0], precision, calibration_embeddings=calibration)
    np.testing.assert_array_equal(one, st_quantize(x[:1], precision,
                                                   calibration_embeddings=calibration)[0])


def test_quantize_bad_input():
    x = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="precision must be one of"):
        pybert.quantize_embeddings(x, "int4")
    with pytest.raises(TypeError, match="must be floats"):
        pybert.quantize_embeddings(x.astype(np.int8), "int8")
    with pytest.raises(ValueError, match="single embedding"):
        pybert.quantize_embeddings(x[:1], "int8")
    with pytest.raises(ValueError, match="calibration_embeddings must be"):
        pybert.quantize_embeddings(x, "int8", calibration_embeddings=np.ones((2, 5)))
    assert pybert.quantize_embeddings(np.zeros((0, 9), np.float32), "ubinary").shape == (0, 2)


def test_empty_input_and_bad_options(encoder_minilm):
    assert encoder_minilm.encode([]).shape == (0, 384)
    assert encoder_minilm.encode_query([]).shape == (0, 384)
    assert encoder_minilm.encode([], output_precision="ubinary").shape == (0, 48)
    with pytest.raises(ValueError, match="output_precision must be one of"):
        encoder_minilm.encode(["a"], output_precision="fp16")
    with pytest.raises(TypeError, match="prompt must be a string"):
        encoder_minilm.encode(["a"], prompt=3)


def test_minilm_with_a_dense_module(minilm_path, tmp_path):
    """A Dense (Tanh) + Normalize on the real all-MiniLM-L6-v2 body, saved by
    sentence-transformers."""
    torch.set_num_threads(2)
    st = SentenceTransformer(minilm_path, device="cpu")
    modules = list(st)[:2] + [randomize_(st_models.Dense(384, 128), seed=3),
                              st_models.Normalize()]
    st = SentenceTransformer(modules=modules, device="cpu")
    st.save(os.fspath(tmp_path / "m"))
    enc = pybert.SentenceEncoder(tmp_path / "m")
    assert_close(enc.encode(VARIED_TEXTS), st.encode(VARIED_TEXTS))


def test_unsupported_modules_are_named(request, tmp_path):
    st, path = st_checkpoint(request, tmp_path, "bert", "small",
                             lambda w: [st_models.Dense(w, 8, activation_function=torch.nn.Sigmoid())])
    with pytest.raises(ValueError, match=r"Dense activation 'torch.nn.modules.activation.Sigmoid' "
                       r"is not supported .*torch.nn.Tanh"):
        pybert.SentenceEncoder(path)
    modules = json.loads((path / "modules.json").read_text())
    modules[-1]["type"] = "sentence_transformers.models.CNN"
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"module '2' of type 'sentence_transformers.models.CNN' "
                       r"is not supported"):
        pybert.SentenceEncoder(path)


@pytest.fixture(scope="module")
def encoder_minilm(minilm_path):
    return pybert.SentenceEncoder(minilm_path)


@pytest.mark.parametrize("modes", [["mean"], ["cls", "max", "mean", "mean_sqrt_len",
                                              "weightedmean", "lasttoken"]])
def test_one_core_call_equals_the_model_then_pool(encoder_minilm, minilm_path, modes):
    """encode_tokens pools the encoder's packed rows in the same call; the result equals running
    the model to a padded (batch, seq, hidden) array and pooling that, on masks with holes and
    an empty row too."""
    from conftest import padded_batch

    ids, mask, types = padded_batch(30522, [9, 1, 14, 0, 5], 14, seed=4)
    ids[:, 0] = 101
    mask[2, 3:6] = 0  # holes inside a sequence
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    body = pybert.BertModel.from_pretrained(minilm_path)
    if "max" in modes:  # max over no token: -inf in sentence-transformers, an error here
        with pytest.raises(ValueError, match="row 3 of the tokenized batch has no token left"):
            encoder_minilm.encode_tokens(batch, pooling=modes)
        keep = [0, 1, 2, 4]
        ids, mask, types = ids[keep], mask[keep], types[keep]
        batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    hidden = body(ids, mask, types).last_hidden_state
    for normalize in (False, True):
        ours = encoder_minilm.encode_tokens(batch, normalize=normalize, pooling=modes)
        ref = pybert.pool(hidden, mask, modes, normalize=normalize)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    if "max" not in modes:
        assert not ours[3].any()  # the empty row pools to zeros
