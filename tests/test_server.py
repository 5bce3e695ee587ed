"""pybert serve over real HTTP on 127.0.0.1: every endpoint, hostile clients, concurrent clients,
metrics and graceful shutdown. Each server is a subprocess, always stopped at the end."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import numpy as np
import pytest
import transformers

import pybert
from conftest import bert_config, randomize_, save

ATOL = 1e-6  # server vectors and scores vs the same computation in this process
PYTHONPATH = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")
SENTENCES = ["A man is eating food.", "北京 😀 café", "Someone plays the guitar on stage.",
             "a", "The quick brown fox jumps over the lazy dog near the river bank today."]
LONG = "word " * 2000  # far over max_seq_length: truncated, as SentenceEncoder.encode does


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m pybert serve ...`` on a free loopback port."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=PYTHONPATH)
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pybert", "serve", "--port", str(self.port), "--threads", "2",
             "--log-level", "warning", *args],
            env=env, cwd=os.path.dirname(__file__), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not answer /health within 60 s")
            time.sleep(0.1)

    def output(self) -> str:
        """What the server has logged so far."""
        self.log.seek(0)
        return self.log.read()

    def post(self, path: str, payload=None, **kwargs) -> httpx.Response:
        if payload is not None:
            kwargs["json"] = payload
        return httpx.post(self.url + path, timeout=30, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def encoder(minilm_path):
    return pybert.SentenceEncoder(minilm_path)


@pytest.fixture(scope="module")
def embed_server(minilm_path):
    server = Server("--model", os.fspath(minilm_path), "--max-wait-ms", "20",
                    "--max-inputs", "8", "--max-body-bytes", "65536")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def classifier_dir(minilm_path, tmp_path_factory):
    """A small random sequence classifier that reads MiniLM's vocabulary."""
    cfg = bert_config(vocab_size=30522, max_position_embeddings=128, num_labels=3,
                      id2label={0: "neg", 1: "neu", 2: "pos"},
                      label2id={"neg": 0, "neu": 1, "pos": 2})
    path = tmp_path_factory.mktemp("classifier")
    save(randomize_(transformers.BertForSequenceClassification(cfg), seed=9), path)
    for f in TOKENIZER_FILES:
        shutil.copy(os.path.join(minilm_path, f), path)
    return os.fspath(path)


@pytest.fixture(scope="module")
def classify_server(classifier_dir):
    server = Server("--task", "classify", "--model", classifier_dir, "--max-wait-ms", "20")
    yield server
    assert server.stop() == 0


def vectors(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["index"] for d in data] == list(range(len(data)))
    return np.array([d["embedding"] for d in data], dtype=np.float32)


def assert_close(ours, ref, what="vectors"):
    diff = np.abs(np.asarray(ours) - np.asarray(ref)).max()
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g} > {ATOL}"


def assert_openai_error(r: httpx.Response, status: int, code=None) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}, code a string or
    null."""
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert error["code"] is None or isinstance(error["code"], str), error
    assert error["code"] == code or code is None, error
    return error


def metric(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus text page (0 when absent)."""
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


# ---- embeddings --------------------------------------------------------------------------------

def test_openai_embeddings_match_encode(embed_server, encoder):
    r = embed_server.post("/v1/embeddings", {"input": SENTENCES + [LONG],
                                             "model": "all-MiniLM-L6-v2"})
    body = r.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert all(d["object"] == "embedding" for d in body["data"])
    assert_close(vectors(r), encoder.encode(SENTENCES + [LONG]))
    tokens = encoder.tokenize(SENTENCES + [LONG])["attention_mask"].sum()
    assert body["usage"] == {"prompt_tokens": int(tokens), "total_tokens": int(tokens)}
    # the long input ran truncated to max_seq_length tokens
    assert encoder.tokenize(LONG)["attention_mask"].sum() == encoder.max_seq_length

    one = embed_server.post("/v1/embeddings", {"input": SENTENCES[2]})
    assert_close(vectors(one), encoder.encode([SENTENCES[2]]))

    b64 = embed_server.post("/v1/embeddings", {"input": SENTENCES[:2],
                                               "encoding_format": "base64", "dimensions": 384})
    assert b64.status_code == 200, b64.text
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4")
               for d in b64.json()["data"]]
    assert_close(decoded, encoder.encode(SENTENCES[:2]))


