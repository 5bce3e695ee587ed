"""pybert serve as a drop-in server for the clients people use: the official ``openai`` client,
LangChain's ``OpenAIEmbeddings``, LlamaIndex's ``OpenAIEmbedding``, ``huggingface_hub``'s
``InferenceClient`` (TEI), and the rerank APIs of Jina, Cohere and TEI; plus model names, the
API key, CORS and the OpenAPI description. Small random models that read MiniLM's vocabulary;
each server is a subprocess on a free 127.0.0.1 port, one per module fixture."""

from __future__ import annotations

import os
import shutil
import warnings

import httpx
import numpy as np
import pytest
import transformers

import pybert
from conftest import bert_config, randomize_, save
from test_server import TOKENIZER_FILES, Server, assert_close, assert_openai_error, metric

KEY = "sk-test-0123456789"
ORIGIN = "http://front.example"
DOCS = ["Paris is the capital of France.", "The cat sat on the mat.",
        "France's capital city is Paris, on the Seine.", "Bananas are yellow.",
        "北京 😀 café", "a"]
QUERY = "What is the capital of France?"


def random_bert_dir(minilm_path, path, cls=transformers.BertModel, seed=0, **config) -> str:
    """A small random BERT (or head) with MiniLM's tokenizer, saved by transformers."""
    model = cls(bert_config(vocab_size=30522, max_position_embeddings=128, **config))
    save(randomize_(model, seed=seed), path)
    for f in TOKENIZER_FILES:
        shutil.copy(os.path.join(minilm_path, f), path)
    return os.fspath(path)


@pytest.fixture(scope="module")
def embed_dir(minilm_path, tmp_path_factory):
    """A sentence-transformers model (mean pooling that leaves the prompt out, Normalize,
    max_seq_length 48, a "query" prompt), saved by sentence-transformers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import (Normalize, Pooling,
                                                                        Transformer)
    root = tmp_path_factory.mktemp("embed")
    body = Transformer(random_bert_dir(minilm_path, root / "hf", seed=3), max_seq_length=48)
    model = SentenceTransformer(modules=[body, Pooling(32, "mean", include_prompt=False),
                                         Normalize()],
                                prompts={"query": "query: "})
    model.save(os.fspath(root / "st"))
    return os.fspath(root / "st")


@pytest.fixture(scope="module")
def classifier_dir(minilm_path, tmp_path_factory):
    return random_bert_dir(minilm_path, tmp_path_factory.mktemp("sentiment"),
                           transformers.BertForSequenceClassification, seed=4, num_labels=3,
                           id2label={0: "neg", 1: "neu", 2: "pos"},
                           label2id={"neg": 0, "neu": 1, "pos": 2})


@pytest.fixture(scope="module")
def ranker_dir(minilm_path, tmp_path_factory):
    """A cross-encoder (a sequence classifier with one label), saved by sentence-transformers'
    CrossEncoder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import CrossEncoder
    root = tmp_path_factory.mktemp("ranker")
    CrossEncoder(random_bert_dir(minilm_path, root / "hf",
                                 transformers.BertForSequenceClassification, seed=5,
                                 num_labels=1), device="cpu").save(os.fspath(root / "ce"))
    return os.fspath(root / "ce")


@pytest.fixture(scope="module")
def server(embed_dir, classifier_dir):
    """Two models, an API key and a CORS origin."""
    s = Server("--model", f"mini=embed:{embed_dir}", "--model", f"sentiment={classifier_dir}",
               "--api-key", KEY, "--cors-allow-origin", ORIGIN, "--max-wait-ms", "2")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def encoder(embed_dir):
    return pybert.SentenceEncoder(embed_dir)


def authed(server, method, path, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEY}", **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


# ---- OpenAI: the official client, LangChain, LlamaIndex ----------------------------------------

