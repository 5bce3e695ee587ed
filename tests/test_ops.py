"""Each op of the core against torch.nn.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pybert import _core

# op -> max abs difference allowed against torch (fp32 both sides)
TOLERANCE = {
    "linear": 2e-5,
    "gelu": 1e-6,
    "gelu_tanh": 1e-6,
    "relu": 0.0,
    "layer_norm": 1e-5,
    "softmax": 1e-6,
    "attention": 1e-5,
}

rng = np.random.default_rng(0)


def t(a):
    return torch.from_numpy(np.asarray(a))


# (203, 1000, 150): two depth blocks of the packed kernel, threads splitting the columns over
# rows packed once for both (the last strip of 8 rows partial);
# (300, 1000, 50): the same with enough rows (>= 128 a thread) that threads split the rows;
# (600, 72, 100): two row blocks a thread. Ragged everywhere.
@pytest.mark.parametrize("n,fin,fout", [(1, 8, 8), (7, 33, 65), (64, 384, 1536), (130, 96, 40),
                                       (203, 1000, 150), (300, 1000, 50), (600, 72, 100)])
@pytest.mark.parametrize("activation", ["none", "gelu", "gelu_new", "relu"])
def test_linear(n, fin, fout, activation):
    x = rng.standard_normal((n, fin), dtype=np.float32)
    w = rng.standard_normal((fout, fin), dtype=np.float32) / np.float32(np.sqrt(fin))
    b = rng.standard_normal(fout, dtype=np.float32)
    ref = F.linear(t(x), t(w), t(b))
    ref = {"none": lambda v: v, "gelu": F.gelu, "relu": F.relu,
           "gelu_new": lambda v: F.gelu(v, approximate="tanh")}[activation](ref)
    out = _core.ops.linear(x, w, b, activation=activation)
    assert np.abs(out - ref.numpy()).max() <= TOLERANCE["linear"]


def test_linear_without_bias_and_bad_shape():
    x = rng.standard_normal((5, 16), dtype=np.float32)
    w = rng.standard_normal((8, 16), dtype=np.float32)
    assert np.abs(_core.ops.linear(x, w) - F.linear(t(x), t(w)).numpy()).max() <= 1e-5
    with pytest.raises(ValueError, match="in_features=16"):
        _core.ops.linear(np.zeros((5, 15), np.float32), w)


@pytest.mark.parametrize("name,ref,tol", [
    ("gelu", lambda v: F.gelu(v), TOLERANCE["gelu"]),
    ("gelu_new", lambda v: F.gelu(v, approximate="tanh"), TOLERANCE["gelu_tanh"]),
    ("gelu_pytorch_tanh", lambda v: F.gelu(v, approximate="tanh"), TOLERANCE["gelu_tanh"]),
    ("relu", F.relu, TOLERANCE["relu"]),
])
def test_activation(name, ref, tol):
    x = np.concatenate([np.linspace(-12, 12, 4001, dtype=np.float32),
                        rng.standard_normal(1000, dtype=np.float32) * 3])
    assert np.abs(_core.ops.activation(x, name) - ref(t(x)).numpy()).max() <= tol


def test_gelu_forms_differ():
    # erf and tanh GELU are different functions (up to ~4.7e-4 apart): both must be exact.
    x = np.linspace(-5, 5, 2001, dtype=np.float32)
    gap = np.abs(_core.ops.activation(x, "gelu") - _core.ops.activation(x, "gelu_new")).max()
    assert gap > 1e-4


def test_unknown_activation():
    with pytest.raises(ValueError, match="unsupported hidden_act 'swishy'"):
        _core.ops.activation(np.zeros(3, np.float32), "swishy")


@pytest.mark.parametrize("rows,hidden,eps", [(1, 8, 1e-12), (17, 384, 1e-12), (9, 768, 1e-5),
                                             (5, 1000, 1e-12)])
def test_layer_norm(rows, hidden, eps):
    x = rng.standard_normal((rows, hidden), dtype=np.float32) * 3 + 1
    r = rng.standard_normal((rows, hidden), dtype=np.float32)
    g = rng.standard_normal(hidden, dtype=np.float32)
    b = rng.standard_normal(hidden, dtype=np.float32)
    ref = F.layer_norm(t(x), (hidden,), t(g), t(b), eps).numpy()
    assert np.abs(_core.ops.layer_norm(x, g, b, eps) - ref).max() <= TOLERANCE["layer_norm"]
    ref_res = F.layer_norm(t(x) + t(r), (hidden,), t(g), t(b), eps).numpy()
    out = _core.ops.layer_norm(x, g, b, eps, residual=r)
    assert np.abs(out - ref_res).max() <= TOLERANCE["layer_norm"]


@pytest.mark.parametrize("cols", [1, 5, 128, 513])
def test_softmax(cols):
    x = rng.standard_normal((6, cols), dtype=np.float32) * 10
    out = _core.ops.softmax(x, scale=0.125)
    ref = F.softmax(t(x) * 0.125, dim=-1).numpy()
    assert np.abs(out - ref).max() <= TOLERANCE["softmax"]


def split_heads(rows, heads):
    """(len, 3 hidden) packed q|k|v rows -> q, k, v as (heads, len, d_head) tensors."""
    n, hidden = rows.shape[0], rows.shape[1] // 3
    return (t(rows)[:, i * hidden:(i + 1) * hidden].reshape(n, heads, -1).transpose(0, 1)
            for i in range(3))


@pytest.mark.parametrize("lengths,heads,d_head", [([5], 1, 8), ([3, 17, 1, 0, 64], 4, 16),
                                                  ([128, 40], 12, 32), ([200, 77], 2, 64),
                                                  ([300, 9], 1, 48), ([513], 1, 10),
                                                  ([70], 1, 96)])
def test_attention_packed_sequences(lengths, heads, d_head):
    hidden = heads * d_head
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    qkv = rng.standard_normal((offsets[-1], 3 * hidden), dtype=np.float32)
    out = _core.ops.self_attention(qkv, offsets, heads)
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        q, k, v = split_heads(qkv[offsets[b]:offsets[b + 1]], heads)
        ref = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, hidden)
        got = out[offsets[b]:offsets[b + 1]]
        assert np.abs(got - ref.numpy()).max() <= TOLERANCE["attention"]


def test_attention_matches_masked_padded_batch():
    # Packing real tokens must equal attention over a padded batch with a key mask.
    heads, d_head, seq = 2, 8, 10
    hidden = heads * d_head
    lengths = [10, 4, 7]
    x = rng.standard_normal((len(lengths), seq, 3 * hidden), dtype=np.float32)
    mask = np.arange(seq)[None, :] < np.array(lengths)[:, None]
    packed = x[mask]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out = _core.ops.self_attention(packed, offsets, heads)
    q, k, v = (t(x[..., i * hidden:(i + 1) * hidden]).reshape(len(lengths), seq, heads, d_head)
               .transpose(1, 2) for i in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=t(mask)[:, None, None, :])
    ref = ref.transpose(1, 2).reshape(len(lengths), seq, hidden).numpy()[mask]
    assert np.abs(out - ref).max() <= TOLERANCE["attention"]


def _split_costs(lengths, heads, head_size, bounds):
    item = np.repeat([n * (n + head_size) + 1 for n in lengths], heads)
    return np.array([item[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]), item


@pytest.mark.parametrize("lengths,heads,parts", [([128] * 8, 12, 2), ([256] + [8] * 31, 12, 2),
                                                 (list(range(8, 257, 8)), 12, 2),
                                                 ([40, 7, 0, 19, 1], 4, 3), ([3], 2, 16)])
def test_attention_split_is_balanced(lengths, heads, parts):
    # self_attention's work per thread: contiguous (sequence, head) ranges of equal cost, so a
    # batch of uneven lengths (one long sequence among short ones) does not leave one thread
    # with most of it; an even split of the items where all lengths are equal.
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    bounds = _core.ops.attention_split(offsets, heads, 64, parts)
    items = len(lengths) * heads
    assert bounds[0] == 0 and bounds[-1] == items and len(bounds) == parts + 1
    assert all(a <= b for a, b in zip(bounds[:-1], bounds[1:]))
    cost, item = _split_costs(lengths, heads, 64, bounds)
    assert cost.max() <= item.sum() / parts + item.max()  # within one item of an equal share
    if len(set(lengths)) == 1 and items % parts == 0:
        assert bounds == list(range(0, items + 1, items // parts))
    even = [min(items, t * -(-items // parts)) for t in range(parts + 1)]
    if lengths[0] == 256 and len(lengths) > 1:  # what an even split of the items would give
        assert _split_costs(lengths, heads, 64, even)[0].max() > 1.5 * cost.max()
    with pytest.raises(ValueError, match="starting at 0"):
        _core.ops.attention_split(offsets[1:], heads, 64, parts)


def _bf16(x):
    return x.bfloat16().double()


def _bf16_ulp(p):
    """One bf16 step (8 significant bits) at each positive entry of p, 0 where p == 0."""
    exponent = torch.floor(torch.log2(p.clamp_min(torch.finfo(torch.float32).tiny)))
    return torch.where(p > 0, torch.exp2(exponent - 7), torch.zeros_like(p))


REDUCED_ATTENTION_CASES = [([5], 1, 8), ([3, 17, 1, 0, 64], 4, 16), ([128, 40], 12, 32),
                           ([200, 77], 2, 64), ([513], 1, 10), ([70], 1, 96)]


def _reduced_attention(lengths, heads, d_head, precision, has_kernel):
    """Packed random q|k|v rows (x 2) of sequences of `lengths` and their self_attention at
    `precision`: (offsets, qkv, out), or None where the CPU has no such kernel, after checking
    that the op then is the fp32 attention (tested against torch above)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    qkv = rng.standard_normal((offsets[-1], 3 * heads * d_head), dtype=np.float32) * 2
    out = _core.ops.self_attention(qkv, offsets, heads, precision=precision)
    if not has_kernel:
        assert np.array_equal(out, _core.ops.self_attention(qkv, offsets, heads))
        return None
    return offsets, qkv, out


