"""SparseEncoder (SPLADE) and MultiVectorEncoder against sentence-transformers 6 on checkpoints
that sentence-transformers itself builds and saves here from random-weight transformers models,
the pooled decoder GEMM against torch, and maxsim against a numpy reference."""

from __future__ import annotations

import json
import os
import string

import numpy as np
import pytest
import torch
import transformers
from sentence_transformers import MultiVectorEncoder, SparseEncoder
from sentence_transformers.base.modules import Dense, Normalize, Transformer
from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
from sentence_transformers.sparse_encoder.modules import SpladePooling

import pybert
from pybert import _core
from conftest import VARIED_TEXTS, bert_config, randomize_, run_python

ATOL = 1e-5  # max abs difference against sentence-transformers (fp32 both)
ACTIVE = 1e-6  # entries above this are the "active" dimensions, which must be identical

# Two sizes: (hidden, layers, heads, intermediate, max_seq_length).
SIZES = {"small": (32, 2, 4, 64, 48), "larger": (64, 3, 4, 128, 96)}


def hf_dir(tmp_path_factory, minilm_path, name, cls, size, seed):
    """A random-weight transformers model with MiniLM's tokenizer (its 30522-token vocabulary)."""
    hidden, layers, heads, inter, _ = SIZES[size]
    config = bert_config(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=inter,
                         max_position_embeddings=512)
    path = str(tmp_path_factory.mktemp(name))
    randomize_(cls(config), seed=seed).save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return path


# ---- SPLADE -------------------------------------------------------------------------------------

SPLADE_VARIANTS = {  # name: (size, pooling_strategy, activation_function, prompts)
    "max_relu": ("small", "max", "relu", None),
    "sum_log1p_relu": ("larger", "sum", "log1p_relu", {"query": "query: ", "document": "doc: "}),
}


@pytest.fixture(scope="module", params=sorted(SPLADE_VARIANTS))
def splade(request, tmp_path_factory, minilm_path):
    size, strategy, activation, prompts = SPLADE_VARIANTS[request.param]
    base = hf_dir(tmp_path_factory, minilm_path, "mlm", transformers.BertForMaskedLM, size, 1)
    st = SparseEncoder(modules=[Transformer(base, transformer_task="fill-mask",
                                            max_seq_length=SIZES[size][4]),
                                SpladePooling(pooling_strategy=strategy,
                                              activation_function=activation)],
                       prompts=prompts, device="cpu")
    path = str(tmp_path_factory.mktemp("splade"))
    st.save(path)
    torch.set_num_threads(2)
    return SparseEncoder(path, device="cpu"), pybert.SparseEncoder(path), path


def st_dense(st, method, texts, **kwargs):
    return getattr(st, method)(texts, convert_to_sparse_tensor=False, **kwargs).numpy()


def assert_sparse_equal(ours, ref):
    dense = ours.toarray()
    assert dense.dtype == np.float32 and dense.shape == ref.shape
    # Sum pooling adds up to max_seq_length fp32 terms (values reach ~10 here), each rounding in
    # both engines: beyond 1 the bound is 1e-5 of the value; max pooling stays within 1e-5.
    diff = (np.abs(dense - ref) / np.maximum(1.0, np.abs(ref))).max()
    assert diff <= ATOL, f"max abs diff (relative beyond 1) {diff:.3g} > {ATOL}"
    assert np.array_equal(dense > ACTIVE, ref > ACTIVE)
    assert ours.indices.dtype == np.int32 and ours.data.dtype == np.float32
    assert np.all(ours.data != 0)


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_splade_matches_sentence_transformers(splade, method):
    st, ours, _ = splade
    ref = st_dense(st, method, VARIED_TEXTS, batch_size=5)
    assert ref.max() > 0.5  # real activations, not all near zero
    for batch_size in (1, 32):
        assert_sparse_equal(getattr(ours, method)(VARIED_TEXTS, batch_size=batch_size), ref)


