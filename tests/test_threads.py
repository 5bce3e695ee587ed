"""pybert's threads: every compute entry point runs with exactly its num_threads threads from the
process's compute slots, concurrent calls never take more than usable_cpus() and give the
results of the same call made alone; workers sleep once a call is done (unless the user's
wait policy says otherwise) and are woken once per call, not once per parallel step; a forked
child computes with threads of its own."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import transformers

import pybert
from pybert import _core
from conftest import bert_config, child_env, randomize_, save

USABLE = _core.usable_cpus()
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = bert_config(hidden_size=64, intermediate_size=256, num_attention_heads=4,
                      max_position_embeddings=256, num_labels=3)
    path = tmp_path_factory.mktemp("threads")
    randomize_(transformers.BertForSequenceClassification(cfg)).save_pretrained(path)
    return os.fspath(path)


def entry_points(saved):
    """name -> fn(num_threads) -> arrays, one per compute entry point of the core."""
    model = pybert.BertModel.from_pretrained(saved)
    clf = pybert.BertForSequenceClassification.from_pretrained(saved)
    ids = RNG.integers(0, 120, size=(8, 200))
    mask = (np.arange(200)[None, :] < RNG.integers(1, 201, size=(8, 1))).astype(np.int64)
    hidden = RNG.standard_normal((8, 200, 64)).astype(np.float32)
    x = RNG.standard_normal((512, 64)).astype(np.float32)
    w, b = RNG.standard_normal((96, 64)).astype(np.float32), RNG.standard_normal(96).astype(np.float32)
    head_w = RNG.standard_normal((3, 64)).astype(np.float32)
    qkv = RNG.standard_normal((300, 3 * 64)).astype(np.float32)
    offsets = np.array([0, 100, 250, 300])
    scores = RNG.standard_normal((64, 4000)).astype(np.float32)

    def with_threads(obj, n):
        obj.num_threads = n
        return obj

    return {
        "BertModel.forward": lambda n: with_threads(model, n)(ids, mask).last_hidden_state,
        "BertModel.embeddings": lambda n: with_threads(model, n).embeddings(ids),
        "BertModel.encoder": lambda n: with_threads(model, n).encoder(hidden, mask),
        "BertForSequenceClassification": lambda n: with_threads(clf, n)(ids, mask).logits,
        "LinearHead.forward": lambda n: pybert.LinearHead(head_w, num_threads=n).softmax(hidden),
        "LinearHead.predict": lambda n: pybert.LinearHead(head_w, num_threads=n).predict(hidden),
        "pool": lambda n: pybert.pool(hidden, mask, ["mean", "max"], num_threads=n),
        "top_k": lambda n: _core.top_k(scores, 5, num_threads=n)[1],
        "ops.linear": lambda n: _core.ops.linear(x, w, b, activation="gelu", num_threads=n),
        "ops.activation": lambda n: _core.ops.activation(x, "gelu", num_threads=n),
        "ops.layer_norm": lambda n: _core.ops.layer_norm(x, x[0], x[1], 1e-12, num_threads=n),
        "ops.softmax": lambda n: _core.ops.softmax(x, scale=0.5, num_threads=n),
        "ops.self_attention": lambda n: _core.ops.self_attention(qkv, offsets, 4, num_threads=n),
    }


@pytest.fixture(scope="module")
def entries(saved):
    return entry_points(saved)


NAMES = [
    "BertModel.forward", "BertModel.embeddings", "BertModel.encoder",
    "BertForSequenceClassification", "LinearHead.forward", "LinearHead.predict", "pool", "top_k",
    "ops.linear", "ops.activation", "ops.layer_norm", "ops.softmax", "ops.self_attention"]


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_point_takes_exactly_its_threads(entries, name):
    for n in sorted({1, USABLE}):
        _core.peak_compute_slots(reset=True)
        entries[name](n)
        assert _core.peak_compute_slots() == n, (
            f"{name} with num_threads={n} held {_core.peak_compute_slots()} compute slots")
    assert _core.compute_slots_in_use() == 0
    assert _core.pool_workers() <= USABLE - 1


@pytest.mark.parametrize("name", NAMES)
def test_the_same_call_gives_the_same_bits_wherever_its_output_lies(entries, name):
    # Arrays of odd sizes kept alive between the calls move where the next output is allocated;
    # a reduction whose order followed the output's alignment would change its last bits.
    first = entries[name](1)
    keep = [np.empty(n, np.uint8) for n in (3, 1000, 70001, 3 << 20 | 5)]
    for n in sorted({1, USABLE}):
        for _ in range(3):
            keep.append(np.empty(int(RNG.integers(1, 5000)), np.uint8))
            np.testing.assert_array_equal(entries[name](n), first, err_msg=f"{name}, {n}")


def test_concurrent_calls_stay_within_the_cpus_and_match_calls_alone(entries):
    alone = {(name, n): entries[name](n) for name in NAMES for n in sorted({1, USABLE})}
    jobs = list(alone) * 3
    results, errors = {}, []

    def caller(k: int) -> None:
        try:
            for i in range(k, len(jobs), 4):
                name, n = jobs[i]
                results[i] = entries[name](n)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    _core.peak_compute_slots(reset=True)
    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert 1 <= _core.peak_compute_slots() <= USABLE
    for i, key in enumerate(jobs):
        np.testing.assert_array_equal(results[i], alone[key], err_msg=f"{key}")


def test_a_refused_call_holds_no_slots_and_the_next_one_runs(entries):
    with pytest.raises(ValueError):
        _core.ops.self_attention(np.zeros((10, 192), np.float32), np.array([0, 10]), 5,
                                 num_threads=USABLE)
    assert _core.compute_slots_in_use() == 0
    entries["BertModel.forward"](USABLE)


# ---- workers sleep between calls, once per call ---------------------------------------------

CHILD = r"""
import glob, json, os, sys, threading, time
import numpy as np
import pybert