@pytest.mark.parametrize("lengths,heads,d_head", REDUCED_ATTENTION_CASES)
def test_attention_bf16(lengths, heads, d_head):
    # precision="bf16" on AMX: q, k, v and the probabilities rounded to bf16, fp32 accumulation
    # and softmax. Reference: the same roundings in float64 torch. The kernel's probabilities may
    # round to the neighbouring bf16 value where its exp differs from torch's in the last bits,
    # so each output may differ by at most one bf16 step of every probability times |v|.
    # Without AMX the op is the fp32 attention (tested above against torch).
    info = _core.cpu_features()
    amx = info["bf16_kernels"] != info["fp32_kernels"]  # a bf16 unit: AMX or BFMMLA
    run = _reduced_attention(lengths, heads, d_head, "bf16", amx)
    if run is None:
        return
    offsets, qkv, out = run
    hidden = heads * d_head
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        q, k, v = split_heads(qkv[offsets[b]:offsets[b + 1]], heads)
        got = t(out[offsets[b]:offsets[b + 1]]).double()
        p = torch.softmax((_bf16(q) @ _bf16(k).transpose(1, 2)).float() / d_head ** 0.5, -1)
        ref = (_bf16(p) @ _bf16(v)).transpose(0, 1).reshape(n, hidden)
        bound = (_bf16_ulp(p.double()) @ _bf16(v).abs()).transpose(0, 1).reshape(n, hidden)
        assert ((got - ref).abs() <= bound + 1e-5).all()
        # and it is attention: close to the fp32 result at bf16's resolution
        ref32 = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, hidden)
        assert (got - ref32.double()).abs().max() <= 0.05 * v.abs().max()


