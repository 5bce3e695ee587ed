"""HierarchicalTokenPooling (Ward token pooling for multi-vector documents) against
sentence-transformers 6's module of that name (scipy's linkage and fcluster), on its own and in
MultiVectorEncoder checkpoints that sentence-transformers builds and saves here."""

from __future__ import annotations

import json
import os
import string

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import MultiVectorEncoder
from sentence_transformers.base.modules import Dense, Normalize, Transformer
from sentence_transformers.multi_vector_encoder.modules import (HierarchicalTokenPooling,
                                                                MultiVectorMask)

import pybert
from conftest import VARIED_TEXTS, bert_config, randomize_

ATOL = 1e-5  # max abs difference against sentence-transformers (fp32 both)

# Every way the module cuts: a factor (fractional too, no protected token, not normalized), a
# budget, a height, one cluster, and the tasks gate.
CONFIGS = [dict(pool_factor=2), dict(pool_factor=3, num_protected_tokens=0),
           dict(pool_factor=1.5, normalize_embeddings=False), dict(max_tokens=8),
           dict(max_tokens=3, num_protected_tokens=2), dict(distance_threshold=0.8),
           dict(distance_threshold=0.0), dict(pool_factor=100), dict(pool_factor=1),
           dict(pool_factor=2, tasks=["query", "document"])]


