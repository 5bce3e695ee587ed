"""SparseEncoder beyond plain SPLADE, against sentence-transformers' SparseEncoder on checkpoints
it saves itself: Routers (inference-free SPLADE, a SparseStaticEmbedding query route and a SPLADE
document route; routes picked through route_mappings) and SparseAutoEncoder (CSR) models."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Router, Transformer
from sentence_transformers.sparse_encoder.modules import (SparseAutoEncoder,
                                                          SparseStaticEmbedding, SpladePooling)

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer import modules as st_models
except ImportError:  # pragma: no cover
    from sentence_transformers import models as st_models

import pybert
from conftest import FAMILIES, VARIED_TEXTS, bert_config, randomize_

ATOL = 1e-5    # max abs difference (relative beyond 1) against sentence-transformers, fp32 both
ACTIVE = 1e-6  # entries above this must be active in both


def masked_lm_dir(root, family, tokenizer_dir, seed):
    """A random-weight *ForMaskedLM of the family sized to the tokenizer saved beside it."""
    tok = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    make = bert_config if family == "bert" else FAMILIES[family][0]
    cls = {"bert": transformers.BertForMaskedLM,
           "distilbert": transformers.DistilBertForMaskedLM}[family]
    cfg = make(vocab_size=len(tok), max_position_embeddings=512)
    path = os.fspath(root / f"{family}_mlm")
    randomize_(cls(cfg), seed=seed).save_pretrained(path)
    tok.save_pretrained(path)
    return path, tok


def static_weights(tok, seed):
    """IDF-like weights: positive for most tokens, zero for some (those drop out)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(len(tok), generator=g) * 3
    w[torch.rand(len(tok), generator=g) < 0.2] = 0
    return w


def build(kind, root, request):
    if kind == "inference_free":  # opensearch-style: DistilBERT SPLADE documents, IDF queries
        path, tok = masked_lm_dir(root, "distilbert", request.getfixturevalue("distilbert_dir"), 3)
        router = Router.for_query_document(
            query_modules=[SparseStaticEmbedding(tokenizer=tok, weight=static_weights(tok, 1),
                                                 frozen=True)],
            document_modules=[Transformer(path, transformer_task="fill-mask"),
                              SpladePooling(pooling_strategy="max")])
        prompts = None
    else:  # explicit mappings: queries through SPLADE (sum, log1p_relu), the rest static
        minilm = request.getfixturevalue("minilm_path")
        path, tok = masked_lm_dir(root, "bert", minilm, 4)
        router = Router(
            {"q": [Transformer(path, transformer_task="fill-mask", max_seq_length=24),
                   SpladePooling(pooling_strategy="sum", activation_function="log1p_relu")],
             "d": [SparseStaticEmbedding(tokenizer=tok, weight=static_weights(tok, 2))]},
            default_route=None, allow_empty_key=False,
            route_mappings={("query", None): "q", (None, None): "d"})
        prompts = {"query": "query: "}
    st = SparseEncoder(modules=[router], similarity_fn_name="dot", prompts=prompts, device="cpu")
    out = os.fspath(root / "saved")
    st.save(out)
    return out


@pytest.fixture(scope="module", params=["inference_free", "mappings"])
def routed(request, tmp_path_factory):
    path = build(request.param, tmp_path_factory.mktemp(request.param), request)
    torch.set_num_threads(2)
    return SparseEncoder(path, device="cpu"), pybert.SparseEncoder(path), path


def assert_sparse_equal(ours, ref):
    dense = ours.toarray()
    assert dense.shape == ref.shape
    diff = (np.abs(dense - ref) / np.maximum(1.0, np.abs(ref))).max()
    assert diff <= ATOL, f"max abs diff (relative beyond 1) {diff:.3g} > {ATOL}"
    assert np.array_equal(dense > ACTIVE, ref > ACTIVE)
    assert ours.indices.dtype == np.int32 and np.all(ours.data != 0)