def test_openai_client(server, encoder):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    # The client asks for base64 and decodes it (numpy installed): both encodings get checked.
    got = client.embeddings.create(model="mini", input=DOCS)
    assert got.model == "mini" and [d.index for d in got.data] == list(range(len(DOCS)))
    assert_close([d.embedding for d in got.data], encoder.encode(DOCS))
    tokens = int(encoder.tokenize(DOCS)["attention_mask"].sum())
    assert got.usage.prompt_tokens == got.usage.total_tokens == tokens
    floats = client.embeddings.create(model="mini", input=DOCS[0], encoding_format="float")
    assert_close([floats.data[0].embedding], encoder.encode([DOCS[0]]))

    # dimensions: the first values, re-normalized (OpenAI answers unit vectors)
    short = client.embeddings.create(model="mini", input=DOCS, dimensions=8)
    ref = encoder.encode(DOCS, normalize=False)[:, :8]
    assert_close([d.embedding for d in short.data],
                 ref / np.linalg.norm(ref, axis=1, keepdims=True))

    assert [m.id for m in client.models.list()] == ["mini", "sentiment"]
    assert client.models.retrieve("sentiment").owned_by == "pybert"
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert e.value.code == "model_not_found" and e.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("text-embedding-3-small")
    with pytest.raises(openai.BadRequestError, match="needs a model of task embed"):
        client.embeddings.create(model="sentiment", input="x")
    with pytest.raises(openai.BadRequestError, match="check_embedding_ctx_length=False"):
        client.embeddings.create(model="mini", input=[[101, 7592, 102]])

    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        wrong.embeddings.create(model="mini", input="x")
    assert e.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_langchain_1000_documents_in_one_request(server, encoder):
    from langchain_openai import OpenAIEmbeddings

    docs = [f"document {i}: {DOCS[i % len(DOCS)]}" for i in range(1000)]
    requests = 'pybert_requests_total{endpoint="/v1/embeddings",status="200"}'
    before = metric(authed(server, "GET", "/metrics").text, requests)
    # check_embedding_ctx_length=False: send text; by default LangChain sends tiktoken's ids
    embeddings = OpenAIEmbeddings(model="mini", base_url=server.url + "/v1", api_key=KEY,
                                  check_embedding_ctx_length=False, max_retries=0)
    got = embeddings.embed_documents(docs)
    assert len(got) == 1000
    assert_close(got, encoder.encode(docs))
    # the 1,000 documents went in one request (LangChain's chunk_size, under --max-inputs)
    assert metric(authed(server, "GET", "/metrics").text, requests) - before == 1
    assert_close([embeddings.embed_query(QUERY)], encoder.encode([QUERY]))


def test_llamaindex(server, encoder):
    from llama_index.embeddings.openai import OpenAIEmbedding

    model = OpenAIEmbedding(model_name="mini", api_base=server.url + "/v1", api_key=KEY,
                            max_retries=0)
    assert_close(model.get_text_embedding_batch(DOCS), encoder.encode(DOCS))
    assert_close([model.get_query_embedding(QUERY)], encoder.encode([QUERY]))


# ---- TEI: huggingface_hub's InferenceClient and the routes ----------------------------------

def test_huggingface_hub_inference_client(server, encoder):
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=server.url, api_key=KEY)
    assert_close(client.feature_extraction(DOCS), encoder.encode(DOCS))
    assert_close(client.feature_extraction(DOCS[0], normalize=False),
                 encoder.encode([DOCS[0]], normalize=False))
    unit = encoder.encode(DOCS)
    assert_close(client.sentence_similarity(DOCS[0], other_sentences=DOCS[1:]),
                 unit[1:] @ unit[0], "similarities")