def test_vector_answers_round_trip_float32_and_refuse_nan():
    from pybert import server

    v = np.random.default_rng(0).standard_normal((3, 384)).astype(np.float32) * 1e-3
    body = server.VectorsResponse({"data": list(server.finite_vectors(v[:, ::2]))}).body
    got = np.array(json.loads(body)["data"], dtype=np.float32)
    assert np.array_equal(got, v[:, ::2])  # every value reads back as the same float32
    for bad in (np.nan, np.inf):
        with pytest.raises(RuntimeError, match="non-finite"):
            server.finite_vectors(np.array([[0.5, bad]], dtype=np.float32))


def test_embed_endpoint_and_health(embed_server, encoder):
    r = embed_server.post("/embed", {"inputs": SENTENCES})
    assert r.status_code == 200, r.text
    assert_close(np.array(r.json(), dtype=np.float32), encoder.encode(SENTENCES))
    health = embed_server.get("/health").json()
    assert health["status"] == "ok" and health["task"] == "embed"
    assert health["dimension"] == 384 and health["max_seq_length"] == encoder.max_seq_length


def test_concurrent_clients_get_their_own_results(embed_server, encoder):
    """32 clients at once, each with its own inputs (1 to 4 sentences, some repeated across
    clients, some hostile): every good request gets exactly its rows, in order, and the
    requests were merged into fewer model calls."""
    pool = SENTENCES + [f"sentence number {i} about topic {i % 7}" for i in range(40)]
    requests = [[pool[(7 * c + j) % len(pool)] for j in range(1 + c % 4)] for c in range(32)]
    ref = {t: v for t, v in zip(pool, encoder.encode(pool))}
    before = embed_server.get("/metrics").text

    async def client(http, c):
        path = "/v1/embeddings" if c % 2 else "/embed"
        if c % 8 == 5:  # a hostile client in the crowd
            return await http.post(path, content=b'{"input": [1, 2')
        key = "input" if c % 2 else "inputs"
        return await http.post(path, json={key: requests[c]})

    async def main():
        async with httpx.AsyncClient(base_url=embed_server.url, timeout=30) as http:
            return await asyncio.gather(*(client(http, c) for c in range(32)))

    responses = asyncio.run(main())
    for c, r in enumerate(responses):
        if c % 8 == 5:
            assert r.status_code == 400
            continue
        got = vectors(r) if c % 2 else np.array(r.json(), dtype=np.float32)
        assert_close(got, np.array([ref[t] for t in requests[c]]), f"client {c}")

    after = embed_server.get("/metrics").text
    good = [c for c in range(32) if c % 8 != 5]
    batches = (metric(after, "pybert_batch_requests_count")
               - metric(before, "pybert_batch_requests_count"))
    merged = (metric(after, "pybert_batch_requests_sum")
              - metric(before, "pybert_batch_requests_sum"))
    assert merged == len(good)
    assert batches < len(good), "no two requests were merged into one model call"
    inputs = metric(after, "pybert_inputs_total") - metric(before, "pybert_inputs_total")
    assert inputs == sum(len(requests[c]) for c in good)