@pytest.mark.parametrize("call", [("encode", {}), ("encode_query", {}), ("encode_document", {}),
                                  ("encode", {"task": "query"}),
                                  ("encode", {"task": "document"}),
                                  ("encode", {"prompt": "find: "}),
                                  ("encode_query", {"prompt": "find: "})])
def test_routes_match_sentence_transformers(routed, call):
    st, ours, _ = routed
    method, kwargs = call
    ref = getattr(st, method)(VARIED_TEXTS, convert_to_sparse_tensor=False, batch_size=5,
                              **kwargs).numpy()
    assert ref.max() > 0.5
    for batch_size in (1, 32):
        assert_sparse_equal(getattr(ours, method)(VARIED_TEXTS, batch_size=batch_size, **kwargs),
                            ref)


@pytest.mark.parametrize("k", [1, 5])
def test_max_active_dims_on_each_route(routed, k):
    st, ours, _ = routed
    for method in ("encode_query", "encode_document"):
        ref = getattr(st, method)(VARIED_TEXTS, convert_to_sparse_tensor=False,
                                  max_active_dims=k).numpy()
        got = getattr(ours, method)(VARIED_TEXTS, max_active_dims=k)
        assert_sparse_equal(got, ref)
        assert np.all(np.diff(got.indptr) <= k)


def test_routes_scores_and_errors(routed):
    st, ours, _ = routed
    q_ref = st.encode_query(VARIED_TEXTS[:4], convert_to_sparse_tensor=False)
    d_ref = st.encode_document(VARIED_TEXTS[:6], convert_to_sparse_tensor=False)
    ref = st.similarity(q_ref, d_ref).numpy()
    q = ours.encode_query(VARIED_TEXTS[:4]).toarray()
    d = ours.encode_document(VARIED_TEXTS[:6]).toarray()
    assert np.abs(q @ d.T - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    # A task no route names: an error, unless a (None, None) mapping catches it, as in
    # sentence-transformers.
    try:
        ref = st.encode(VARIED_TEXTS[:3], task="passage", convert_to_sparse_tensor=False).numpy()
    except ValueError:
        with pytest.raises(ValueError, match="no route for task 'passage'"):
            ours.encode(["a"], task="passage")
    else:
        assert_sparse_equal(ours.encode(VARIED_TEXTS[:3], task="passage"), ref)
    assert ours.encode([]).shape == (0, ours.get_embedding_dimension())
    assert ours.encode_query("").shape == (ours.get_embedding_dimension(),)


def test_router_without_default_route_needs_a_task(request, tmp_path):
    path = build("mappings", tmp_path, request)
    with open(os.path.join(path, "router_config.json")) as f:
        config = json.load(f)
    config["parameters"]["route_mappings"] = {"('query', None)": "q"}
    with open(os.path.join(path, "router_config.json"), "w") as f:
        json.dump(config, f)
    ours = pybert.SparseEncoder(path)
    with pytest.raises(ValueError, match="no default route"):
        ours.encode(["a"])
    with pytest.raises(ValueError, match="no route for task 'document'"):
        ours.encode_document(["a"])
    assert ours.encode_query(["a"]).shape[0] == 1


def test_router_with_an_unsupported_module_names_it(request, tmp_path):
    path = build("inference_free", tmp_path, request)
    with open(os.path.join(path, "router_config.json")) as f:
        config = json.load(f)
    config["types"]["query_0_SparseStaticEmbedding"] = \
        "sentence_transformers.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder"
    with open(os.path.join(path, "router_config.json"), "w") as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match=r"'query_0_SparseStaticEmbedding' of type "
                                         r"'.*SparseAutoEncoder' in route 'query' is not "
                                         r"supported by pybert's SparseEncoder \(supported in a "
                                         r"Router: Transformer, MLMTransformer, SpladePooling, "
                                         r"SparseStaticEmbedding\)"):
        pybert.SparseEncoder(path)
    # A route of modules pybert knows, in an order it does not run, is refused too.
    config = json.load(open(os.path.join(path, "router_config.json")))
    config["types"]["query_0_SparseStaticEmbedding"] = \
        "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling"
    json.dump(config, open(os.path.join(path, "router_config.json"), "w"))
    shutil.rmtree(os.path.join(path, "query_0_SparseStaticEmbedding"))
    with pytest.raises(ValueError, match=r"got \['SpladePooling'\]"):
        pybert.SparseEncoder(path)