def test_splade_csr_and_scipy(splade):
    st, ours, _ = splade
    emb = ours.encode(VARIED_TEXTS[:4])
    assert emb.shape == (4, 30522) and emb.indptr.shape == (5,) and emb.nnz == emb.indptr[-1]
    for r in range(4):
        idx, _ = emb.row(r)
        assert np.all(np.diff(idx) > 0)  # ascending columns
    assert np.array_equal(emb.to_scipy().toarray(), emb.toarray())
    one = ours.encode("Hello world!")
    assert one.shape == (30522,) and one.toarray().shape == (30522,)
    assert np.array_equal(one.toarray(), emb.toarray()[0])


@pytest.mark.parametrize("k", [1, 7, 64])
def test_max_active_dims_and_decode_match(splade, k):
    st, ours, path = splade
    ref = st_dense(st, "encode", VARIED_TEXTS, max_active_dims=k)
    emb = ours.encode(VARIED_TEXTS, max_active_dims=k)
    assert_sparse_equal(emb, ref)
    assert np.all(np.diff(emb.indptr) <= k)
    for top_k in (None, 3):
        ours_words = ours.decode(emb, top_k=top_k)
        ref_words = st.decode(torch.from_numpy(ref), top_k=top_k)
        assert [[w for w, _ in row] for row in ours_words] == \
            [[w for w, _ in row] for row in ref_words]
        assert all(abs(a - b) <= ATOL * max(1.0, abs(b)) for row, rrow in zip(ours_words, ref_words)
                   for (_, a), (_, b) in zip(row, rrow))
    assert ours.decode(ours.encode("Hello world!"), top_k=2) == ours.decode(emb, top_k=2)[0] \
        or k < 2
    # Saved in the model's config, it is the default.
    cfg_file = os.path.join(path, "config_sentence_transformers.json")
    with open(cfg_file) as f:
        cfg = json.load(f)
    assert pybert.SparseEncoder(path, max_active_dims=k).max_active_dims == k
    assert "max_active_dims" not in cfg or cfg["max_active_dims"] is None


def test_intersection_matches(splade):
    st, ours, _ = splade
    query = ours.encode_query("quick brown fox jumps")
    docs = ours.encode_document(VARIED_TEXTS[:6])
    ref_q = torch.from_numpy(query.toarray())
    ref_docs = torch.from_numpy(docs.toarray())
    for got, want in ((ours.intersection(query, docs), st.intersection(ref_q, ref_docs)),
                      (ours.intersection(query, docs.toarray()[2]),
                       st.intersection(ref_q, ref_docs[2]))):
        want = want.to_dense().numpy()
        assert got.shape == want.shape
        assert np.array_equal(got.toarray(), want)  # the same float32 products, bit for bit
        assert got.nnz == int((want > 0).sum())
    shared = ours.intersection(query, docs)
    assert [[w for w, _ in row] for row in ours.decode(shared, top_k=3)] == \
        [[w for w, _ in row] for row in st.decode(st.intersection(ref_q, ref_docs), top_k=3)]
    # A vector with itself keeps every active dimension, squared.
    self_shared = pybert.SparseEncoder.intersection(query, query)
    assert np.array_equal(self_shared.indices, query.indices)
    assert np.array_equal(self_shared.data, query.data * query.data)
    with pytest.raises(ValueError, match="1-D"):
        ours.intersection(docs, query)
    with pytest.raises(ValueError, match="Vocab dimension mismatch"):
        ours.intersection(query, np.ones(5, np.float32))


def test_plain_masked_lm_directory_is_max_splade(tmp_path_factory, minilm_path):
    path = hf_dir(tmp_path_factory, minilm_path, "plain_mlm", transformers.BertForMaskedLM,
                  "small", 4)
    ref = SparseEncoder(path, device="cpu").encode(VARIED_TEXTS[:5], convert_to_sparse_tensor=False)
    assert_sparse_equal(pybert.SparseEncoder(path).encode(VARIED_TEXTS[:5]), ref.numpy())