def test_batches_mixing_sizes_and_normalization(embed_server, encoder):
    """Requests asking for the model's vectors, unnormalized ones and Matryoshka-cut ones,
    merged into the same model calls: each gets its own."""
    raw = encoder.encode(SENTENCES, normalize=False)
    cut = raw[:, :64] / np.linalg.norm(raw[:, :64], axis=1, keepdims=True)
    asks = [("/embed", {}, encoder.encode(SENTENCES)),
            ("/embed", {"normalize": False}, raw),
            ("/embed", {"dimensions": 64}, cut),
            ("/v1/embeddings", {"dimensions": 64}, cut),
            ("/v1/embeddings", {}, encoder.encode(SENTENCES))]
    before = embed_server.get("/metrics").text

    async def main():
        async with httpx.AsyncClient(base_url=embed_server.url, timeout=30) as http:
            return await asyncio.gather(*(
                http.post(path, json={("input" if path.startswith("/v1") else "inputs"):
                                      SENTENCES, **options})
                for _ in range(4) for path, options, _ in asks))

    for r, (path, options, ref) in zip(asyncio.run(main()), asks * 4):
        got = vectors(r) if path.startswith("/v1") else np.array(r.json(), dtype=np.float32)
        assert_close(got, ref, f"{path} {options}")
    after = embed_server.get("/metrics").text
    calls = (metric(after, "pybert_batch_requests_count")
             - metric(before, "pybert_batch_requests_count"))
    assert calls < 4 * len(asks), "no two requests were merged into one model call"


# ---- hostile clients ---------------------------------------------------------------------------

