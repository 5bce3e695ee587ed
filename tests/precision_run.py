"""pybert's outputs at every precision on the inputs test_precision.py prepares: run in the test
process, or as a script in a subprocess whose PYBERT_ISA caps the kernels (to test the
fallbacks of CPUs without AMX or AVX-512). Only numpy and pybert here: the references are
computed by the test, in fp32, with transformers and sentence-transformers.

    python precision_run.py WORKDIR   # reads WORKDIR/inputs.npz, writes WORKDIR/outputs.npz
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

PRECISIONS = ("fp32", "bf16", "int8", "int8_bf16_attention")


def run(workdir: str, model_dirs: list, minilm_path: str, texts: list) -> dict:
    """{name: array} of every output, plus "cpu_info" (JSON) and "warnings" (their messages)."""
    import pybert
    from pybert import _core

    inputs = np.load(os.path.join(workdir, "inputs.npz"))
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pybert.PrecisionWarning)
        for p in PRECISIONS:
            for i in range(int(inputs["linear_cases"])):
                x, w, b = (inputs[f"linear{i}_{k}"] for k in "xwb")
                out[f"linear{i}_{p}"] = _core.ops.linear(x, w, b, precision=p)
            for j, path in enumerate(model_dirs):
                model = pybert.BertModel.from_pretrained(path, precision=p)
                o = model(inputs["ids"], inputs["mask"], inputs["types"])
                out[f"model{j}_{p}_last"] = o.last_hidden_state
                out[f"model{j}_{p}_pooled"] = o.pooler_output
            encoder = pybert.SentenceEncoder(minilm_path, precision=p)
            out[f"minilm_{p}"] = encoder.encode(texts, batch_size=8)
        for p in ("fp32", "bf16"):  # GELU in the GEMM's epilogue: x @ I, x @ [[1]]
            for part, x in (("grid", inputs["gelu_grid"]), ("tails", inputs["gelu_tails"])):
                eye = np.eye(x.shape[1], dtype=np.float32)
                out[f"gelu_{part}_{p}"] = _core.ops.linear(x, eye, activation="gelu", precision=p)
    out["cpu_info"] = np.array(json.dumps(pybert.cpu_info()))
    out["warnings"] = np.array([str(w.message) for w in caught
                                if issubclass(w.category, pybert.PrecisionWarning)], dtype=str)
    return out


if __name__ == "__main__":
    workdir = sys.argv[1]
    with open(os.path.join(workdir, "args.json")) as f:
        args = json.load(f)
    np.savez(os.path.join(workdir, "outputs.npz"), **run(workdir, **args))
