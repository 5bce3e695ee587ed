"""Load test of ``pybert serve``: throughput and latency with dynamic batching on and off.

    python benchmarks/load_server.py --threads 2 --write docs/benchmarks.md

Starts the server twice on 127.0.0.1 (batching on: ``--max-batch-tokens 8192 --max-wait-ms 5``;
off: ``--max-batch-tokens 0 --max-wait-ms 0``, one request per model call), and for 1, 8 and 32
concurrent clients sends single sentences to ``POST /v1/embeddings`` over HTTP/1.1 until
``--requests`` answers or ``--seconds`` have passed, whichever comes first. Prints requests per
second and p50/p99 latency, checks every answer holds one vector of the model's size, and with
``--write`` replaces the "Server" section of that markdown file (between its markers), leaving
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
import threading
import time
import urllib.request
from typing import Dict, List, Optional

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int) -> Dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return json.loads(r.read())


def start_server(mode: str, port: int, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pybert", "serve", "--port", str(port), "--log-level",
           "warning"] + MODES[mode]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
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


def run_clients(port: int, clients: int, requests: int, seconds: float, dim: int
                ) -> Dict[str, float]:
    """``clients`` threads, each with one keep-alive HTTP/1.1 connection sending one sentence
    at a time, until ``requests`` answers in all or ``seconds`` have passed. The client is the
    standard library's http.client: it costs ~0.3 ms of CPU per request here, where httpx's
    AsyncClient costs ~5 ms, CPU the server would otherwise get on a small machine."""
    latencies: List[float] = []
    errors: List[BaseException] = []
    stop_at = time.perf_counter() + seconds

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = c
        try:
            while len(latencies) < requests and time.perf_counter() < stop_at:
                body = json.dumps({"input": f"{SENTENCES[i % len(SENTENCES)]} ({i})"})
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
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"requests": len(latencies), "rps": len(latencies) / elapsed,
            "p50": q[49] * 1000, "p99": q[98] * 1000}


def table(results: Dict[str, Dict[int, Dict[str, float]]], args: argparse.Namespace,
          cpus: Optional[int], load: float) -> List[str]:
    lines = [
        "## Server",
        "",
        "Written by `benchmarks/load_server.py`: `pybert serve` (all-MiniLM-L6-v2 unless "
        "`--model`) on 127.0.0.1, clients in one process (threads with keep-alive `http.client` "
        "connections) on the same machine, "
        "each sending one sentence per `POST /v1/embeddings` and waiting for the answer before "
        "the next. Batching on: `--max-batch-tokens 8192 --max-wait-ms 5`; off: "
        "`--max-batch-tokens 0 --max-wait-ms 0` (one request per model call). Shared machines "
        "are noisy: compare on and off within one run.",
        "",
        f"- Command: `python benchmarks/load_server.py --threads {args.threads} --requests "
        f"{args.requests} --seconds {args.seconds:g} --write docs/benchmarks.md`",
        f"- Machine: {cpus} CPUs visible, load average {load:.1f} at the end of the run (other "
        f"jobs included); server model threads: {args.threads or 'all'}; the clients share the "
        "CPUs with the server.",
        "",
        "| clients | batching | requests | req/s | p50 ms | p99 ms | on / off req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients in args.clients:
        for mode in ("on", "off"):
            r = results[mode][clients]
            ratio = results["on"][clients]["rps"] / results["off"][clients]["rps"]
            lines.append(f"| {clients} | {mode} | {r['requests']} | {r['rps']:.1f} | "
                         f"{r['p50']:.1f} | {r['p99']:.1f} | "
                         f"{f'{ratio:.2f}x' if mode == 'on' else ''} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--threads", type=int, default=None, help="server model threads")
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1, 8, 32], help="concurrency levels (default: 1,8,32)")
    parser.add_argument("--requests", type=int, default=600,
                        help="answers per level at most (default: 600)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="time per level at most (default: 15)")
    parser.add_argument("--write", help="markdown file whose Server section to (re)write")
    args = parser.parse_args()

    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    for mode in ("on", "off"):
        port = free_port()
        proc = start_server(mode, port, args)
        try:
            dim = health(port)["dimension"]
            results[mode] = {}
            run_clients(port, 4, 40, 5.0, dim)  # warm up
            for clients in args.clients:
                r = run_clients(port, clients, args.requests, args.seconds, dim)
                results[mode][clients] = r
                print(f"batching {mode:>3}  {clients:3d} clients  {r['requests']:5d} requests  "
                      f"{r['rps']:8.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    lines = table(results, args, os.cpu_count(), os.getloadavg()[0])
    print("\n".join(lines))
    if args.write:
        write_section(args.write, BEGIN, END, "\n".join(lines))
        print(f"wrote the Server section of {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