HOSTILE = {
    # name: (path, body (bytes, or an object sent as JSON), status, part of the error message)
    "malformed_json": ("/v1/embeddings", b'{"input": "x",', 400, "not valid JSON"),
    "not_utf8": ("/embed", b'{"inputs": "\xff\xfe"}', 400, "not valid JSON"),
    "empty_body": ("/embed", b"", 400, "body is empty"),
    "deep_nesting": ("/embed", b"[" * 30000 + b"]" * 30000, 400, "not valid JSON"),
    "not_an_object": ("/embed", ["a", "b"], 400, "must be a JSON object, got array"),
    "missing_field": ("/v1/embeddings", {"inputs": "x"}, 400, "missing field 'input'"),
    "unknown_field": ("/embed", {"inputs": "x", "normalise": True}, 400,
                      "unknown field 'normalise'"),
    "number_input": ("/v1/embeddings", {"input": 42}, 400,
                     "'input' must be a string or an array of strings, got number"),
    "null_input": ("/embed", {"inputs": None}, 400, "got null"),
    "token_ids": ("/v1/embeddings", {"input": [[1, 2, 3]]}, 400,
                  "check_embedding_ctx_length=False"),
    "one_token_array": ("/v1/embeddings", {"input": [1, 2, 3]}, 400, "holds token ids"),
    "mixed_types": ("/embed", {"inputs": ["ok", {"a": 1}]}, 400,
                    "inputs[1] must be a string, got object"),
    "empty_list": ("/v1/embeddings", {"input": []}, 400, "'input' is an empty array"),
    "empty_string": ("/embed", {"inputs": ["ok", ""]}, 400, "inputs[1] is or holds an empty"),
    "too_many_inputs": ("/embed", {"inputs": ["x"] * 9}, 413,
                        "has 9 inputs; one request may send at most 8"),
    "huge_body": ("/v1/embeddings", {"input": "x" * 70000}, 413, "limit is 65536"),
    "bad_encoding": ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 400,
                     "'encoding_format' must be"),
    "bad_dimensions": ("/v1/embeddings", {"input": "x", "dimensions": 385}, 400,
                       "'dimensions' must be an integer from 1 to 384"),
    "bad_model_type": ("/v1/embeddings", {"input": "x", "model": 3}, 400,
                       "'model' must be a string"),
    "wrong_task": ("/classify", {"inputs": "x"}, 404, "needs a model of task classify"),
    "unknown_path": ("/v2/everything", {"input": "x"}, 404, "Not Found"),
    "unknown_model": ("/v1/embeddings", {"input": "x", "model": "text-embedding-3-small"}, 404,
                      "The model `text-embedding-3-small` does not exist"),
    "dimensions_zero": ("/v1/embeddings", {"input": "x", "dimensions": 0}, 400,
                        "'dimensions' must be an integer from 1 to 384, got 0"),
    "dimensions_bool": ("/embed", {"inputs": "x", "dimensions": True}, 400,
                        "'dimensions' must be an integer, got boolean"),
    "normalize_string": ("/embed", {"inputs": "x", "normalize": "yes"}, 400,
                         "'normalize' must be a boolean, got string"),
    "bad_direction": ("/embed", {"inputs": "x", "truncation_direction": "up"}, 400,
                      "'truncation_direction' must be one of 'right', 'left'"),
    "similarity_not_object": ("/similarity", {"inputs": "x"}, 400,
                              "'inputs' must be an object"),
    "similarity_no_sentences": ("/similarity", {"inputs": {"source_sentence": "x"}}, 400,
                                "missing field 'sentences'"),
    "tokenize_token_ids": ("/tokenize", {"inputs": [5, 6]}, 400, "holds token ids"),
    "predict_on_embedder": ("/predict", {"inputs": "x"}, 404, "needs a model of task classify"),
    "rerank_on_embedder": ("/v1/rerank", {"query": "q", "documents": ["d"]}, 404,
                           "needs a model of task rerank"),
    "sparse_on_embedder": ("/embed_sparse", {"inputs": "x"}, 404, "needs a model of task sparse"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_requests_get_json_errors(embed_server, case):
    path, body, status, message = HOSTILE[case]
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = embed_server.post(path, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"], error
    assert_openai_error(r, status)


def test_model_objects(embed_server):
    models = embed_server.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["all-MiniLM-L6-v2"]
    model = embed_server.get("/v1/models/all-MiniLM-L6-v2").json()
    assert model == {**models["data"][0], "object": "model", "owned_by": "pybert"}
    for name in ("gpt-4", "BAAI/bge-small-en-v1.5"):
        error = assert_openai_error(embed_server.get(f"/v1/models/{name}"), 404, "model_not_found")
        assert f"`{name}` does not exist" in error["message"]


def test_wrong_method_and_chunked_huge_body(embed_server, encoder):
    r = embed_server.get("/embed")
    assert r.status_code == 405 and "Method Not Allowed" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"inputs": ["'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"]}'

    r = embed_server.post("/embed", content=chunks())
    assert r.status_code == 413 and "over the limit of 65536" in r.json()["error"]["message"]
    # ... and the server still answers everyone correctly
    assert_close(vectors(embed_server.post("/v1/embeddings", {"input": SENTENCES[:2]})),
                 encoder.encode(SENTENCES[:2]))
    assert embed_server.get("/health").json()["status"] == "ok"


def test_metrics_count_requests_batches_and_time(embed_server):
    before = embed_server.get("/metrics")
    assert before.headers["content-type"].startswith("text/plain")
    embed_server.post("/embed", {"inputs": SENTENCES[:3]})
    embed_server.post("/embed", {"inputs": []})
    after = embed_server.get("/metrics").text
    assert "# TYPE pybert_compute_seconds histogram" in after
    for name, delta in (('pybert_requests_total{endpoint="/embed",status="200"}', 1),
                        ('pybert_requests_total{endpoint="/embed",status="400"}', 1),
                        ("pybert_inputs_total", 3), ("pybert_batch_inputs_count", 1),
                        ("pybert_queue_seconds_count", 1), ("pybert_compute_seconds_count", 1)):
        assert metric(after, name) - metric(before.text, name) == delta, name
    tokens = metric(after, "pybert_tokens_total") - metric(before.text, "pybert_tokens_total")
    assert tokens == metric(after, "pybert_batch_tokens_sum") - metric(before.text,
                                                                        "pybert_batch_tokens_sum")
    assert tokens > 3
    assert metric(after, "pybert_compute_seconds_sum") > 0
    assert metric(after, "pybert_queue_depth") == 0 and metric(after, "pybert_in_flight") == 0


# ---- classification ----------------------------------------------------------------------------

def test_classify_matches_predict(classify_server, classifier_dir):
    model = pybert.BertForSequenceClassification.from_pretrained(classifier_dir)
    texts = ["great movie", "awful plot, fine actors", LONG]
    r = classify_server.post("/classify", {"inputs": texts})
    assert r.status_code == 200, r.text
    ref = model.predict(texts, max_length=128)  # the server truncates at the position table
    got = r.json()
    assert [[p["label"] for p in g] for g in got] == [[p["label"] for p in x] for x in ref]
    assert_close([[p["score"] for p in g] for g in got], [[p["score"] for p in x] for x in ref],
                 "scores")

    pairs = [["what is the capital of France?", "Paris is the capital of France."],
             ["what is the capital of France?", "The cat sat on the mat."]]
    r = classify_server.post("/classify", {"inputs": pairs, "top_k": None})
    ref = model.predict([p[0] for p in pairs], [p[1] for p in pairs], top_k=None)
    assert [[p["label"] for p in g] for g in r.json()] == [[p["label"] for p in x] for x in ref]
    assert_close([[p["score"] for p in g] for g in r.json()],
                 [[p["score"] for p in x] for x in ref], "pair scores")
    assert classify_server.get("/health").json()["labels"] == ["neg", "neu", "pos"]


def test_classify_concurrent_texts_and_pairs(classify_server, classifier_dir):
    """Texts and pairs with different top_k in the same batches: each gets its own."""
    model = pybert.BertForSequenceClassification.from_pretrained(classifier_dir)
    inputs = [[f"text {c}"] if c % 2 else [[f"query {c}", f"passage {c}"]] for c in range(12)]

    async def main():
        async with httpx.AsyncClient(base_url=classify_server.url, timeout=30) as http:
            return await asyncio.gather(*(
                http.post("/classify", json={"inputs": x, "top_k": 1 + c % 3})
                for c, x in enumerate(inputs)))

    for c, r in enumerate(asyncio.run(main())):
        x = inputs[c]
        ref = (model.predict([x[0]], top_k=1 + c % 3) if c % 2 else
               model.predict([x[0][0]], [x[0][1]], top_k=1 + c % 3))
        assert [p["label"] for p in r.json()[0]] == [p["label"] for p in ref[0]], c
        assert_close([p["score"] for p in r.json()[0]], [p["score"] for p in ref[0]], f"{c}")


@pytest.mark.parametrize("payload, message", [
    ({"inputs": "x", "top_k": 4}, "'top_k' must be an integer from 1 to 3"),
    ({"inputs": "x", "top_k": "1"}, "'top_k' must be an integer"),
    ({"inputs": [["a", "b"], "c"]}, "inputs[1] must be a [text, text_pair] array"),
    ({"inputs": [["a", "b", "c"]]}, "inputs[0] must be a [text, text_pair] array"),
    ({"inputs": [["a", ""]]}, "inputs[0] is or holds an empty string"),
])
def test_classify_bad_requests(classify_server, payload, message):
    r = classify_server.post("/classify", payload)
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    r = classify_server.post("/v1/embeddings", {"input": "x"})
    assert r.status_code == 404 and "--task embed" in r.json()["error"]["message"]


# ---- lifecycle ---------------------------------------------------------------------------------

def test_full_queue_and_graceful_shutdown(minilm_path, encoder):
    """Requests past --max-queue get 503; SIGTERM while requests wait in the queue: they are
    answered, then the server exits 0. A long request keeps the model busy meanwhile, so the
    three short ones queue behind it."""
    server = Server("--model", os.fspath(minilm_path), "--max-wait-ms", "1500",
                    "--max-queue", "3")
    results = {}
    try:
        def call(i):
            results[i] = server.post("/v1/embeddings", {"input": SENTENCES[i]})

        # Inputs of max_seq_length tokens: seconds of work on the SIMD kernels; the portable
        # generic ones (PYBERT_ISA=generic, CPUs without AVX2) run a quarter of it as long.
        generic = pybert.cpu_info()["fp32_kernels"] == "generic"
        long_inputs = [" ".join(SENTENCES) * 4] * (64 if generic else 256)
        long_call = threading.Thread(
            target=lambda: results.setdefault("long", server.post("/embed",
                                                                  {"inputs": long_inputs})))
        long_call.start()
        deadline = time.monotonic() + 10
        while "pybert_in_flight 1" not in server.get("/metrics").text:
            assert time.monotonic() < deadline, "the long request never reached the model"
            time.sleep(0.02)
        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while 'pybert_queue_depth 3' not in server.get("/metrics").text:
            assert time.monotonic() < deadline, "requests never reached the queue"
            time.sleep(0.02)
        busy = server.post("/embed", {"inputs": "one too many"})
        assert busy.status_code == 503
        assert "3 requests are waiting" in busy.json()["error"]["message"]
        server.proc.send_signal(signal.SIGTERM)
        for t in threads + [long_call]:
            t.join(timeout=60)
        assert server.proc.wait(timeout=60) == 0
    finally:
        server.stop()
    assert results["long"].status_code == 200 and len(results["long"].json()) == len(long_inputs)
    for i in range(3):
        assert_close(vectors(results[i]), encoder.encode([SENTENCES[i]]), f"request {i}")
    with pytest.raises(httpx.TransportError):
        server.get("/health")


def test_serve_refuses_bad_options(capsys):
    from pybert import cli

    with pytest.raises(SystemExit):
        cli.main(["serve", "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    assert cli.main(["serve", "--task", "classify"]) == 2
    assert "--task classify needs --model" in capsys.readouterr().err
    assert cli.main(["serve", "--max-wait-ms", "-1"]) == 2
    assert "max_wait_ms must be >= 0" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "a=x", "--model", "y"]) == 2
    assert "give each as --model NAME=[TASK:]DIR" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "a=x", "--model", "a=embed:y"]) == 2
    assert "two --model options have the same NAME" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "a=x", "--served-model-name", "b"]) == 2
    assert "no --served-model-name" in capsys.readouterr().err