def test_splade_empty_and_bad_input(splade):
    _, ours, _ = splade
    empty = ours.encode([])
    assert empty.shape == (0, 30522) and empty.nnz == 0 and empty.toarray().shape == (0, 30522)
    assert ours.decode(empty) == []
    with pytest.raises(ValueError, match="max_active_dims"):
        ours.encode(["a"], max_active_dims=0)
    with pytest.raises(ValueError, match="top_k"):
        ours.decode(empty, top_k=0)
    with pytest.raises(TypeError):
        ours.encode([1, 2])
    with pytest.raises(ValueError, match="prompt_name"):
        ours.encode(["a"], prompt_name="nope")


def test_splade_unsupported_modules(splade, tmp_path):
    _, _, path = splade
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)
    bad = str(tmp_path / "bad")
    os.makedirs(bad)
    for name in os.listdir(path):
        os.symlink(os.path.join(path, name), os.path.join(bad, name))
    os.remove(os.path.join(bad, "modules.json"))
    with open(os.path.join(bad, "modules.json"), "w") as f:
        json.dump(modules + [{"idx": 2, "name": "2", "path": "2_WordEmbeddings",
                              "type": "sentence_transformers.sentence_transformer.modules."
                                      "WordEmbeddings"}], f)
    with pytest.raises(ValueError, match=r"WordEmbeddings.*not supported.*supported: "
                                         r"Transformer, MLMTransformer, SpladePooling, Router, "
                                         r"SparseStaticEmbedding, Pooling, Dense, LayerNorm, "
                                         r"Normalize, SparseAutoEncoder"):
        pybert.SparseEncoder(bad)
    # Modules it knows, in an order it does not run, are refused too.
    with open(os.path.join(bad, "modules.json"), "w") as f:
        json.dump(modules + [{"idx": 2, "name": "2", "path": "", "type": "sentence_transformers."
                              "sentence_transformer.modules.Normalize"}], f)
    with pytest.raises(ValueError, match=r"got \['Transformer', 'SpladePooling', 'Normalize'\]"):
        pybert.SparseEncoder(bad)
    with pytest.raises(ValueError, match="BertForMaskedLM"):
        pybert.SparseEncoder(_plain_bert_splade(tmp_path, modules, path))


def _plain_bert_splade(tmp_path, modules, path):
    """The SPLADE directory with a config.json that names a BertModel."""
    other = str(tmp_path / "plain")
    os.makedirs(other)
    for name in os.listdir(path):
        if name != "config.json":
            os.symlink(os.path.join(path, name), os.path.join(other, name))
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["architectures"] = ["BertModel"]
    with open(os.path.join(other, "config.json"), "w") as f:
        json.dump(config, f)
    return other


# The pooled decoder GEMM itself, at shapes the models above do not reach: depth over the
# AVX-512 kernel's block (800 > 768), a single row, a tail of columns.
@pytest.mark.parametrize("depth", [32, 800])
@pytest.mark.parametrize("pool", ["max", "sum"])
@pytest.mark.parametrize("activation", ["log1p_relu", "log1p_log1p_relu"])
def test_pooled_linear_matches_torch(depth, pool, activation):
    rng = np.random.default_rng(depth)
    for n, out, segments in ((1, 1, 1), (9, 3001, 3), (37, 100, 5)):
        x = rng.standard_normal((n, depth), dtype=np.float32)
        w = (rng.standard_normal((out, depth)) / np.sqrt(depth)).astype(np.float32)
        b = rng.standard_normal(out, dtype=np.float32)
        segment = np.sort(rng.integers(0, segments - 1 if segments > 1 else 1, n)).astype(np.int32)
        ours = _core.ops.linear_pooled(x, w, b, segment, segments, activation=activation,
                                       pool=pool)
        act = torch.log1p(torch.relu(torch.nn.functional.linear(
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))))
        if activation == "log1p_log1p_relu":
            act = torch.log1p(act)
        ref = torch.zeros(segments, out)
        for s in range(segments):
            rows = act[torch.from_numpy(segment == s)]
            if len(rows):
                ref[s] = rows.amax(0) if pool == "max" else rows.sum(0)
        assert np.abs(ours - ref.numpy()).max() <= ATOL


