"""BertModel, its layer and its loader against transformers on the same weights."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import pybert
from pybert import _core
from conftest import (assert_close_unmasked, bert_config, padded_batch, randomize_, run_python,
                      save)

ATOL = 1e-4  # max abs difference on every output, the bar for the fp32 model


def reference(model, ids, mask, types):
    with torch.no_grad():
        return model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                     token_type_ids=torch.from_numpy(types), output_hidden_states=True)


CONFIGS = [
    dict(hidden_size=32, num_attention_heads=4, num_hidden_layers=1, type_vocab_size=1),
    dict(hidden_size=48, num_attention_heads=3, num_hidden_layers=2, type_vocab_size=2,
         hidden_act="gelu_new"),
    dict(hidden_size=64, num_attention_heads=8, num_hidden_layers=3, type_vocab_size=3,
         intermediate_size=100, layer_norm_eps=1e-5),
    dict(hidden_size=40, num_attention_heads=2, num_hidden_layers=4, type_vocab_size=2,
         hidden_act="gelu_pytorch_tanh", intermediate_size=72),
    dict(hidden_size=36, num_attention_heads=6, num_hidden_layers=2, hidden_act="relu"),
]


@pytest.mark.parametrize("overrides", CONFIGS, ids=lambda c: f"h{c['hidden_size']}")
def test_random_bert_matches_transformers(tmp_path, overrides):
    cfg = bert_config(**overrides)
    ref_model = randomize_(transformers.BertModel(cfg), seed=cfg.hidden_size)
    path = save(ref_model, tmp_path)
    model = pybert.BertModel.from_pretrained(path)
    ids, mask, types = padded_batch(cfg.vocab_size, [13, 1, 7, 20, 9], 20, cfg.type_vocab_size)
    ref = reference(ref_model, ids, mask, types)
    out = model(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)

    assert out.last_hidden_state.dtype == np.float32
    assert out.last_hidden_state.shape == (5, 20, cfg.hidden_size)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)
    assert np.abs(out.pooler_output - ref.pooler_output.numpy()).max() <= ATOL
    assert len(out.hidden_states) == cfg.num_hidden_layers + 1
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        assert_close_unmasked(ours, theirs.numpy(), mask, ATOL)
    # padded positions are zeros, never stale memory
    assert not out.last_hidden_state[~mask.astype(bool)].any()


def test_encoder_layer_matches_bert_layer(tmp_path):
    cfg = bert_config(num_hidden_layers=1, hidden_size=48, num_attention_heads=4)
    ref_model = randomize_(transformers.BertModel(cfg), seed=3)
    model = pybert.BertModel.from_pretrained(save(ref_model, tmp_path))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 9, 48)).astype(np.float32)
    mask = np.ones((3, 9), np.int64)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    layer = ref_model.encoder.layer[0]
    # additive key mask (batch, 1, 1, seq), as BertModel builds it for its layers
    ext = (1.0 - torch.from_numpy(mask).float())[:, None, None, :] * torch.finfo(torch.float32).min
    with torch.no_grad():
        ref = layer(torch.from_numpy(x), attention_mask=ext)
    ref = ref[0] if isinstance(ref, tuple) else ref
    assert_close_unmasked(model.encoder(x, mask), ref.numpy(), mask, ATOL)


def test_embeddings_alone(tmp_path):
    cfg = bert_config(type_vocab_size=3)
    ref_model = randomize_(transformers.BertModel(cfg), seed=4)
    model = pybert.BertModel.from_pretrained(save(ref_model, tmp_path))
    ids = np.random.default_rng(2).integers(0, cfg.vocab_size, size=(2, 11))
    types = np.random.default_rng(3).integers(0, 3, size=(2, 11))
    with torch.no_grad():
        ref = ref_model.embeddings(input_ids=torch.from_numpy(ids),
                                   token_type_ids=torch.from_numpy(types))
    assert np.abs(model.embeddings(ids, types) - ref.numpy()).max() <= ATOL


def test_minilm_checkpoint(minilm_path):
    ref_model = transformers.BertModel.from_pretrained(minilm_path).eval()
    model = pybert.BertModel.from_pretrained(minilm_path)
    ids, mask, types = padded_batch(30522, [128, 3, 40, 77], 128, 1, seed=5)
    ids[:, 0] = 101
    ref = reference(ref_model, ids, mask, types)
    out = model(ids, mask, types, output_hidden_states=True)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)
    assert np.abs(out.pooler_output - ref.pooler_output.numpy()).max() <= ATOL
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        assert_close_unmasked(ours, theirs.numpy(), mask, ATOL)


def test_defaults_and_one_dimensional_input(tmp_path):
    cfg = bert_config()
    ref_model = randomize_(transformers.BertModel(cfg), seed=6)
    model = pybert.BertModel.from_pretrained(save(ref_model, tmp_path), num_threads=1)
    ids = np.array([5, 17, 3, 99], dtype=np.int32)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(ids[None].astype(np.int64)))
    out = model(ids)
    assert out.last_hidden_state.shape == (1, 4, cfg.hidden_size)
    assert out.hidden_states is None
    assert np.abs(out.last_hidden_state - ref.last_hidden_state.numpy()).max() <= ATOL
    for dtype in (np.uint8, np.int16, np.uint32, np.int64):
        same = model(ids.astype(dtype)).last_hidden_state
        np.testing.assert_array_equal(same, out.last_hidden_state)


def test_for_model_prefix_and_missing_pooler(tmp_path):
    cfg = bert_config()
    clf = randomize_(transformers.BertForSequenceClassification(cfg), seed=7)
    path = save(clf, tmp_path / "clf")
    assert any(k.startswith("bert.") for k in load_file(os.path.join(path, "model.safetensors")))
    model = pybert.BertModel.from_pretrained(path)
    ids, mask, types = padded_batch(cfg.vocab_size, [6, 4], 6)
    ref = reference(clf.bert, ids, mask, types)
    out = model(ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)

    no_pool = randomize_(transformers.BertModel(cfg, add_pooling_layer=False), seed=8)
    model = pybert.BertModel.from_pretrained(save(no_pool, tmp_path / "nopool"))
    out = model(ids, mask, types)
    assert out.pooler_output is None
    ref = reference(no_pool, ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_checkpoints_load(tmp_path, dtype):
    cfg = bert_config()
    ref_model = randomize_(transformers.BertModel(cfg), seed=9)
    path = save(ref_model.to(dtype), tmp_path)
    ref_model = ref_model.float()  # the same rounded weights, computed in fp32
    model = pybert.BertModel.from_pretrained(path)
    ids, mask, types = padded_batch(cfg.vocab_size, [8, 5], 8)
    ref = reference(ref_model, ids, mask, types)
    out = model(ids, mask, types)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)


# ---- loader errors ---------------------------------------------------------------------------

@pytest.fixture()
def saved(tmp_path):
    cfg = bert_config()
    path = save(randomize_(transformers.BertModel(cfg), seed=11), tmp_path)
    return path, os.path.join(path, "model.safetensors")


def test_missing_tensor_is_named(saved):
    path, file = saved
    tensors = load_file(file)
    del tensors["encoder.layer.1.intermediate.dense.weight"]
    save_file(tensors, file)
    with pytest.raises(ValueError, match=r"missing tensor 'encoder.layer.1.intermediate.dense"
                                         r".weight' \(expected shape \(64, 32\)\)"):
        pybert.BertModel.from_pretrained(path)


def test_misshaped_tensor_is_named(saved):
    path, file = saved
    tensors = load_file(file)
    tensors["encoder.layer.0.output.dense.weight"] = torch.zeros(32, 60)
    save_file(tensors, file)
    with pytest.raises(ValueError, match=r"'encoder.layer.0.output.dense.weight' has shape "
                                         r"\(32, 60\), expected \(32, 64\)"):
        pybert.BertModel.from_pretrained(path)


def test_unexpected_body_tensor_is_named(saved):
    path, file = saved
    tensors = load_file(file)
    tensors["encoder.layer.2.output.dense.weight"] = torch.zeros(32, 64)
    save_file(tensors, file)
    with pytest.raises(ValueError, match="unexpected tensor 'encoder.layer.2.output.dense.weight'"):
        pybert.BertModel.from_pretrained(path)


def test_directory_without_weights(saved):
    path, file = saved
    os.remove(file)
    with pytest.raises(FileNotFoundError, match="looked for model.safetensors"):
        pybert.BertModel.from_pretrained(path)


def test_heads_not_dividing_hidden(saved):
    path, _ = saved
    cfg_file = os.path.join(path, "config.json")
    cfg = json.load(open(cfg_file))
    cfg["num_attention_heads"] = 5
    json.dump(cfg, open(cfg_file, "w"))
    with pytest.raises(ValueError, match="Embedding size needs to be divisible by heads"):
        pybert.BertModel.from_pretrained(path)


def test_unknown_activation_in_config(saved):
    path, _ = saved
    cfg_file = os.path.join(path, "config.json")
    cfg = json.load(open(cfg_file))
    cfg["hidden_act"] = "mish"
    json.dump(cfg, open(cfg_file, "w"))
    with pytest.raises(ValueError, match="unsupported hidden_act 'mish'"):
        pybert.BertModel.from_pretrained(path)
@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
@pytest.mark.parametrize("lengths", [[9, 3, 16, 1], [200, 3, 250, 1, 120],
                                     [250, 3, 200, 0, 240, 1, 180, 230, 60]])
def test_outputs_do_not_depend_on_batch_mates(tmp_path, precision, lengths):
    # The second batch holds 574 tokens: enough rows for the GEMMs to split them over threads
    # differently than for each sentence alone (by rows from 256 rows on 2 threads, by columns
    # below), yet every sentence's output must be bit-identical, every layer's too.  The third
    # (1164 tokens) goes through each layer in chunks of whole sequences (at most
    # _core.encoder_chunk_tokens(2) tokens; the empty sequence inside the first chunk).
    cfg = bert_config(max_position_embeddings=256)
    model = pybert.BertModel.from_pretrained(
        save(randomize_(transformers.BertModel(cfg), seed=10), tmp_path), num_threads=2,
        precision=precision)
    ids, mask, types = padded_batch(cfg.vocab_size, lengths, max(lengths))
    batch = model(ids, mask, types, output_hidden_states=True)
    assert sum(lengths) < 1000 or _core.encoder_chunk_tokens(2) < sum(lengths)
    for i in range(len(lengths)):
        n = int(mask[i].sum())
        if n == 0:  # padded rows are zeros, the pooler sees a zero first row
            assert not batch.last_hidden_state[i].any()
            continue
        alone = model(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n],
                      output_hidden_states=True)
        np.testing.assert_array_equal(alone.last_hidden_state[0], batch.last_hidden_state[i, :n])
        np.testing.assert_array_equal(alone.pooler_output[0], batch.pooler_output[i])
        for ours, theirs in zip(alone.hidden_states, batch.hidden_states):
            np.testing.assert_array_equal(ours[0], theirs[i, :n])


FALLBACK_CHECK = r"""
import sys
import numpy as np, torch, transformers, pybert
from conftest import bert_config, padded_batch, randomize_
assert pybert.cpu_info()["fp32_kernels"] == sys.argv[2], pybert.cpu_info()
cfg = bert_config(hidden_size=64, num_attention_heads=4, intermediate_size=100)
ref = randomize_(transformers.BertModel(cfg), seed=12)
ref.save_pretrained(sys.argv[1])
model = pybert.BertModel.from_pretrained(sys.argv[1])
ids, mask, types = padded_batch(cfg.vocab_size, [30, 7, 19], 30)
with torch.no_grad():
    r = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.from_numpy(types))
out = model(ids, mask, types)
keep = mask.astype(bool)
print(max(np.abs(out.last_hidden_state[keep] - r.last_hidden_state.numpy()[keep]).max(),
          np.abs(out.pooler_output - r.pooler_output.numpy()).max()))
"""

# The fp32 family each PYBERT_ISA fallback runs: what CPUs without the wider ISA get.
FALLBACKS = {"avx2": "avx2", "neon": "neon", "generic": "generic"}


@pytest.mark.parametrize("cap", [c for c in _core.cpu_features()["isa_caps"] if c in FALLBACKS])
def test_fallback_kernels_match_transformers(tmp_path, cap):
    # PYBERT_ISA forces the fallback family on a wider CPU.
    done = run_python(["-c", FALLBACK_CHECK, str(tmp_path), FALLBACKS[cap]], cwd=tmp_path,
                      env=dict(os.environ, PYBERT_ISA=cap))
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) <= ATOL