def test_router_of_static_routes_only(minilm_path, tmp_path):
    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(tokenizer=tok, weight=static_weights(tok, 5))],
        document_modules=[SparseStaticEmbedding(tokenizer=tok, weight=static_weights(tok, 6))])
    SparseEncoder(modules=[router], device="cpu").save(os.fspath(tmp_path))
    st = SparseEncoder(os.fspath(tmp_path), device="cpu")
    ours = pybert.SparseEncoder(tmp_path)
    assert ours.config is None and ours.max_seq_length is None and "routes" in repr(ours)
    for method in ("encode_query", "encode_document", "encode"):
        ref = getattr(st, method)(VARIED_TEXTS, convert_to_sparse_tensor=False).numpy()
        assert_sparse_equal(getattr(ours, method)(VARIED_TEXTS), ref)
    ours.close()
    assert ours.closed
    with pytest.raises(ValueError, match="closed"):
        ours.encode_query(["a"])
    # A SparseStaticEmbedding alone, without a Router.
    alone = tmp_path / "alone"
    SparseEncoder(modules=[SparseStaticEmbedding(tokenizer=tok, weight=static_weights(tok, 7))],
                  device="cpu").save(os.fspath(alone))
    st = SparseEncoder(os.fspath(alone), device="cpu")
    ref = st.encode(VARIED_TEXTS, convert_to_sparse_tensor=False).numpy()
    assert_sparse_equal(pybert.SparseEncoder(alone).encode_query(VARIED_TEXTS), ref)


# ---- SparseAutoEncoder (CSR: a sparse code of a dense sentence embedding) ------------------------

CSR_VARIANTS = {  # name: (pooling, include_prompt, Dense after pooling, SAE normalize, k)
    "mean_normalize": ("mean", True, False, False, 6),
    "max_dense_no_prompt": ("max", False, True, True, 4),
}


@pytest.mark.parametrize("variant", sorted(CSR_VARIANTS))
def test_sparse_autoencoder_matches_sentence_transformers(request, tmp_path, variant):
    pooling, include_prompt, dense, normalize, k = CSR_VARIANTS[variant]
    path, _ = masked_lm_dir(tmp_path, "bert", request.getfixturevalue("minilm_path"), 7)
    transformers.BertModel.from_pretrained(path).save_pretrained(path)  # the base model
    modules = [Transformer(path), st_models.Pooling(32, pooling_mode=pooling,
                                                    include_prompt=include_prompt)]
    width = 32
    if dense:
        modules.append(randomize_(st_models.Dense(32, 24, activation_function=torch.nn.Tanh()),
                                  seed=8, std=0.3))
        width = 24
    modules += [st_models.Normalize(),
                randomize_(SparseAutoEncoder(width, hidden_dim=80, k=k, normalize=normalize),
                           seed=9, std=0.5)]
    st = SparseEncoder(modules=modules, prompts={"query": "query: "}, device="cpu")
    st.save(os.fspath(tmp_path / "csr"))
    st = SparseEncoder(os.fspath(tmp_path / "csr"), device="cpu")
    ours = pybert.SparseEncoder(tmp_path / "csr")
    assert ours.get_embedding_dimension() == 80
    for method in ("encode", "encode_query"):
        ref = getattr(st, method)(VARIED_TEXTS, convert_to_sparse_tensor=False).numpy()
        got = getattr(ours, method)(VARIED_TEXTS, batch_size=5)
        assert_sparse_equal(got, ref)
        assert np.all(np.diff(got.indptr) <= k)
    ref = st.encode(VARIED_TEXTS, convert_to_sparse_tensor=False, max_active_dims=2).numpy()
    assert_sparse_equal(ours.encode(VARIED_TEXTS, max_active_dims=2), ref)
    with pytest.raises(ValueError, match="k must be between 1 and the encoder's 80 latents"):
        ours.encode(["a"], max_active_dims=81)