def test_log1p_activation_is_accurate():
    x = np.concatenate([np.linspace(-1, 60, 20001, dtype=np.float32),
                        np.float32(10.0) ** np.arange(-30, 3, dtype=np.float32)])
    ours = _core.ops.linear_pooled(x[:, None].copy(), np.ones((1, 1), np.float32), None,
                                   np.arange(x.size, dtype=np.int32), x.size, pool="sum")[:, 0]
    ref = np.log1p(np.maximum(x.astype(np.float64), 0))
    assert np.all(np.abs(ours - ref) <= 2.5e-7 * np.maximum(ref, 1e-30))


FALLBACK_SPLADE = """
import os, sys, numpy as np, torch, pybert
from sentence_transformers import SparseEncoder
from conftest import VARIED_TEXTS
torch.set_num_threads(2)
assert pybert.cpu_info()["fp32_kernels"] == os.environ["PYBERT_ISA"]
ref = SparseEncoder(sys.argv[1], device="cpu").encode(VARIED_TEXTS, convert_to_sparse_tensor=False)
ours = pybert.SparseEncoder(sys.argv[1]).encode(VARIED_TEXTS).toarray()
ref = ref.numpy()
print((np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))).max(),
      int(((ours > 1e-6) != (ref > 1e-6)).sum()))
"""


# The fp32 families PYBERT_ISA forces on a wider CPU (each GEMM implements the pooled epilogue).
SPLADE_FALLBACKS = [c for c in _core.cpu_features()["isa_caps"] if c in ("avx2", "neon", "generic")]


@pytest.mark.parametrize("cap", SPLADE_FALLBACKS)
@pytest.mark.parametrize("splade", ["sum_log1p_relu"], indirect=True)  # one: a child process
def test_splade_on_fallback_kernels(splade, cap, tmp_path):
    _, _, path = splade
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    done = run_python(["-c", FALLBACK_SPLADE, path], cwd=tests_dir,
                      env=dict(os.environ, PYBERT_ISA=cap))
    assert done.returncode == 0, done.stderr
    diff, mismatched = done.stdout.split()[-2:]
    assert float(diff) <= ATOL and int(mismatched) == 0


@pytest.mark.parametrize("fn", ["dot", "cosine", "euclidean", "manhattan"])
def test_splade_similarity_and_sparsity_match(splade, fn):
    st, ours, _ = splade
    q, d = VARIED_TEXTS[:4], VARIED_TEXTS[4:10]
    q_ref, d_ref = st.encode_query(q), st.encode_document(d)
    st.similarity_fn_name = fn
    ours.similarity_fn_name = fn
    try:
        ref = st.similarity(q_ref, d_ref).to_dense().numpy()
        pairs = st.similarity_pairwise(q_ref, st.encode_document(d[:4])).to_dense().numpy()
    finally:
        st.similarity_fn_name = "dot"
    q_ours, d_ours = ours.encode_query(q), ours.encode_document(d)
    got = ours.similarity(q_ours, d_ours)
    assert got.shape == (4, 6) and got.dtype == np.float32
    assert (np.abs(got - ref) / np.maximum(1.0, np.abs(ref))).max() <= 1e-4
    got_pairs = ours.similarity_pairwise(q_ours, d_ours.toarray()[:4])  # dense rows work too
    assert (np.abs(got_pairs - pairs) / np.maximum(1.0, np.abs(pairs))).max() <= 1e-4
    ours.similarity_fn_name = "dot"
    ref_sparsity = st.sparsity(d_ref)
    got_sparsity = ours.sparsity(d_ours)
    assert got_sparsity["active_dims"] == pytest.approx(ref_sparsity["active_dims"])
    assert got_sparsity["sparsity_ratio"] == pytest.approx(ref_sparsity["sparsity_ratio"])


def test_splade_similarity_bad_input(splade):
    _, ours, _ = splade
    with pytest.raises(ValueError, match="similarity_fn_name 'hamming' is not supported"):
        ours.similarity_fn_name = "hamming"
    emb = ours.encode(VARIED_TEXTS[:2])
    with pytest.raises(ValueError, match="columns"):
        ours.similarity(emb, np.zeros((1, 5), np.float32))
    bad = pybert.SparseEmbeddings(np.array([0, 2]), np.array([5, 3], np.int32),
                                  np.ones(2, np.float32), (1, emb.shape[1]))
    with pytest.raises(ValueError, match="strictly ascending"):
        ours.similarity(bad, emb)
    with pytest.raises(ValueError, match="one to one"):
        ours.similarity_pairwise(emb, ours.encode(VARIED_TEXTS[:3]))


