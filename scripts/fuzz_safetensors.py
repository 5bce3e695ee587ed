"""Seeded mutation fuzzer for pybert's safetensors loader.

Writes small but complete BERT checkpoints (fp32, fp16 under a ``bert.`` prefix, bf16), then
loads thousands of mutated copies with ``BertModel.from_pretrained`` and runs one call on each.
Every case must either work or raise ValueError; anything else is a failure, and a worker
process that dies (segfault, abort, sanitizer report) is a crash. Workers are child processes,
so a crash is seen, reported with its case number, and the run goes on.

    python scripts/fuzz_safetensors.py --cases 10000 --seed 0
    python scripts/fuzz_safetensors.py --seed 0 --replay 1234 --out /tmp/case   # rewrite one case

Case i of seed s is a pure function of (s, i): a crash is reproduced by --replay.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

CONFIG = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=16, max_position_embeddings=16, type_vocab_size=2,
              hidden_act="gelu", layer_norm_eps=1e-12, model_type="bert")

DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "Q4", "",
          "f32", 5, None, ["F32"]]


def bert_tensors(prefix: str = "") -> Dict[str, np.ndarray]:
    """Random weights of the CONFIG model, by Hugging Face name."""
    rng = np.random.default_rng(0)
    h, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (CONFIG["vocab_size"], h),
        "embeddings.position_embeddings.weight": (CONFIG["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (CONFIG["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,),
    }
    layer = "encoder.layer.0."
    for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense"):
        shapes[layer + part + ".weight"], shapes[layer + part + ".bias"] = (h, h), (h,)
    shapes[layer + "intermediate.dense.weight"] = (inner, h)
    shapes[layer + "intermediate.dense.bias"] = (inner,)
    shapes[layer + "output.dense.weight"] = (h, inner)
    shapes[layer + "output.dense.bias"] = (h,)
    for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
        shapes[layer + norm + ".weight"], shapes[layer + norm + ".bias"] = (h,), (h,)
    return {prefix + k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in shapes.items()}


def safetensors_bytes(tensors: Dict[str, np.ndarray], dtype: str) -> bytes:
    """A safetensors file: u64 header length, JSON header padded to 8 bytes, then the data."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, values in tensors.items():
        if dtype == "F16":
            raw = values.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = (values.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = values.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(values.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def seed_files() -> List[bytes]:
    return [safetensors_bytes(bert_tensors(), "F32"),
            safetensors_bytes(bert_tensors("bert."), "F16"),
            safetensors_bytes(bert_tensors(), "BF16")]


# --- mutations: each takes (rng, file bytes) and returns new bytes ---------------------------

def _split(data: bytes) -> Tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join(header, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def _tensor_names(header: dict) -> List[str]:
    return [k for k in header if k != "__metadata__"]


def _big_int(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, 7, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
                       2**64, 10**30, rng.randrange(0, 5000)])


def flip_bits(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def flip_header_bytes(rng, data):
    n = min(len(data), 8 + struct.unpack("<Q", data[:8])[0]) if len(data) >= 8 else len(data)
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if n:
            b[rng.randrange(n)] = rng.randrange(256)
    return bytes(b)


def truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def header_length(rng, data):
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 0
    value = rng.choice([n + rng.randint(-16, 16), len(data), len(data) - 7, 2**64 - 1, 2**63,
                        100 * 2**20 + 1, 0, rng.randrange(2**64)])
    return struct.pack("<Q", max(0, min(value, 2**64 - 1))) + data[8:]


def splice_header(rng, data):
    n = struct.unpack("<Q", data[:8])[0]
    text = bytearray(data[8:8 + n])
    i = rng.randrange(len(text) + 1)
    if rng.random() < 0.5:
        del text[i:i + rng.randint(1, 8)]
    else:
        text[i:i] = bytes(rng.choice(b'{}[]",:0123456789-e.nultrfa ') for _ in range(rng.randint(1, 8)))
    return struct.pack("<Q", len(text)) + bytes(text) + data[8 + n:]


def append_garbage(rng, data):
    return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))


def _structured(fn):
    def mutate(rng, data):
        try:
            header, body = _split(data)
        except (ValueError, UnicodeDecodeError, RecursionError, struct.error):
            return flip_bits(rng, data)
        if not isinstance(header, dict) or not _tensor_names(header):
            return flip_bits(rng, data)
        return fn(rng, header, body)
    mutate.__name__ = fn.__name__
    return mutate


@_structured
def set_dtype(rng, header, body):
    entry = header[rng.choice(_tensor_names(header))]
    if isinstance(entry, dict):
        entry["dtype"] = rng.choice(DTYPES)
    return _join(header, body)


@_structured
def set_shape(rng, header, body):
    entry = header[rng.choice(_tensor_names(header))]
    if isinstance(entry, dict):
        shape = list(entry.get("shape") or [])
        how = rng.randrange(5)
        if how == 0 and shape:
            shape[rng.randrange(len(shape))] = _big_int(rng)
        elif how == 1:
            shape.append(rng.choice([1, 0, 2**32, 2**40]))
        elif how == 2 and shape:
            shape.pop()
        elif how == 3:
            shape = [2**32, 2**32, 2**32][: rng.randint(1, 3)]  # product overflows 64 bits
        else:
            shape = rng.choice([None, "8", [1.5], [True], {}, [[2]], [-3, -3]])
        entry["shape"] = shape
    return _join(header, body)


@_structured
def set_offsets(rng, header, body):
    names = _tensor_names(header)
    entry, other = header[rng.choice(names)], header[rng.choice(names)]
    if isinstance(entry, dict):
        offsets = list(entry.get("data_offsets") or [0, 0])
        how = rng.randrange(6)
        if how == 0 and len(offsets) == 2:
            offsets[rng.randrange(2)] = _big_int(rng)
        elif how == 1 and len(offsets) == 2:
            offsets = offsets[::-1]
        elif how == 2 and isinstance(other, dict):  # overlap another tensor
            offsets = list(other.get("data_offsets") or offsets)
        elif how == 3 and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            shift = rng.randint(-64, 64)
            offsets = [offsets[0] + shift, offsets[1] + shift]
        elif how == 4:
            offsets = offsets + [0]
        else:
            offsets = rng.choice([None, [0], ["0", "4"], [0.0, 4.0], [len(body), len(body) + 4]])
        entry["data_offsets"] = offsets
    return _join(header, body)


@_structured
def edit_entries(rng, header, body):
    names = _tensor_names(header)
    name = rng.choice(names)
    how = rng.randrange(5)
    if how == 0:
        del header[name]
    elif how == 1:
        header[name + ".extra"] = header[name]
    elif how == 2:
        header[name] = rng.choice([None, 1, "x", [], {"dtype": "F32"}])
    elif how == 3:
        header["__metadata__"] = rng.choice([None, [1], {"a": {"b": 1}}, "x"])
    else:
        header = rng.choice([[], 1, "str", None, {"__metadata__": {}}])
    return _join(header, body)


def nested_json(rng, data):
    depth = rng.choice([100, 10_000, 200_000])
    text = (b"[" * depth + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"1"
                                                                       + b"}" * depth)
    return struct.pack("<Q", len(text)) + text + data[8 + struct.unpack("<Q", data[:8])[0]:]


MUTATIONS = [flip_bits, flip_header_bytes, truncate, header_length, splice_header, append_garbage,
             set_dtype, set_shape, set_offsets, edit_entries, nested_json]


def mutated(seeds: List[bytes], seed: int, case: int) -> bytes:
    rng = random.Random(seed * 1_000_003 + case)
    data = rng.choice(seeds)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if len(data) < 8:
            break
        data = rng.choice(MUTATIONS)(rng, data)
    return data


# --- running cases ----------------------------------------------------------------------------

def write_case(directory: str, data: bytes) -> None:
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(CONFIG, f)
    with open(os.path.join(directory, "model.safetensors"), "wb") as f:
        f.write(data)


def run_worker(seed: int, start: int, stop: int) -> None:
    """Runs cases [start, stop), one line per case on stdout: '<case> <outcome>'."""
    import pybert

    seeds = seed_files()
    ids = np.array([[1, 5, 7, 0], [3, 19, 0, 0]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    with tempfile.TemporaryDirectory() as directory:
        for case in range(start, stop):
            print(f"{case} start", flush=True)
            write_case(directory, mutated(seeds, seed, case))
            try:
                with pybert.BertModel.from_pretrained(directory) as model:
                    model(ids, attention_mask=mask)
                outcome = "ok"
            except ValueError:
                outcome = "value_error"
            except Exception as e:  # anything but ValueError is a finding
                outcome = f"error:{type(e).__name__}:{str(e)[:200]!r}"
            print(f"{case} {outcome}", flush=True)


def fuzz(seed: int, cases: int, jobs: int) -> dict:
    """Runs every case in worker processes; a dead worker is a crash, restarted after it."""
    counts = {"ok": 0, "value_error": 0}
    errors, crashes = [], []
    bounds = [cases * j // jobs for j in range(jobs + 1)]
    pending = [(bounds[j], bounds[j + 1]) for j in range(jobs) if bounds[j] < bounds[j + 1]]
    running = []

    def launch(start: int, stop: int) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(seed),
               "--start", str(start), "--stop", str(stop)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        running.append((proc, start, stop))

    for rng_ in pending:
        launch(*rng_)
    while running:
        proc, start, stop = running.pop(0)
        out, err = proc.communicate()
        last_started, done = None, set()
        for line in out.splitlines():
            case, outcome = line.split(" ", 1)
            if outcome == "start":
                last_started = int(case)
                continue
            done.add(int(case))
            if outcome in counts:
                counts[outcome] += 1
            else:
                errors.append((int(case), outcome))
        if proc.returncode != 0:
            crashed = last_started if last_started is not None and last_started not in done \
                else start
            crashes.append({"case": crashed, "returncode": proc.returncode,
                            "stderr": err[-2000:]})
            if crashed + 1 < stop:
                launch(crashed + 1, stop)
    return {"seed": seed, "cases": cases, **counts, "errors": len(errors),
            "crashes": len(crashes), "first_errors": sorted(errors)[:20],
            "first_crashes": sorted(crashes, key=lambda c: c["case"])[:5]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(4, len(os.sched_getaffinity(0))))
    parser.add_argument("--replay", type=int, default=None, help="write this case to --out")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        run_worker(args.seed, args.start, args.stop)
        return 0
    if args.replay is not None:
        os.makedirs(args.out, exist_ok=True)
        write_case(args.out, mutated(seed_files(), args.seed, args.replay))
        print(f"case {args.replay} of seed {args.seed} written to {args.out}")
        return 0
    t0 = time.perf_counter()
    result = fuzz(args.seed, args.cases, args.jobs)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))
    return 1 if result["errors"] or result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
