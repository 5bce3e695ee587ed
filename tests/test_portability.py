"""Runs on any x86-64: a CPU without AVX2 gets the generic kernels, never an illegal instruction.

pybert runs under qemu-user emulating a Nehalem (SSE4.2, no AVX at all; Debian's qemu-user-static,
which CI installs): importing it, picking the kernels and running a small BERT must not execute a
single instruction above the x86-64 baseline before the dispatch picked a family, nor after it
picked the generic one.  A build whose baseline code uses AVX2 (as -mavx2 on every file did) dies
with SIGILL here at import.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers

from conftest import bert_config, child_env, padded_batch, randomize_

QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")

pytestmark = [
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 only"),
    pytest.mark.skipif(QEMU is None, reason="needs qemu-user (Debian: apt-get install "
                                            "qemu-user-static; CI installs it)"),
]

NEHALEM_RUN = r"""
import json, sys
import numpy as np
import pybert
info = pybert.cpu_info()
args = np.load(sys.argv[1] + "/inputs.npz")
out = {}
for precision in ("fp32", "int8"):
    model = pybert.BertModel.from_pretrained(sys.argv[1], precision=precision, num_threads=2)
    r = model(args["ids"], args["mask"], args["types"])
    out[precision] = r.last_hidden_state
np.savez(sys.argv[1] + "/outputs.npz", info=json.dumps(info), **out)
"""


def test_no_avx_cpu_runs_generic_kernels(tmp_path):
    cfg = bert_config(hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
                      intermediate_size=48)
    ref = randomize_(transformers.BertModel(cfg), seed=3)
    ref.save_pretrained(tmp_path)
    ids, mask, types = padded_batch(cfg.vocab_size, [9, 4], 9)
    np.savez(tmp_path / "inputs.npz", ids=ids, mask=mask, types=types)
    with torch.no_grad():
        want = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   token_type_ids=torch.from_numpy(types)).last_hidden_state.numpy()
    env = child_env()
    env.pop("PYBERT_ISA", None)  # the CPU alone must pick the generic family
    done = subprocess.run([QEMU, "-cpu", "Nehalem", sys.executable, "-c", NEHALEM_RUN,
                           str(tmp_path)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    got = np.load(tmp_path / "outputs.npz")
    info = json.loads(str(got["info"]))
    assert not info["avx2"] and info["isa_cap"] is None
    assert (info["fp32_kernels"], info["bf16_kernels"], info["int8_kernels"]) == (
        "generic", "generic", "generic")
    keep = mask.astype(bool)
    np.testing.assert_allclose(got["fp32"][keep], want[keep], atol=1e-4, rtol=0)  # test_model.py's bar
    # int8: only that it ran and computed the same model (its accuracy: test_precision.py)
    err = np.abs(got["int8"][keep] - want[keep]).max()
    assert err < 0.1 * np.abs(want[keep]).max(), err