def test_splade_max_seq_length_can_be_set(splade):
    st, ours, path = splade
    enc = pybert.SparseEncoder(path)
    enc.max_seq_length = 6
    old = st.max_seq_length
    st.max_seq_length = 6
    try:
        ref = st_dense(st, "encode", VARIED_TEXTS[:6])
    finally:
        st.max_seq_length = old
    assert_sparse_equal(enc.encode(VARIED_TEXTS[:6]), ref)
    with pytest.raises(ValueError, match="max_seq_length"):
        enc.max_seq_length = 0


# ---- multi-vector -------------------------------------------------------------------------------

MV_VARIANTS = {
    # ColBERT-like: query/document lengths, [MASK] expansion to 16 (attended), punctuation
    # skiplist on documents, [unused] markers as prompts, Dense without bias.
    "colbert": dict(size="small", transformer=dict(query_length=16, document_length=40,
                                                    query_expansion={"strategy": "fixed",
                                                                     "attend": True,
                                                                     "length": 16}),
                    dense=dict(out_features=24, bias=False, activation=torch.nn.Identity()),
                    mask=dict(skiplist_words=list(string.punctuation)),
                    prompts={"query": "[unused0] ", "document": "[unused1] "}),
    # Classic ColBERT expansion: [MASK]s that attend to the query, unattended (attend=False).
    "colbert_unattended": dict(size="small",
                               transformer=dict(query_length=16, document_length=40,
                                                query_expansion={"strategy": "fixed",
                                                                 "attend": False, "length": 16}),
                               dense=dict(out_features=24, bias=False,
                                          activation=torch.nn.Identity()),
                               mask=dict(skiplist_words=list(string.punctuation)),
                               prompts={"query": "[unused0] ", "document": "[unused1] "}),
    # Dense with bias and tanh, skiplist on both sides, "min" expansion, no prompts.
    "tanh_min": dict(size="larger", transformer=dict(query_length=24,
                                                      query_expansion={"strategy": "min",
                                                                       "attend": False,
                                                                       "length": 12}),
                     dense=dict(out_features=40, bias=True, activation=torch.nn.Tanh()),
                     mask=dict(skiplist_words=[",", ".", "!"],
                               skiplist_tasks=["query", "document"]),
                     prompts=None),
}


def build_multivector(tmp_path_factory, minilm_path, variant):
    spec = MV_VARIANTS[variant]
    size = spec["size"]
    base = hf_dir(tmp_path_factory, minilm_path, "base", transformers.BertModel, size, 2)
    dense = spec["dense"]
    st = MultiVectorEncoder(
        modules=[Transformer(base, max_seq_length=SIZES[size][4], **spec["transformer"]),
                 Dense(SIZES[size][0], dense["out_features"], bias=dense["bias"],
                       activation_function=dense["activation"],
                       module_input_name="token_embeddings"),
                 MultiVectorMask(**spec["mask"]), Normalize(module_input_name="token_embeddings")],
        prompts=spec["prompts"], device="cpu")
    randomize_(st[1], seed=3, std=0.3)
    path = str(tmp_path_factory.mktemp("mv"))
    st.save(path)
    return path


@pytest.fixture(scope="module", params=sorted(MV_VARIANTS))
def multivector(request, tmp_path_factory, minilm_path):
    path = build_multivector(tmp_path_factory, minilm_path, request.param)
    torch.set_num_threads(2)
    return MultiVectorEncoder(path, device="cpu"), pybert.MultiVectorEncoder(path), path


@pytest.mark.parametrize("method", ["encode", "encode_query", "encode_document"])
def test_multivector_matches_sentence_transformers(multivector, method):
    st, ours, _ = multivector
    ref = getattr(st, method)(VARIED_TEXTS, convert_to_numpy=True, batch_size=5)
    for batch_size in (1, 32):
        got = getattr(ours, method)(VARIED_TEXTS, batch_size=batch_size)
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            assert a.dtype == np.float32 and a.shape == b.shape
            if a.size:
                assert np.abs(a - b).max() <= ATOL
    one = getattr(ours, method)(VARIED_TEXTS[1])
    assert isinstance(one, np.ndarray) and np.array_equal(one, got[1])