@pytest.mark.parametrize("lengths,heads,d_head", REDUCED_ATTENTION_CASES)
def test_attention_bf16_split(lengths, heads, d_head):
    # precision="bf16_split" (the int8 models' attention) on AMX: every input of the two products
    # split into three bf16 terms, x = hi + lo (hi = bf16(x), lo = bf16(x - hi)), a·b taken as
    # hi·hi + lo·hi + hi·lo. Each product then errs by <= 3 * 2^-18 |a||b| (the dropped lo·lo
    # and the residuals past lo), the fp32 sums over the tripled depth D by <= D * 2^-24 of
    # sum |a||b|.
    # Reference: attention in float64 torch. A score s_ij errs by at most
    # e_i = (2^-16 + 3 d 2^-24) max_j (|q||k|^T)_ij / sqrt(d); a probability by <= 2 e_i of
    # itself (+ fp32 exp), and P·V adds the same relative error over the keys, so
    #   |out - ref| <= (p @ |v|) (2 e_i + 2^-16 + 3 len 2^-24 + 2^-20) + 1e-6.
    # The bound is ~1000x tighter than bf16's error: the bf16 op must break it (else the test
    # could not tell the two apart). Without AMX the op is the fp32 attention.
    run = _reduced_attention(lengths, heads, d_head, "bf16_split",
                             _core.cpu_features()["bf16_kernels"] == "amx_bf16")
    if run is None:
        return
    offsets, qkv, out = run
    hidden = heads * d_head
    bf16 = _core.ops.self_attention(qkv, offsets, heads, precision="bf16")
    bf16_broke = False
    for b, n in enumerate(lengths):
        if n == 0:
            continue
        q, k, v = (x.double() for x in split_heads(qkv[offsets[b]:offsets[b + 1]], heads))
        p = torch.softmax(q @ k.transpose(1, 2) / d_head ** 0.5, -1)
        ref = (p @ v).transpose(0, 1).reshape(n, hidden)
        e = ((2.0 ** -16 + 3 * d_head * 2.0 ** -24) / d_head ** 0.5
             * (q.abs() @ k.abs().transpose(1, 2)).amax(-1, keepdim=True))
        rel = 2 * e + 2.0 ** -16 + 3 * n * 2.0 ** -24 + 2.0 ** -20
        bound = ((p @ v.abs()) * rel).transpose(0, 1).reshape(n, hidden) + 1e-6
        got = t(out[offsets[b]:offsets[b + 1]]).double()
        assert ((got - ref).abs() <= bound).all()
        got_bf16 = t(bf16[offsets[b]:offsets[b + 1]]).double()
        bf16_broke |= bool(((got_bf16 - ref).abs() > bound).any())
    assert bf16_broke


