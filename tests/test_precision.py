"""bf16 and int8 against fp32 references (transformers, sentence-transformers, exact emulation),
on the kernels this CPU picks and on the fallbacks that PYBERT_ISA forces in a subprocess.

Error bars, and why:
- Linear op, int8: the kernels' integer dot products are exact, so they match an emulation of
  the documented quantization (gemm_lowp.h) to fp32 rounding of the dequantization.
- Linear op, bf16: inputs rounded to bf16 (RNE) then fp32 accumulation: matches a float64
  product of the rounded inputs to fp32 accumulation error, ~K * 2^-24 of sum |x_k w_k|.
- Whole models: each product of two bf16-rounded values has relative error <= 2 * 2^-9, and
  summed with random signs over K terms a GEMM's error is ~2^-8 sqrt(K) |x_k w_k|, against an
  output ~sqrt(K) |x_k w_k|: ~2^-8 relative per GEMM. int8: a row's step is its range / 255 and
  the range ~6x the rms of the row (LayerNorm outputs), weights' step max|w| / 127 ~ 3 rms / 127:
  ~2^-7 relative per operand, ~2^-6 per GEMM. Through L layers of 4 GEMMs the errors add like
  sqrt(4 L); the bar is twice that: relative rms error <= 2 eps sqrt(4 L).
- int8_bf16_attention: int8's Linears, attention's two products bf16 (~2^-8 relative each,
  small beside the four int8 GEMMs' ~2^-6): int8's bars.
- MiniLM sentence embeddings (the issue's bar): cosine to fp32 >= 0.999 (bf16), >= 0.99 (int8,
  int8_bf16_attention).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from sentence_transformers import SentenceTransformer

import pybert
from pybert import _core
from conftest import VARIED_TEXTS, bert_config, padded_batch, randomize_
from precision_run import run

EPS = {"fp32": 1e-6, "bf16": 2.0 ** -8, "int8": 2.0 ** -6,  # relative error per GEMM
       "int8_bf16_attention": 2.0 ** -6}
MIN_COSINE = {"fp32": 0.99999, "bf16": 0.999, "int8": 0.99, "int8_bf16_attention": 0.99}

TEXTS = VARIED_TEXTS + [
    "A man is eating food.", "The new movie is awesome!", "no", "I love this place",
    "Stocks fell sharply on Monday after the central bank's report.",
    "How do I make my program run faster?",
    "The cat sat on the mat while the dog barked loudly at the mail carrier.",
]

# Random BERTs; std 0.05 keeps attention logits O(1), as in trained models.
MODEL_CONFIGS = [
    dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=128),
    dict(hidden_size=96, num_attention_heads=6, num_hidden_layers=3, intermediate_size=200,
         hidden_act="gelu_new"),
]
# (300, 96, 80): rows enough (>= 128 a thread) for 2 threads to split rows instead of columns.
# (17, 2100, 40), (500, 2100, 47): K > 2048, AMX bf16's deep-K order (m blocks of 224 rows at
# this K: 250 rows a thread end in a 26-row strip), with row and column tails.
LINEAR_SHAPES = [(1, 8, 8), (7, 33, 65), (70, 384, 1536), (130, 96, 40), (33, 300, 17),
                 (64, 1536, 384), (300, 96, 80), (17, 2100, 40), (500, 2100, 47)]


def bf16_round(a: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even to bf16, kept in float32 (as vcvtne2ps2bf16; no denormals here)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return u.view(np.float32)


def int8_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray):
    """y and the scale of its rounding, from the quantization gemm_lowp.h documents, in float64
    on exact integers: x asymmetric per row (u8 over [min(0, min), max(0, max)]), w symmetric
    per output channel."""
    lo = np.minimum(x.min(1, keepdims=True), 0)
    hi = np.maximum(x.max(1, keepdims=True), 0)
    with np.errstate(divide="ignore"):
        inv = np.where(hi > lo, np.float32(255) / (hi - lo), np.float32(0)).astype(np.float32)
    zero = np.rint(-lo * inv)
    qx = np.clip(np.rint(x * inv) + zero, 0, 255) - zero
    sx = ((hi - lo) / np.float32(255)).astype(np.float32)
    amax = np.abs(w).max(1, keepdims=True)
    qw = np.clip(np.rint(w * (np.float32(127) / amax).astype(np.float32)), -127, 127)
    sw = (amax / np.float32(127)).astype(np.float32)
    scale = sx.astype(np.float64) * sw.T
    return (qx @ qw.T) * scale + b, (np.abs(qx) @ np.abs(qw).T) * scale


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, minilm_path):
    """The inputs, the random models (saved), and their fp32 references."""
    root = tmp_path_factory.mktemp("precision")
    rng = np.random.default_rng(0)
    inputs = {"linear_cases": np.array(len(LINEAR_SHAPES))}
    for i, (n, k, o) in enumerate(LINEAR_SHAPES):
        x = rng.standard_normal((n, k), dtype=np.float32) + np.float32(0.3)  # one-sided rows
        x[0, : k // 2] = 0
        inputs[f"linear{i}_x"] = x
        inputs[f"linear{i}_w"] = (rng.standard_normal((o, k)) / np.sqrt(k)).astype(np.float32)
        inputs[f"linear{i}_b"] = rng.standard_normal(o).astype(np.float32)
    cfgs = [bert_config(**c) for c in MODEL_CONFIGS]
    ids, mask, types = padded_batch(120, [40, 7, 19, 1], 40)
    inputs.update(ids=ids, mask=mask, types=types)
    inputs["gelu_grid"] = np.linspace(-12, 12, 64 * 1500, dtype=np.float32).reshape(-1, 64)
    inputs["gelu_tails"] = np.float32([np.nan, 1e30, -1e30, 16, -16, -17, 5.7, -5.7, 0,
                                       -0.0]).reshape(-1, 1)
    np.savez(root / "inputs.npz", **inputs)
    refs, model_dirs = {}, []
    for j, cfg in enumerate(cfgs):
        ref_model = randomize_(transformers.BertModel(cfg), seed=j, std=0.05)
        path = str(root / f"model{j}")
        ref_model.save_pretrained(path)
        model_dirs.append(path)
        with torch.no_grad():
            out = ref_model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                            token_type_ids=torch.from_numpy(types))
        refs[f"model{j}_last"] = out.last_hidden_state.numpy()
        refs[f"model{j}_pooled"] = out.pooler_output.numpy()
        refs[f"model{j}_layers"] = cfg.num_hidden_layers
    torch.set_num_threads(2)
    st = SentenceTransformer(os.fspath(minilm_path), device="cpu")
    refs["minilm"] = st.encode(TEXTS, convert_to_numpy=True)
    args = dict(model_dirs=model_dirs, minilm_path=os.fspath(minilm_path), texts=TEXTS)
    with open(root / "args.json", "w") as f:
        json.dump(args, f)
    return str(root), inputs, refs, args


# Each kernel family once: what this CPU picks (in this process), then the fallbacks forced by
# PYBERT_ISA in a fresh process (on a CPU without the wider ISA the cap changes nothing): x86-64
# "avx512", "avx2", "generic"; aarch64 "i8mm", "dotprod", "neon", "generic".
CAPS = [None] + list(_core.cpu_features()["isa_caps"])


def expected_kernels(info: dict) -> dict:
    """The kernels each precision should run with these features (kernels/dispatch.cc's rule)."""
    if info["arch"] == "aarch64":
        if not info["neon"]:
            return dict(fp32="generic", int8="generic", bf16="generic")
        int8 = "neon_i8mm" if info["i8mm"] else "neon_dotprod" if info["dotprod"] else "generic"
        return dict(fp32="neon", int8=int8, bf16="neon_bf16" if info["bf16"] else "neon")
    if not (info["avx2"] and info["fma"]):
        return dict(fp32="generic", int8="generic", bf16="generic")
    fp32 = "avx512" if info["avx512"] else "avx2"
    int8 = ("amx_int8" if info["amx_int8"] and info["avx512_vnni"]
            else "avx512_vnni" if info["avx512_vnni"] else "avx2")
    bf16 = "amx_bf16" if info["amx_bf16"] and info["avx512_bf16"] else fp32
    return dict(fp32=fp32, int8=int8, bf16=bf16)


@pytest.fixture(scope="module", params=CAPS, ids=lambda c: c or "native")
def outputs(request, workdir):
    root, _, _, args = workdir
    cap = request.param
    if cap is None:
        return cap, run(root, **args)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
    env = dict(os.environ, PYBERT_ISA=cap,
               PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, os.path.join(tests_dir, "precision_run.py"), root],
                          env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return cap, dict(np.load(os.path.join(root, "outputs.npz")))


def test_kernels_follow_the_cap(outputs):
    cap, out = outputs
    info = json.loads(str(out["cpu_info"]))
    assert info["isa_cap"] == (cap or os.environ.get("PYBERT_ISA"))  # "native" obeys a user's cap
    if cap is not None:  # no bf16 unit under any cap: bf16 falls back to fp32, and says so once
        assert not info.get("amx_bf16") and not info.get("amx_int8") and not info.get("bf16")
        assert info["bf16_kernels"] == info["fp32_kernels"]
        assert list(out["warnings"]) == [str(out["warnings"][0])]
        assert "bf16" in str(out["warnings"][0]) and "fp32" in str(out["warnings"][0])
    # int8_bf16_attention: int8's Linears, and its attention bf16 where bf16 has kernels of its
    # own (AMX-BF16, BFMMLA), fp32 where bf16 falls back to the fp32 kernels
    for j in range(len(MODEL_CONFIGS)):
        same = np.array_equal(out[f"model{j}_int8_bf16_attention_last"], out[f"model{j}_int8_last"])
        assert same == (info["bf16_kernels"] == info["fp32_kernels"])
    if cap == "avx2":
        assert info["fp32_kernels"] == "avx2" and info["int8_kernels"] == "avx2"
    if cap == "neon":
        assert info["fp32_kernels"] == "neon" and info["int8_kernels"] == "generic"
    if cap == "generic":
        assert {info[f"{p}_kernels"] for p in ("fp32", "bf16", "int8")} == {"generic"}
    expected = expected_kernels(info)
    assert {p: info[f"{p}_kernels"] for p in expected} == expected


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gelu_in_the_gemm_epilogue(outputs, workdir, precision):
    # Each family's GEMM applies GELU in its epilogue with its own erf (AVX-512: a 16-piece
    # vpermps table, AVX2: 8 pieces, generic: erff): gelu(x @ I) on a dense grid (64 columns:
    # full vectors) and, one column (x @ [[1]]), on NaN and tail values, against torch's
    # erf GELU in float64 of the GEMM's own input (bf16: x rounded to bf16 first, without a bf16
    # unit not; the products add exact zeros). Bound: 1.5e-7 * max(1, |x|); x itself where
    # Phi(x) rounds to 1.
    _, inputs, _, _ = workdir
    _, out = outputs
    info = json.loads(str(out["cpu_info"]))
    rounded = precision == "bf16" and info["bf16_kernels"] != info["fp32_kernels"]
    for part in ("grid", "tails"):
        x = torch.from_numpy(inputs[f"gelu_{part}"]).double()
        x = x.bfloat16().double() if rounded else x
        y, ref = out[f"gelu_{part}_{precision}"].ravel(), F.gelu(x).numpy().ravel()
        x = x.numpy().ravel()
        finite = np.isfinite(x)
        err = np.abs(y[finite] - ref[finite])
        assert (err <= 1.5e-7 * np.maximum(1.0, np.abs(x[finite]))).all(), (part, err.max())
        assert (y[x >= 6] == x[x >= 6]).all()
        assert np.isnan(y[~finite]).all()


@pytest.mark.parametrize("i", range(len(LINEAR_SHAPES)))
def test_int8_linear_matches_quantization_emulation(outputs, workdir, i):
    _, out = outputs
    _, inputs, _, _ = workdir
    x, w, b = (inputs[f"linear{i}_{k}"] for k in "xwb")
    ref, scale = int8_reference(x, w, b)
    err = np.abs(out[f"linear{i}_int8"] - ref)
    # exact integer dot products: only the fp32 dequantization and bias add round
    assert (err <= 1e-6 * (scale + np.abs(ref) + 1)).all(), err.max()


@pytest.mark.parametrize("i", range(len(LINEAR_SHAPES)))
def test_bf16_linear_matches_rounded_inputs(outputs, workdir, i):
    _, out = outputs
    _, inputs, _, _ = workdir
    x, w, b = (inputs[f"linear{i}_{k}"] for k in "xwb")
    info = json.loads(str(out["cpu_info"]))
    if info["bf16_kernels"] != info["fp32_kernels"]:
        xr, wr = bf16_round(x).astype(np.float64), bf16_round(w).astype(np.float64)
        tol = x.shape[1] * 2.0 ** -24 * (np.abs(xr) @ np.abs(wr).T) + 1e-6
    else:  # the fp32 kernels
        xr, wr = x.astype(np.float64), w.astype(np.float64)
        tol = 2e-5
    ref = xr @ wr.T + b
    assert (np.abs(out[f"linear{i}_bf16"] - ref) <= tol).all()


def relative_rms(ours, ref, keep=None):
    if keep is not None:
        ours, ref = ours[keep], ref[keep]
    return float(np.sqrt(((ours - ref) ** 2).sum() / (ref ** 2).sum()))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int8_bf16_attention"])
@pytest.mark.parametrize("j", range(len(MODEL_CONFIGS)))
def test_random_models_within_error_bound(outputs, workdir, precision, j):
    _, out = outputs
    _, inputs, refs, _ = workdir
    bound = 2 * EPS[precision] * np.sqrt(4 * refs[f"model{j}_layers"])
    keep = inputs["mask"].astype(bool)
    last = relative_rms(out[f"model{j}_{precision}_last"], refs[f"model{j}_last"], keep)
    pooled = relative_rms(out[f"model{j}_{precision}_pooled"], refs[f"model{j}_pooled"])
    assert last <= bound and pooled <= bound, (last, pooled, bound)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int8_bf16_attention"])
def test_minilm_sentence_embeddings_cosine(outputs, workdir, precision):
    _, out = outputs
    ref = workdir[2]["minilm"]
    ours = out[f"minilm_{precision}"]
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= MIN_COSINE[precision], (cos.min(), TEXTS[int(cos.argmin())])


@pytest.mark.parametrize("precision", ["bf16", "int8", "int8_bf16_attention"])
def test_heads_at_reduced_precision(tmp_path, precision):
    cfg = bert_config(hidden_size=64, num_attention_heads=4, intermediate_size=128, num_labels=5)
    ref = randomize_(transformers.BertForSequenceClassification(cfg), seed=7, std=0.05)
    ref.save_pretrained(tmp_path / "clf")
    mlm = randomize_(transformers.BertForMaskedLM(cfg), seed=8, std=0.05)
    mlm.save_pretrained(tmp_path / "mlm")
    ids, mask, types = padded_batch(cfg.vocab_size, [12, 5, 9], 12)
    t = [torch.from_numpy(a) for a in (ids, mask, types)]
    bound = 2 * EPS[precision] * np.sqrt(4 * cfg.num_hidden_layers)
    with torch.no_grad():
        expected = ref(t[0], attention_mask=t[1], token_type_ids=t[2]).logits.numpy()
        expected_mlm = mlm(t[0], attention_mask=t[1], token_type_ids=t[2]).logits.numpy()
    clf = pybert.AutoModel.from_pretrained(tmp_path / "clf", precision=precision)
    assert clf.precision == precision
    assert relative_rms(clf(ids, mask, types).logits, expected) <= bound
    ours = pybert.BertForMaskedLM.from_pretrained(tmp_path / "mlm", precision=precision)
    assert ours.shares_word_embeddings()  # the tied decoder stays the embeddings, in fp32
    keep = mask.astype(bool)
    assert relative_rms(ours(ids, mask, types).logits, expected_mlm, keep) <= bound


def test_bad_precision_names_the_options(tmp_path, minilm_path):
    ref = randomize_(transformers.BertModel(bert_config()), seed=1)
    ref.save_pretrained(tmp_path)
    for load in (lambda p: pybert.BertModel.from_pretrained(tmp_path, precision=p),
                 lambda p: pybert.SentenceEncoder(minilm_path, precision=p)):
        with pytest.raises(ValueError, match="unknown precision 'fp16'; expected one of: "
                                             "fp32, bf16, int8, int8_bf16_attention"):
            load("fp16")
        with pytest.raises(TypeError, match="precision must be a string"):
            load(8)
    with pytest.raises(ValueError, match="unknown precision"):
        pybert._core.ops.linear(np.ones((1, 2), np.float32), np.ones((2, 2), np.float32),
                                precision="int4")


def test_int8_long_and_short_sequences_within_error_bound(tmp_path):
    """int8's attention: heads of keys x head size >= 4096 (here 32 wide: 300 and 257 keys) on
    the split-bf16 kernel where the CPU has AMX, the shorter ones (31 keys) in fp32, both within
    int8's bound of transformers' fp32 model, in one batch."""
    cfg = bert_config(hidden_size=128, num_attention_heads=4, intermediate_size=256,
                      max_position_embeddings=512)
    ref = randomize_(transformers.BertModel(cfg), seed=11, std=0.05)
    ref.save_pretrained(tmp_path)
    ids, mask, types = padded_batch(cfg.vocab_size, [300, 31, 257], 300)
    with torch.no_grad():
        expected = ref(*(torch.from_numpy(a) for a in (ids, mask, types))).last_hidden_state
    ours = pybert.BertModel.from_pretrained(tmp_path, precision="int8")
    keep = mask.astype(bool)
    bound = 2 * EPS["int8"] * np.sqrt(4 * cfg.num_hidden_layers)
    got = ours(ids, mask, types).last_hidden_state
    assert relative_rms(got, expected.numpy(), keep) <= bound


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_large_gemm_blocks_give_the_same_values(tmp_path, precision):
    """The AMX kernels write an fp32 output block of >= 8 MiB with non-temporal stores (and an
    sfence before the join), smaller ones with ordinary stores: the values must not change.
    On one thread, 1101 tokens make QKV (1101 x 2304) and FFN1 (1101 x 2100) blocks of ~10 MiB;
    each sequence alone on two threads, blocks of <= 256 x 2304 (2.3 MiB); the batch twice over
    on two threads streams on both. Without AMX every path is the ordinary one."""
    cfg = bert_config(hidden_size=768, num_attention_heads=12, num_hidden_layers=1,
                      intermediate_size=2100, max_position_embeddings=512)
    randomize_(transformers.BertModel(cfg), seed=3, std=0.03).save_pretrained(tmp_path)
    ids, mask, types = padded_batch(cfg.vocab_size, [512, 512, 77], 512)
    one = pybert.BertModel.from_pretrained(tmp_path, precision=precision, num_threads=1)
    two = pybert.BertModel.from_pretrained(tmp_path, precision=precision, num_threads=2)
    keep = mask.astype(bool)
    streamed = one(ids, mask, types).last_hidden_state
    assert np.isfinite(streamed[keep]).all()
    for i in range(len(ids)):
        alone = two(ids[i], mask[i], types[i]).last_hidden_state[0]
        np.testing.assert_array_equal(streamed[i][keep[i]], alone[keep[i]])
    twice = two(*(np.concatenate([a, a]) for a in (ids, mask, types))).last_hidden_state
    keep2 = np.concatenate([keep, keep])
    np.testing.assert_array_equal(np.concatenate([streamed, streamed])[keep2], twice[keep2])


def test_int8_feed_forward_in_strips(tmp_path):
    """Where FFN1's int8 weight stays in L2 and each thread takes whole rows (two threads, >= 256
    tokens), GELU's output is quantized for FFN2 a strip of rows at a time from a scratch
    (ops::Linear::forward_to_int8): within int8's bound of transformers' fp32 model, and the
    same values as one thread, which runs FFN1 and then the quantizer over the whole result.
    The batch's 701 rows end in a strip of 29, the padding rows the quantizer fills after it."""
    cfg = bert_config(hidden_size=384, num_attention_heads=6, intermediate_size=1536,
                      num_hidden_layers=2, max_position_embeddings=512)
    ref = randomize_(transformers.BertModel(cfg), seed=5, std=0.05)
    ref.save_pretrained(tmp_path)
    ids, mask, types = padded_batch(cfg.vocab_size, [300, 13, 388], 388)
    with torch.no_grad():
        expected = ref(*(torch.from_numpy(a) for a in (ids, mask, types))).last_hidden_state
    keep = mask.astype(bool)
    bound = 2 * EPS["int8"] * np.sqrt(4 * cfg.num_hidden_layers)
    strips = pybert.BertModel.from_pretrained(tmp_path, precision="int8", num_threads=2)
    whole = pybert.BertModel.from_pretrained(tmp_path, precision="int8", num_threads=1)
    got = strips(ids, mask, types).last_hidden_state
    assert relative_rms(got, expected.numpy(), keep) <= bound
    np.testing.assert_array_equal(got[keep], whole(ids, mask, types).last_hidden_state[keep])
