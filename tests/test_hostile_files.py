"""Checkpoints from strangers: a broken or hostile safetensors file or pytorch_model.bin is a clear
ValueError, never a crash, an out-of-bounds read or code run while loading."""

from __future__ import annotations

import builtins
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import transformers

import pybert
from conftest import bert_config, child_env, randomize_, save
from pybert import _core
from pybert.modeling import load_weights
from pybert.safetensors import load_safetensors
from pybert.torch_pickle import load_torch_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fuzz_safetensors  # noqa: E402


def write(path, header, body=b"", length=None) -> str:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length) + text + body)
    return os.fspath(path)


F32_2x2 = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}


@pytest.mark.parametrize("header,body,length,match", [
    (b"", b"", 100, "runs past the end of the file"),
    (F32_2x2, b"\0" * 16, 2**64 - 1, "runs past the end of the file"),
    (b"{not json", b"", None, "malformed safetensors header"),
    (b"\xff\xfe{}", b"", None, "malformed safetensors header"),
    (b"[" * 100_000 + b"]" * 100_000, b"", None, "malformed safetensors header"),
    (b"[1, 2]", b"", None, "header must be a JSON object"),
    ({"w": 3}, b"", None, "entry 'w' must be an object"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 32]}}, b"\0" * 16, None,
     "outside the data section"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}, b"\0" * 16, None,
     "outside the data section"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [-1, 15]}}, b"\0" * 16, None,
     "invalid data_offsets"),
    ({"w": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 16]}}, b"\0" * 16, None,
     "needs 24 bytes, its offsets span 16"),
    ({"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 16, None,
     "needs 8 bytes"),
    ({"w": {"dtype": "F4X", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 16, None,
     "unknown dtype 'F4X'"),
    ({"w": {"shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 16, None, "no dtype string"),
    ({"w": {"dtype": "F32", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 16]}},
     b"\0" * 16, None, "dimension too large|overflows"),
    ({"w": {"dtype": "F32", "shape": [2**31, 2**31, 2**31], "data_offsets": [0, 16]}},
     b"\0" * 16, None, "overflows"),
    ({"w": {"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]}}, b"\0" * 16, None,
     "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, None,
     "overlap"),
], ids=lambda v: repr(v)[:24] if isinstance(v, (bytes, dict)) else None)
def test_broken_safetensors(tmp_path, header, body, length, match):
    path = write(tmp_path / "model.safetensors", header, body, length)
    with pytest.raises(ValueError, match=match):
        load_safetensors(path)


def test_truncated_files(tmp_path):
    good = fuzz_safetensors.seed_files()[0]
    for cut in (0, 3, 8, 20, len(good) // 2, len(good) - 1):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError):
            load_safetensors(path)


@pytest.mark.parametrize("data_offset,record,match", [
    (10**6, ("w", "F32", [2], 0, 8), "runs past the end"),
    (8, ("w", "Q4", [2], 0, 8), "unknown dtype"),
    (8, ("w", "F32", [2**40, 2**40], 0, 8), "overflows"),
    (8, ("w", "F32", [4], 0, 2**63), "outside the data section"),
    (8, ("w", "F32", [3], 0, 8), "needs 12 bytes"),
])
def test_core_checks_every_range_itself(tmp_path, data_offset, record, match):
    """The C++ store does not trust the Python header parser: it checks each record again."""
    path = tmp_path / "raw.bin"
    path.write_bytes(b"\0" * 24)
    with pytest.raises(ValueError, match=match):
        _core.WeightStore.from_safetensors(os.fspath(path), data_offset, [record])
    with pytest.raises(ValueError, match="overlap"):
        _core.WeightStore.from_safetensors(os.fspath(path), 8, [("a", "F32", [2], 0, 8),
                                                                ("b", "F32", [2], 4, 12)])


def test_fuzz_seed_files_are_real_safetensors(tmp_path):
    from safetensors.torch import load_file

    for i, data in enumerate(fuzz_safetensors.seed_files()):
        path = tmp_path / f"{i}.safetensors"
        path.write_bytes(data)
        ours = load_safetensors(path)
        for name, tensor in load_file(path).items():
            np.testing.assert_array_equal(ours.get(name), tensor.float().numpy())


def test_fuzz_small_seeded_run():
    env = child_env()
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz_safetensors.py"),
                           "--cases", "400", "--seed", "1", "--jobs", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    result = json.loads(proc.stdout)
    assert result["crashes"] == 0 and result["errors"] == 0, result
    assert result["ok"] + result["value_error"] == 400 and result["ok"] > 0
    assert proc.returncode == 0


# --- pytorch_model.bin ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return randomize_(transformers.BertModel(bert_config()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_bin_matches_safetensors(tmp_path, reference, dtype):
    ref = reference.to(dtype)
    try:
        st_dir, bin_dir = tmp_path / "st", tmp_path / "bin"
        save(ref, st_dir)
        save(ref, bin_dir)
        os.remove(bin_dir / "model.safetensors")
        torch.save(ref.state_dict(), bin_dir / "pytorch_model.bin")
    finally:
        reference.float()
    ids = np.random.default_rng(0).integers(0, 120, size=(3, 9))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    a = pybert.BertModel.from_pretrained(st_dir)(ids, attention_mask=mask)
    b = pybert.BertModel.from_pretrained(bin_dir)(ids, attention_mask=mask)
    np.testing.assert_array_equal(a.last_hidden_state, b.last_hidden_state)
    np.testing.assert_array_equal(a.pooler_output, b.pooler_output)


def test_bin_tensors_are_exact(tmp_path):
    base = torch.randn(4, 6)
    state = {"f32": base, "view": base[:, 1::2], "f16": base.half(), "bf16": base.bfloat16(),
             "ids": torch.arange(7), "param": torch.nn.Parameter(torch.randn(3))}
    torch.save(state, tmp_path / "w.bin")
    got = load_torch_state_dict(tmp_path / "w.bin")
    assert sorted(got) == sorted(state)
    for name, want in state.items():
        want = want.detach()
        want = want.float() if want.dtype == torch.bfloat16 else want
        np.testing.assert_array_equal(got[name], want.numpy())
        assert got[name].dtype == want.numpy().dtype


def test_directory_prefers_safetensors_then_bin(tmp_path, reference):
    save(reference, tmp_path)
    store = load_weights(tmp_path)
    assert "pooler.dense.weight" in store.names()
    torch.save({"only.in.bin": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    assert "only.in.bin" not in load_weights(tmp_path).names()
    os.remove(tmp_path / "model.safetensors")
    assert load_weights(tmp_path).names() == ["only.in.bin"]


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("fn,refused", [(os.system, "posix.system"),
                                        (builtins.eval, "(__builtin__|builtins).eval"),
                                        (builtins.exec, "(__builtin__|builtins).exec")])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, fn, refused):
    sentinel = tmp_path / "pwned"
    payload = f"touch {sentinel}" if fn is os.system else \
        f"open({os.fspath(sentinel)!r}, 'w').close()"
    torch.save({"w": torch.zeros(2), "x": _Evil(fn, payload)}, tmp_path / "pytorch_model.bin")
    with open(tmp_path / "config.json", "w") as f:
        json.dump(bert_config().to_dict(), f)
    with pytest.raises(ValueError, match=f"refused to load global '{refused}'"):
        pybert.BertModel.from_pretrained(tmp_path)
    assert not sentinel.exists()


def rezip(src, dst, edit) -> None:
    """Copy the zip `src` to `dst`, passing each entry's bytes through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info.filename)))


@pytest.mark.parametrize("edit,match", [
    (lambda n, d: d[:-4] if n.endswith("data/0") else d, "holds 60 bytes"),
    (lambda n, d: d.replace(b"FloatStorage", b"DoubleStorag") if n.endswith("data.pkl") else d,
     "refused to load global 'torch.DoubleStorag'"),
    (lambda n, d: d[: len(d) // 2] if n.endswith("data.pkl") else d, "invalid pytorch_model.bin"),
])
def test_broken_bin(tmp_path, edit, match):
    torch.save({"w": torch.randn(16)[1:]}, tmp_path / "good.bin")
    rezip(tmp_path / "good.bin", tmp_path / "bad.bin", edit)
    with pytest.raises(ValueError, match=match):
        load_torch_state_dict(tmp_path / "bad.bin")


def test_bin_view_past_its_storage(tmp_path):
    torch.save({"w": torch.randn(4)}, tmp_path / "good.bin")

    def grow_size(name, data):  # size (4,) -> (9,) over a 4-element storage
        return data.replace(b"K\x04\x85", b"K\x09\x85") if name.endswith("data.pkl") else data

    rezip(tmp_path / "good.bin", tmp_path / "bad.bin", grow_size)
    with pytest.raises(ValueError, match="reads past its storage"):
        load_torch_state_dict(tmp_path / "bad.bin")


def test_not_a_zip(tmp_path):
    (tmp_path / "legacy.bin").write_bytes(b"\x80\x02\x8a\x0alegacy torch pickle")
    with pytest.raises(ValueError, match="not a torch.save zip archive"):
        load_torch_state_dict(tmp_path / "legacy.bin")