@pytest.mark.parametrize("lengths,heads,d_head", REDUCED_ATTENTION_CASES)
def test_attention_bf16_rows(lengths, heads, d_head):
    # precision="bf16_rows" (a bf16 model's route): q, k, v handed to the heads as bf16 rows,
    # staged as a bf16 QKV Linear writes them (row stride padded to 32), instead of fp32 rows
    # that the heads round. The same roundings of the same values: the same result, to the bit,
    # as "bf16" (tested against torch above), heads of every width (8, 10, 96 not multiples of
    # the kernels' 32-column steps) and empty sequences included.
    info = _core.cpu_features()
    run = _reduced_attention(lengths, heads, d_head, "bf16_rows",
                             info["bf16_kernels"] != info["fp32_kernels"])
    if run is None:
        return
    offsets, qkv, rows = run
    assert np.array_equal(rows, _core.ops.self_attention(qkv, offsets, heads, precision="bf16"))


def test_attention_rejects_int8():
    with pytest.raises(ValueError, match="'bf16_rows' or 'bf16_split', not 'int8'"):
        _core.ops.self_attention(np.zeros((2, 6), np.float32), np.array([0, 2]), 1,
                                 precision="int8")


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="not divisible"):
        _core.ops.self_attention(np.zeros((2, 30), np.float32), np.array([0, 2]), 3)