def switches(tid):
    mine = others = 0
    for path in glob.glob("/proc/self/task/*/status"):
        with open(path) as f:
            n = next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
        if path.split("/")[-2] == str(tid):
            mine = n
        else:
            others += n
    return mine, others

model = pybert.BertModel.from_pretrained(sys.argv[1], num_threads=2)
ids = np.random.default_rng(0).integers(1, 120, size=(4, 128))
for _ in range(3):
    model(ids)
tid = threading.get_native_id()
calls = 60
gap, busy = float(sys.argv[2]), sys.argv[3] == "busy"  # between calls: sleep or busy-wait
if busy:  # the caller never sleeps: every thread's switches count, read outside the loop
    before = sum(switches(tid))
    for _ in range(calls):
        end = time.perf_counter() + gap
        while time.perf_counter() < end:
            pass
        model(ids)
    per_call = (sum(switches(tid)) - before) / calls
else:  # the caller's own sleeps between calls do not count
    caller, others0 = 0, switches(tid)[1]
    for _ in range(calls):
        time.sleep(gap)
        before = switches(tid)[0]
        model(ids)
        caller += switches(tid)[0] - before
    per_call = (caller + switches(tid)[1] - others0) / calls
cpu0 = sum(os.times()[:2])
time.sleep(0.5)
print(json.dumps({"switches_per_call": per_call, "idle_cpu_s": sum(os.times()[:2]) - cpu0}))
"""


def run_child(saved, gap_s=0.002, busy=False, **env_extra) -> dict:
    env = {k: v for k, v in child_env().items()
           if k not in ("OMP_WAIT_POLICY", "PYBERT_WAIT_POLICY", "PYBERT_SPIN_US")}
    env.update(env_extra)
    # From the model's folder: `python -c` puts the working directory first on sys.path, and the
    # repository's own pybert/ (no built core in a CI checkout) must not shadow the one tested.
    argv = [sys.executable, "-c", CHILD, saved, str(gap_s), "busy" if busy else "sleep"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True,
                         cwd=saved).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(USABLE < 2, reason="needs 2 usable CPUs: a 1-thread call has no workers")
def test_workers_sleep_once_per_call_and_not_while_idle(saved):
    default = run_child(saved)
    # The old runtime (an OpenMP region per step) slept and woke ~10 times in such a call.
    assert default["switches_per_call"] <= 1.2, default
    assert default["idle_cpu_s"] < 0.025, default  # 0.5 s idle: at most 5% of one CPU


@pytest.mark.skipif(USABLE < 2, reason="needs 2 usable CPUs: a 1-thread call has no workers")
def test_back_to_back_calls_keep_the_workers_awake(saved):
    # A caller's Python between two calls (building the output, the loop, checking the next
    # inputs) takes ~50 us and often more; the grace after a call must outlast it, or every call
    # of a serving loop pays a wake-up (on this VM up to ~1.5 ms on a 1.8 ms call).
    loop = run_child(saved, gap_s=0.00015, busy=True)
    assert loop["switches_per_call"] <= 0.3, loop


@pytest.mark.skipif(USABLE < 2, reason="needs 2 usable CPUs: a 1-thread call has no workers")
def test_the_users_wait_policy_wins(saved):
    active = run_child(saved, OMP_WAIT_POLICY="ACTIVE")
    assert active["idle_cpu_s"] > 0.1, active  # an idle worker spinning (on a busy host too)
    assert active["switches_per_call"] <= 0.2, active
    spin = run_child(saved, PYBERT_WAIT_POLICY="active")
    assert spin["idle_cpu_s"] > 0.1, spin


def _forward_in_child(path, ids, queue):
    queue.put(pybert.BertModel.from_pretrained(path, num_threads=2)(ids).last_hidden_state)


def test_a_forked_child_computes_with_its_own_threads(saved, entries):
    ids = RNG.integers(0, 120, size=(4, 64))
    want = pybert.BertModel.from_pretrained(saved, num_threads=2)(ids).last_hidden_state
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_forward_in_child, args=(saved, ids, queue))
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    np.testing.assert_array_equal(got, want)