def test_multivector_queries_in_chunks(multivector):
    # More query tokens than the encoder runs at once (_core.encoder_chunk_tokens) go through
    # it in chunks of whole queries, the query-only expansion tokens (attend=False) with their
    # query: each query's vectors must be those of the query alone, to the bit.
    _, ours, _ = multivector
    cap = pybert._core.encoder_chunk_tokens(pybert._core.get_num_threads())
    texts = (VARIED_TEXTS * (cap // len(VARIED_TEXTS)))[:cap // 4]
    batch = ours.encode_query(texts, batch_size=len(texts))
    assert sum(len(v) for v in batch) > cap  # vectors: at most one a token
    alone = ours.encode_query(VARIED_TEXTS, batch_size=1)
    for i, vectors in enumerate(batch):
        np.testing.assert_array_equal(vectors, alone[i % len(VARIED_TEXTS)])


def test_multivector_empty_and_errors(multivector, tmp_path):
    st, ours, path = multivector
    assert ours.encode([]) == [] and ours.encode_query([]) == []
    with pytest.raises(ValueError, match="task"):
        ours.encode(["a"], task="passage")
    # An expansion the encoder does not know is refused by name.
    bad = str(tmp_path / "expansion")
    os.makedirs(bad)
    for name in os.listdir(path):
        if name != "sentence_bert_config.json":
            os.symlink(os.path.join(path, name), os.path.join(bad, name))
    with open(os.path.join(path, "sentence_bert_config.json")) as f:
        cfg = json.load(f)
    cfg["query_expansion"] = {"strategy": "longest", "attend": False, "length": 8}
    with open(os.path.join(bad, "sentence_bert_config.json"), "w") as f:
        json.dump(cfg, f)
    with pytest.raises(ValueError, match="query_expansion.*not supported"):
        pybert.MultiVectorEncoder(bad)
    # A module the encoder does not know is named with what is supported.
    other = str(tmp_path / "modules")
    os.makedirs(other)
    for name in os.listdir(path):
        if name != "modules.json":
            os.symlink(os.path.join(path, name), os.path.join(other, name))
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)
    modules.append({"idx": 9, "name": "9", "path": "9_Pool",
                    "type": "my_package.MyTokenPooling"})
    with open(os.path.join(other, "modules.json"), "w") as f:
        json.dump(modules, f)
    with pytest.raises(ValueError, match=r"MyTokenPooling.*supported: Transformer, "
                                         r"Dense, MultiVectorMask, Normalize, HierarchicalTokenPooling"):
        pybert.MultiVectorEncoder(other)


def test_multivector_scores_rank_as_sentence_transformers(multivector):
    st, ours, _ = multivector
    docs = VARIED_TEXTS[:6]
    q_ref = st.encode_query(["quick brown fox"], convert_to_numpy=True)
    d_ref = st.encode_document(docs, convert_to_numpy=True)
    ref = st.similarity([torch.from_numpy(q) for q in q_ref],
                        [torch.from_numpy(d) for d in d_ref]).numpy()[0]
    scores = pybert.maxsim(ours.encode_query("quick brown fox"), ours.encode_document(docs))
    assert scores.shape == (6,) and np.abs(scores - ref).max() <= 1e-4


@pytest.mark.parametrize("multivector", ["colbert", "tanh_min"], indirect=True)
def test_multivector_truncate_dim_and_normalize_embeddings(multivector):
    st, ours, path = multivector
    texts = VARIED_TEXTS[:6]
    for kwargs in ({"truncate_dim": 8}, {"normalize_embeddings": True},
                   {"truncate_dim": 8, "normalize_embeddings": True}, {"truncate_dim": 1000}):
        ref = st.encode_document(texts, convert_to_numpy=True, **kwargs)
        got = ours.encode_document(texts, **kwargs)
        for a, b in zip(got, ref):
            assert a.shape == b.shape
            if a.size:
                assert np.abs(a - b).max() <= ATOL
    small = pybert.MultiVectorEncoder(path, truncate_dim=8)
    assert small.get_embedding_dimension() == 8
    ref = st.encode_query(texts, convert_to_numpy=True, truncate_dim=8)
    for a, b in zip(small.encode_query(texts), ref):
        assert a.shape == b.shape and np.abs(a - b).max() <= ATOL
    with pytest.raises(ValueError, match="truncate_dim"):
        ours.encode(texts, truncate_dim=0)


@pytest.mark.parametrize("multivector", ["colbert"], indirect=True)
@pytest.mark.parametrize("fn", ["maxsim", "meanmaxsim"])
def test_multivector_similarity_matches(multivector, fn):
    st, ours, path = multivector
    q, d = VARIED_TEXTS[:3], VARIED_TEXTS[3:8]
    old = st.similarity_fn_name
    st.similarity_fn_name = fn
    try:
        q_ref = st.encode_query(q, convert_to_numpy=True)
        d_ref = st.encode_document(d, convert_to_numpy=True)
        ref = st.similarity(q_ref, d_ref).numpy()
        pairs = st.similarity_pairwise(q_ref, d_ref[:3]).numpy()
    finally:
        st.similarity_fn_name = old
    enc = pybert.MultiVectorEncoder(path, similarity_fn_name=fn)
    q_ours, d_ours = enc.encode_query(q), enc.encode_document(d)
    got = enc.similarity(q_ours, d_ours)
    assert got.shape == (3, 5) and np.abs(got - ref).max() <= 1e-4
    assert np.abs(enc.similarity_pairwise(q_ours, d_ours[:3]) - pairs).max() <= 1e-4
    assert np.array_equal(enc.similarity(q_ours[0], d_ours), got[:1])
    with pytest.raises(ValueError, match="similarity_fn_name"):
        enc.similarity_fn_name = "cosine"
    with pytest.raises(ValueError, match="one to one"):
        enc.similarity_pairwise(q_ours, d_ours)


# ---- maxsim -------------------------------------------------------------------------------------

def test_maxsim_matches_reference():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((7, 16), dtype=np.float32)
    docs = [rng.standard_normal((n, 16), dtype=np.float32) for n in (1, 5, 33, 0, 120)]
    ref = [float((q.astype(np.float64) @ d.T.astype(np.float64)).max(axis=1).sum())
           if len(d) else -1e9 for d in docs]
    for threads in (1, 2):
        scores = pybert.maxsim(q, docs, num_threads=threads)
        assert scores.dtype == np.float32 and scores.shape == (5,)
        assert np.allclose(scores, ref, rtol=1e-5, atol=1e-4)
    assert pybert.maxsim(q, []).shape == (0,)
    assert np.array_equal(pybert.maxsim(np.zeros((0, 16), np.float32), docs[:2]), [0, 0])
    with pytest.raises(ValueError, match="documents\\[1\\]"):
        pybert.maxsim(q, [docs[0], np.zeros((3, 8), np.float32)])
    with pytest.raises(ValueError, match="query must be 2-D"):
        pybert.maxsim(q[0], docs)
    with pytest.raises(TypeError, match="sequence"):
        pybert.maxsim(q, docs[1])


# ---- command line -------------------------------------------------------------------------------

CLI_TEXTS = ["Hello world!", "", "北京 😀 café, again."]


def test_cli_embed_sparse(splade, tmp_path, capsys):
    from pybert import cli
    import scipy.sparse

    st, _, path = splade
    src = tmp_path / "in.txt"
    src.write_text("\n".join(CLI_TEXTS) + "\n", encoding="utf-8")
    ref = st_dense(st, "encode_query", CLI_TEXTS)
    assert cli.main(["embed", "--sparse", "--model", path, "--task", "query",
                     "--output", str(tmp_path / "s.npz"), str(src)]) == 0
    got = scipy.sparse.load_npz(tmp_path / "s.npz").toarray()
    assert got.shape == ref.shape
    assert (np.abs(got - ref) / np.maximum(1.0, np.abs(ref))).max() <= ATOL
    assert cli.main(["embed", "--sparse", "--model", path, "--task", "query", str(src)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == CLI_TEXTS
    for r, ref_row in zip(rows, ref):
        dense = np.zeros(ref.shape[1], np.float32)
        dense[[int(i) for i in r["embedding"]]] = list(r["embedding"].values())
        assert (np.abs(dense - ref_row) / np.maximum(1.0, np.abs(ref_row))).max() <= ATOL


def test_cli_embed_multi_vector(multivector, tmp_path, capsys):
    from pybert import cli

    st, _, path = multivector
    src = tmp_path / "in.txt"
    src.write_text("\n".join(CLI_TEXTS) + "\n", encoding="utf-8")
    ref = st.encode_document(CLI_TEXTS, convert_to_numpy=True)
    assert cli.main(["embed", "--multi-vector", "--model", path, "--task", "document",
                     "--output", str(tmp_path / "m.npz"), str(src)]) == 0
    saved = np.load(tmp_path / "m.npz")
    offsets, vectors = saved["offsets"], saved["vectors"]
    assert len(offsets) == len(CLI_TEXTS) + 1
    for i, r in enumerate(ref):
        assert np.abs(vectors[offsets[i]:offsets[i + 1]] - r).max() <= ATOL
    assert cli.main(["embed", "--multi-vector", "--model", path, "--task", "document",
                     str(src)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row, r in zip(rows, ref):
        assert np.abs(np.array(row["embedding"], np.float32).reshape(r.shape) - r).max() <= ATOL
    # --pool-factor: sentence-transformers' HierarchicalTokenPooling on the documents.
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    ref = st.encode_document(CLI_TEXTS, convert_to_numpy=True,
                             token_pooling=HierarchicalTokenPooling(pool_factor=2))
    assert cli.main(["embed", "--multi-vector", "--model", path, "--task", "document",
                     "--pool-factor", "2", "--output", str(tmp_path / "p.npz"), str(src)]) == 0
    saved = np.load(tmp_path / "p.npz")
    offsets, vectors = saved["offsets"], saved["vectors"]
    for i, r in enumerate(ref):
        got = vectors[offsets[i]:offsets[i + 1]]
        assert got.shape == r.shape and np.abs(got - r).max() <= ATOL


@pytest.mark.parametrize("argv,message", [
    (["embed", "--sparse"], "--sparse needs --model"),
    (["embed", "--multi-vector", "--model", "M", "--pooling", "cls"], "do not apply"),
    (["embed", "--sparse", "--model", "M", "--output", "x.npy"], ".npz or .jsonl"),
    (["embed", "--task", "query"], "--task applies to --sparse and --multi-vector"),
    (["embed", "--sparse", "--model", "M", "--pool-factor", "2"], "--multi-vector only"),
    (["embed", "--multi-vector", "--model", "M", "--pool-factor", "0.5"], "pool_factor must be"),
])
def test_cli_retrieval_errors(capsys, argv, message):
    from pybert import cli

    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("splade", ["max_relu"], indirect=True)
@pytest.mark.parametrize("multivector", ["colbert"], indirect=True)
def test_encoders_pickle_as_recipes_and_close(splade, multivector):
    import pickle

    for _, ours, _ in (splade, multivector):
        clone = pickle.loads(pickle.dumps(ours))
        assert type(clone) is type(ours) and clone.path == ours.path
    sparse, vectors = splade[1], multivector[1]
    assert np.array_equal(pickle.loads(pickle.dumps(sparse)).encode(["a b c"]).toarray(),
                          sparse.encode(["a b c"]).toarray())
    with pybert.SparseEncoder(splade[2], max_length=8) as short:
        assert short.max_seq_length == 8
        assert np.diff(short.encode(["word " * 50]).indptr)[0] > 0
    with pytest.raises(ValueError, match="closed"):
        short.encode(["a"])
    assert pybert.MultiVectorEncoder(multivector[2], max_length=6).encode("word " * 50).shape[0] <= 6
    assert vectors.get_embedding_dimension() == vectors.encode("a").shape[1]