def unit_rows(rng, lengths, dim):
    """Documents of random unit vectors (no two equal: exact ties may break either way)."""
    docs = []
    for n in lengths:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        docs.append(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    return docs


def assert_docs_match(got, ref):
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        b = b.numpy() if isinstance(b, torch.Tensor) else b
        assert a.dtype == np.float32 and a.shape == b.shape
        if a.size:
            assert np.abs(a - b).max() <= ATOL


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_pool_matches_sentence_transformers(config):
    rng = np.random.default_rng(len(str(config)))
    # Lengths 0, 1, 2 and short ones (nothing or everything merges), then up to 200 tokens.
    docs = unit_rows(rng, [0, 1, 2, 3, 5] + list(rng.integers(4, 200, 20)), 48)
    ref = HierarchicalTokenPooling(**config)
    ours = pybert.HierarchicalTokenPooling(**config)
    for task in (None, "document", "query"):
        want = ref.pool([torch.from_numpy(d) for d in docs], task=task)
        assert_docs_match(ours.pool(docs, task=task), want)
    # The padded form, with a mask (holes included) and without one (right and left padding).
    padded = np.zeros((len(docs), 200, 48), np.float32)
    mask = np.zeros((len(docs), 200), np.int64)
    for i, d in enumerate(docs):
        padded[i, :len(d)] = d
        mask[i, :len(d)] = 1
    mask[6, 1] = 0
    want = ref.pool(torch.from_numpy(padded), attention_mask=torch.from_numpy(mask)).numpy()
    got = ours.pool(padded, attention_mask=mask)
    assert got.shape == want.shape and np.abs(got - want).max() <= ATOL
    left = np.stack([np.roll(p, 200 - len(d), axis=0) for p, d in zip(padded, docs)])
    for side, x in (("right", padded), ("left", left)):
        want = ref.pool(torch.from_numpy(x), padding_side=side).numpy()
        got = ours.pool(x, padding_side=side)
        assert got.shape == want.shape and np.abs(got - want).max() <= ATOL


def test_pool_cluster_count_is_scipys():
    """The counts scipy's maxclust gives, document by document (pool_factor 4, no protected)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    rng = np.random.default_rng(7)
    docs = unit_rows(rng, rng.integers(8, 120, 12), 16)
    got = pybert.HierarchicalTokenPooling(pool_factor=4, num_protected_tokens=0).pool(docs)
    for d, g in zip(docs, got):
        distances = np.clip(1 - d @ d.T, 0, 2)
        labels = fcluster(linkage(squareform(distances, checks=False), "ward"),
                          t=max(len(d) // 4, 1), criterion="maxclust")
        assert len(g) == len(np.unique(labels))
        # Each output row is the normalized mean of the cluster scipy numbers at its place.
        for k, label in enumerate(np.unique(labels)):
            mean = d[labels == label].mean(axis=0)
            assert np.abs(g[k] - mean / np.linalg.norm(mean)).max() <= ATOL


def test_pool_bad_arguments_as_sentence_transformers():
    for kwargs in (dict(pool_factor=0.5), dict(pool_factor=float("inf")),
                   dict(num_protected_tokens=-1), dict(distance_threshold=-1.0),
                   dict(distance_threshold=0.5, pool_factor=2), dict(max_tokens=4, pool_factor=2),
                   dict(max_tokens=1, num_protected_tokens=1)):
        with pytest.raises(ValueError):
            HierarchicalTokenPooling(**kwargs)
        with pytest.raises(ValueError):
            pybert.HierarchicalTokenPooling(**kwargs)
    pooling = pybert.HierarchicalTokenPooling(pool_factor=2)
    with pytest.raises(ValueError, match="finite"):
        pooling.pool([np.full((4, 8), np.nan, np.float32)])
    with pytest.raises(ValueError, match="2-D"):
        pooling.pool([np.zeros(8, np.float32)])
    with pytest.raises(ValueError, match="padding_side"):
        pooling.pool([np.zeros((2, 8), np.float32)], padding_side="middle")
    assert pooling.pool([]) == []


# ---- in MultiVectorEncoder ----------------------------------------------------------------------

def build(tmp_path_factory, minilm_path, pooling):
    """A random-weight BERT + Dense + skiplist + Normalize (+ the pooling module), saved by
    sentence-transformers."""
    config = bert_config(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=512)
    base = str(tmp_path_factory.mktemp("base"))
    randomize_(transformers.BertModel(config), seed=5).save_pretrained(base)
    transformers.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(base)
    modules = [Transformer(base, max_seq_length=64, query_length=16, document_length=64),
               Dense(32, 24, bias=True, activation_function=torch.nn.Identity(),
                     module_input_name="token_embeddings"),
               MultiVectorMask(skiplist_words=list(string.punctuation)),
               Normalize(module_input_name="token_embeddings")]
    if pooling is not None:
        modules.append(pooling)
    st = MultiVectorEncoder(modules=modules, device="cpu")
    randomize_(st[1], seed=6, std=0.3)
    path = str(tmp_path_factory.mktemp("mv_pool"))
    st.save(path)
    return path


@pytest.fixture(scope="module", params=["factor", "budget_both_tasks"])
def pooled_checkpoint(request, tmp_path_factory, minilm_path):
    pooling = {"factor": HierarchicalTokenPooling(pool_factor=2),
               "budget_both_tasks": HierarchicalTokenPooling(max_tokens=6,
                                                             tasks=["query", "document"])}
    path = build(tmp_path_factory, minilm_path, pooling[request.param])
    torch.set_num_threads(2)
    return MultiVectorEncoder(path, device="cpu"), pybert.MultiVectorEncoder(path), path


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_checkpoint_pooling_matches(pooled_checkpoint, method):
    st, ours, _ = pooled_checkpoint
    ref = getattr(st, method)(VARIED_TEXTS, convert_to_numpy=True, batch_size=5)
    for batch_size in (1, 32):
        assert_docs_match(getattr(ours, method)(VARIED_TEXTS, batch_size=batch_size), ref)
    # Then normalize_embeddings, truncate_dim (renormalized), a further pooling of the call.
    extra = HierarchicalTokenPooling(pool_factor=1.5, num_protected_tokens=0)
    mine = pybert.HierarchicalTokenPooling(pool_factor=1.5, num_protected_tokens=0)
    ref = getattr(st, method)(VARIED_TEXTS[:8], convert_to_numpy=True, truncate_dim=8,
                              normalize_embeddings=True, token_pooling=extra)
    got = getattr(ours, method)(VARIED_TEXTS[:8], truncate_dim=8, normalize_embeddings=True,
                                token_pooling=mine)
    assert_docs_match(got, ref)


def test_checkpoint_without_normalize_option_loads_as_sentence_transformers(
        pooled_checkpoint, tmp_path):
    """A config.json saved before normalize_embeddings existed means False."""
    st, _, path = pooled_checkpoint
    old = str(tmp_path / "old")
    os.makedirs(old)
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)
    for name in os.listdir(path):
        if name != modules[-1]["path"]:
            os.symlink(os.path.join(path, name), os.path.join(old, name))
    os.makedirs(os.path.join(old, modules[-1]["path"]))
    with open(os.path.join(path, modules[-1]["path"], "config.json")) as f:
        config = json.load(f)
    del config["normalize_embeddings"]
    with open(os.path.join(old, modules[-1]["path"], "config.json"), "w") as f:
        json.dump(config, f)
    ref = MultiVectorEncoder(old, device="cpu").encode_document(VARIED_TEXTS[:6],
                                                                convert_to_numpy=True)
    got = pybert.MultiVectorEncoder(old).encode_document(VARIED_TEXTS[:6])
    assert_docs_match(got, ref)
    assert any(abs(np.linalg.norm(v, axis=1) - 1).max() > 1e-3 for v in got)  # not normalized


def test_encoder_token_pooling_argument(tmp_path_factory, minilm_path):
    path = build(tmp_path_factory, minilm_path, None)
    st_pool = HierarchicalTokenPooling(pool_factor=3)
    st = MultiVectorEncoder(path, device="cpu", token_pooling=st_pool)
    ours = pybert.MultiVectorEncoder(path, token_pooling=pybert.HierarchicalTokenPooling(pool_factor=3))
    for method in ("encode", "encode_query", "encode_document"):
        ref = getattr(st, method)(VARIED_TEXTS, convert_to_numpy=True)
        assert_docs_match(getattr(ours, method)(VARIED_TEXTS), ref)
    plain = pybert.MultiVectorEncoder(path)
    ref = MultiVectorEncoder(path, device="cpu").encode_document(
        VARIED_TEXTS, convert_to_numpy=True, token_pooling=HierarchicalTokenPooling(max_tokens=5))
    assert_docs_match(plain.encode_document(
        VARIED_TEXTS, token_pooling=pybert.HierarchicalTokenPooling(max_tokens=5)), ref)
    # Pickled as its recipe, the pooling with it (equal settings: the same cached encoder).
    import pickle

    clone = pickle.loads(pickle.dumps(ours))
    assert clone.token_pooling == ours.token_pooling
    assert pickle.loads(pickle.dumps(ours)) is clone
    assert_docs_match(clone.encode_document(VARIED_TEXTS[:4]),
                      ours.encode_document(VARIED_TEXTS[:4]))
    with pytest.raises(TypeError, match="HierarchicalTokenPooling"):
        plain.encode_document(VARIED_TEXTS, token_pooling=lambda x: x)
    with pytest.raises(TypeError, match="HierarchicalTokenPooling"):
        pybert.MultiVectorEncoder(path, token_pooling=st_pool)


def test_checkpoint_pooling_refusals(pooled_checkpoint, tmp_path):
    _, _, path = pooled_checkpoint
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)

    def variant(name, new_modules, pooling_config=None):
        out = str(tmp_path / name)
        os.makedirs(out)
        for entry in os.listdir(path):
            if entry != "modules.json" and not (pooling_config and entry == modules[-1]["path"]):
                os.symlink(os.path.join(path, entry), os.path.join(out, entry))
        if pooling_config is not None:
            os.makedirs(os.path.join(out, modules[-1]["path"]))
            with open(os.path.join(out, modules[-1]["path"], "config.json"), "w") as f:
                json.dump(pooling_config, f)
        with open(os.path.join(out, "modules.json"), "w") as f:
            json.dump(new_modules, f)
        return out

    # Pooling before Normalize: not the last module.
    reordered = modules[:-2] + [modules[-1], modules[-2]]
    with pytest.raises(ValueError, match="HierarchicalTokenPooling last"):
        pybert.MultiVectorEncoder(variant("order", reordered))
    # LambdaTokenPooling cannot be saved by sentence-transformers; named if a file says so.
    lam = modules[:-1] + [dict(modules[-1], type="sentence_transformers.multi_vector_encoder."
                                                 "modules.token_pooling.LambdaTokenPooling")]
    with pytest.raises(ValueError, match="LambdaTokenPooling.*supported: .*"
                                         "HierarchicalTokenPooling"):
        pybert.MultiVectorEncoder(variant("lambda", lam))
    # A bad saved option is an error naming the module folder.
    with pytest.raises(ValueError, match="pool_factor"):
        pybert.MultiVectorEncoder(variant("bad", modules, {"pool_factor": 0.5}))
    with pytest.raises(ValueError, match="options .*'kernel'"):
        pybert.MultiVectorEncoder(variant("unknown", modules, {"pool_factor": 2, "kernel": 1}))