@pytest.fixture(scope="module")
def reference(embed_dir):
    """sentence-transformers' own model of the directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SentenceTransformer
    return SentenceTransformer(embed_dir, device="cpu")


def test_tei_embed_prompt_name(server, reference):
    r = authed(server, "POST", "/embed", json={"inputs": [QUERY, DOCS[1]],
                                               "prompt_name": "query"})
    assert r.status_code == 200, r.text
    assert_close(r.json(), reference.encode([QUERY, DOCS[1]], prompt_name="query"))
    error = assert_openai_error(authed(server, "POST", "/embed",
                                       json={"inputs": "x", "prompt_name": "passage"}), 400)
    assert "'passage' is not one of the model's prompts" in error["message"]


def test_tei_embed_truncation(server, reference):
    long = "words upon words " * 40  # over max_seq_length (48)
    r = authed(server, "POST", "/embed", json={"inputs": [long, DOCS[0]],
                                               "truncation_direction": "left"})
    assert r.status_code == 200, r.text
    reference.tokenizer.truncation_side = "left"
    assert_close(r.json(), reference.encode([long, DOCS[0]]))
    reference.tokenizer.truncation_side = "right"

    r = authed(server, "POST", "/embed", json={"inputs": [DOCS[0], long], "truncate": False})
    error = assert_openai_error(r, 413)
    assert "inputs[1] has more than 48 tokens" in error["message"]
    assert_openai_error(authed(server, "POST", "/embed",
                               json={"inputs": "x", "truncation_direction": "up"}), 400)


def test_tei_tokenize_info_and_predict(server, classifier_dir):
    tok = transformers.AutoTokenizer.from_pretrained(classifier_dir)
    text = "Héllo wörld, tokenizers!"
    r = authed(server, "POST", "/tokenize", json={"inputs": [text]})
    assert r.status_code == 200, r.text
    ref = tok(text, return_offsets_mapping=True)
    tokens = r.json()[0]
    assert [t["id"] for t in tokens] == ref["input_ids"]
    specials = set(tok.all_special_ids)
    for t, (start, stop) in zip(tokens, ref["offset_mapping"]):
        assert t["special"] == (t["id"] in specials)
        if not t["special"]:
            assert (t["start"], t["stop"], t["text"]) == (start, stop, text[start:stop])
    plain = authed(server, "POST", "/tokenize", json={"inputs": text,
                                                      "add_special_tokens": False}).json()
    assert [t["id"] for t in plain[0]] == tok(text, add_special_tokens=False)["input_ids"]

    info = authed(server, "GET", "/info").json()
    assert info["model_id"] == "mini" and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["max_input_length"] == 48 and info["max_client_batch_size"] == 2048

    model = pybert.BertForSequenceClassification.from_pretrained(classifier_dir)
    pair = ["what is the capital of France?", "Paris."]
    r = authed(server, "POST", "/predict", json={"inputs": [[DOCS[0]], pair],
                                                 "model": "sentiment"})
    assert r.status_code == 200, r.text
    refs = [model.predict([DOCS[0]], top_k=None)[0], model.predict([pair[0]], [pair[1]],
                                                                   top_k=None)[0]]
    for got, ref in zip(r.json(), refs):
        assert [p["label"] for p in got] == [p["label"] for p in ref]
        assert_close([p["score"] for p in got], [p["score"] for p in ref], "scores")
    one = authed(server, "POST", "/predict", json={"inputs": DOCS[0], "model": "sentiment"})
    assert [p["label"] for p in one.json()] == [p["label"] for p in refs[0]]


@pytest.fixture(scope="module")
def classify_server(classifier_dir):
    """The classifier alone (TEI's POST / is the first model's task), with a small token
    budget per request and the API key from the environment."""
    os.environ["PYBERT_API_KEY"] = KEY
    try:
        s = Server("--model", classifier_dir, "--max-request-tokens", "40")
    finally:
        del os.environ["PYBERT_API_KEY"]
    yield s
    assert s.stop() == 0


def test_inference_client_text_classification_and_token_budget(classify_server,
                                                                 classifier_dir):
    from huggingface_hub import InferenceClient

    model = pybert.BertForSequenceClassification.from_pretrained(classifier_dir)
    client = InferenceClient(base_url=classify_server.url, api_key=KEY)
    got = client.text_classification(DOCS[2], top_k=2)
    ref = model.predict([DOCS[2]], top_k=2)[0]
    assert [g.label for g in got] == [p["label"] for p in ref]
    assert_close([g.score for g in got], [p["score"] for p in ref], "scores")
    name = os.path.basename(classifier_dir)
    assert authed(classify_server, "GET", "/v1/models").json()["data"][0]["id"] == name
    assert_openai_error(classify_server.post("/predict", {"inputs": "x"}), 401,
                        "invalid_api_key")  # the key came from $PYBERT_API_KEY
    r = authed(classify_server, "POST", "/predict", json={"inputs": [[d] for d in DOCS * 3]})
    assert "one request may hold at most 40 (--max-request-tokens)" in \
        assert_openai_error(r, 413)["message"]


# ---- rerank: Jina, Cohere and TEI shapes ----------------------------------------------------

@pytest.fixture(scope="module")
def rerank_server(ranker_dir):
    s = Server("--model", f"ranker={ranker_dir}")
    yield s
    assert s.stop() == 0


def test_rerank_in_three_shapes_equals_cross_encoder_rank(rerank_server, ranker_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import CrossEncoder as Reference
    ours = pybert.CrossEncoder(ranker_dir).rank(QUERY, DOCS, return_documents=True)
    ref = Reference(ranker_dir, device="cpu").rank(QUERY, DOCS, return_documents=True)
    assert [r["corpus_id"] for r in ours] == [r["corpus_id"] for r in ref]
    assert_close([r["score"] for r in ours], [r["score"] for r in ref], "scores")
    order = [r["corpus_id"] for r in ours]
    scores = [r["score"] for r in ours]

    jina = rerank_server.post("/v1/rerank", {"model": "ranker", "query": QUERY,
                                             "documents": DOCS, "top_n": 3})
    assert jina.status_code == 200, jina.text
    body = jina.json()
    assert body["model"] == "ranker" and body["usage"]["total_tokens"] > 0
    assert [r["index"] for r in body["results"]] == order[:3]
    assert [r["document"]["text"] for r in body["results"]] == [DOCS[i] for i in order[:3]]
    assert_close([r["relevance_score"] for r in body["results"]], scores[:3], "jina")

    cohere = rerank_server.post("/v2/rerank", {"model": "ranker", "query": QUERY,
                                               "documents": [{"text": d} for d in DOCS]})
    assert cohere.status_code == 200, cohere.text
    body = cohere.json()
    assert body["meta"]["api_version"]["version"] == "2" and body["id"]
    assert [r["index"] for r in body["results"]] == order
    assert all("document" not in r for r in body["results"])
    assert_close([r["relevance_score"] for r in body["results"]], scores, "cohere")

    pairs = [(QUERY, d) for d in DOCS]
    logits = Reference(ranker_dir, device="cpu").predict(pairs, activation_fn=lambda x: x)
    raw = rerank_server.post("/rerank", {"query": QUERY, "texts": DOCS, "raw_scores": True})
    assert raw.status_code == 200, raw.text
    assert [r["index"] for r in raw.json()] == order  # a monotone activation keeps the order
    assert_close([r["score"] for r in raw.json()], np.asarray(logits)[order], "raw scores")

    for path in ("/rerank", "/"):  # TEI: POST / runs the model's task
        tei = rerank_server.post(path, {"query": QUERY, "texts": DOCS, "return_text": True})
        assert tei.status_code == 200, tei.text
        assert [r["index"] for r in tei.json()] == order
        assert [r["text"] for r in tei.json()] == [DOCS[i] for i in order]
        assert_close([r["score"] for r in tei.json()], scores, "tei")

    assert_openai_error(rerank_server.post("/v1/rerank", {"model": "rerank-v3.5",
                                                          "query": QUERY, "documents": DOCS}),
                        404, "model_not_found")
    assert_openai_error(rerank_server.post("/v2/rerank", {"query": QUERY, "documents": []}), 400)


# ---- the API key, CORS, OpenAPI ----------------------------------------------------------------

def test_api_key_cors_and_openapi(server):
    assert httpx.get(server.url + "/health").status_code == 200  # open
    for headers in ({}, {"Authorization": "Bearer sk-test-012345678X"},
                    {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        r = httpx.post(server.url + "/embed", json={"inputs": "x"}, headers=headers)
        assert_openai_error(r, 401, "invalid_api_key")
    assert_openai_error(httpx.get(server.url + "/openapi.json"), 401, "invalid_api_key")

    preflight = httpx.options(server.url + "/v1/embeddings", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    r = authed(server, "POST", "/embed", json={"inputs": "x"}, headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(server.url + "/v1/embeddings", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers

    spec = authed(server, "GET", "/openapi.json").json()
    from pybert.server.routes import ENDPOINTS

    routes = [(e.path.replace(":path}", "}"), e.method, e.request is not None)
              for e in ENDPOINTS] + [("/openapi.json", "GET", False), ("/docs", "GET", False)]
    assert len(spec["paths"]) == len({path for path, _, _ in routes})
    for path, method, has_body in routes:
        operation = spec["paths"][path][method.lower()]
        assert operation["summary"] and "200" in operation["responses"]
        assert ("requestBody" in operation) == has_body, path
    docs = authed(server, "GET", "/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


# ---- sparse: TEI's /embed_sparse -------------------------------------------------------------

@pytest.fixture(scope="module")
def splade_dir(minilm_path, tmp_path_factory):
    """A SPLADE model (a random masked LM + SpladePooling), saved by sentence-transformers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SparseEncoder
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    root = tmp_path_factory.mktemp("splade")
    mlm = random_bert_dir(minilm_path, root / "hf", transformers.BertForMaskedLM, seed=6)
    SparseEncoder(modules=[MLMTransformer(mlm, max_seq_length=48), SpladePooling("max")]) \
        .save(os.fspath(root / "st"))
    return os.fspath(root / "st")


def test_embed_sparse_equals_sparse_encoder(splade_dir):
    ref = pybert.SparseEncoder(splade_dir).encode(DOCS)
    server = Server("--model", f"splade={splade_dir}")
    try:
        for path in ("/embed_sparse", "/"):
            r = server.post(path, {"inputs": DOCS})
            assert r.status_code == 200, r.text
            for i, row in enumerate(r.json()):
                indices, values = ref.row(i)
                assert [v["index"] for v in row] == indices.tolist()
                assert_close([v["value"] for v in row], values, f"{path} row {i}")
        assert_openai_error(server.post("/embed", {"inputs": "x"}), 404)
        assert server.get("/info").json()["model_type"] == {"embedding": {"pooling": "splade"}}
    finally:
        assert server.stop() == 0