def test_serve_loads_the_asked_precision(minilm_path):
    from pybert.server import load_task

    assert load_task(minilm_path, "embed", precision="int8").encoder.model.precision == "int8"


# ---- the batcher alone -------------------------------------------------------------------------

def test_batcher_budget_order_and_failure_isolation():
    """Jobs of 4 tokens under a budget of 10 run two per call, in arrival order, each getting
    its own result; a call that raises is rerun job by job, so only the bad job fails."""
    from pybert.server import Batcher, Metrics, ServerConfig

    calls = []

    def run(datas):
        calls.append(list(datas))
        if "bad" in datas:
            raise ValueError("bad input")
        return [d.upper() for d in datas]

    metrics = Metrics()
    batcher = Batcher(run, ServerConfig(max_batch_tokens=10, max_wait_ms=200), metrics)

    async def main():
        batcher.start()
        jobs = [batcher.submit(d, 1, 4) for d in ("a", "b", "c", "bad", "e")]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert results[:3] == ["A", "B", "C"] and results[4] == "E"
    assert isinstance(results[3], RuntimeError)
    assert calls == [["a", "b"], ["c", "bad"], ["c"], ["bad"], ["e"]]
    assert metrics.batch_errors_total == 2 and metrics.inputs_total == 4
    assert metrics.queue_seconds.count == 5


def test_batcher_runs_a_lone_request_at_once_and_still_merges_company():
    """max_wait_ms holds a batch open for company only while requests come together: one
    client's requests, each alone, do not wait for it; two arriving together share a call."""
    from pybert.server import Batcher, Metrics, ServerConfig

    calls = []

    def run(datas):
        calls.append(list(datas))
        return list(datas)

    batcher = Batcher(run, ServerConfig(max_batch_tokens=100, max_wait_ms=400), Metrics())

    async def main():
        batcher.start()
        alone = []
        for d in ("a", "b", "c"):
            start = time.perf_counter()
            await batcher.submit(d, 1, 4)
            alone.append(time.perf_counter() - start)
        together = await asyncio.gather(batcher.submit("d", 1, 4), batcher.submit("e", 1, 4))
        await batcher.close()
        return alone, together

    alone, together = asyncio.run(main())
    assert max(alone) < 0.2, alone  # far below max_wait_ms
    assert together == ["d", "e"]
    assert calls == [["a"], ["b"], ["c"], ["d", "e"]]
