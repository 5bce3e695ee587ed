"""The BERT family (RoBERTa, XLM-R, DistilBERT, ELECTRA, ALBERT, Megatron-BERT) against
transformers: random small configs saved with save_pretrained, loaded by pybert."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

import pybert
from conftest import FAMILIES, assert_close_unmasked, randomize_, replace_tensor, save

ATOL = 1e-4  # the bar of the fp32 model, as in test_model.py

def batch(cfg, seed=0):
    """A padded batch: right padding, a one-token row, left padding, and (for RoBERTa-style
    position ids) a pad id inside the real tokens and a real id under the mask."""
    rng = np.random.default_rng(seed)
    pad = cfg.pad_token_id
    seq = 12
    ids = rng.integers(3, cfg.vocab_size, size=(5, seq))
    mask = np.ones((5, seq), np.int64)
    mask[0, 9:] = 0
    mask[1, 1:] = 0
    mask[2, :4] = 0     # left-padded
    mask[3, 10:] = 0
    ids[mask == 0] = pad
    ids[3, 5] = pad     # a pad id the mask keeps: transformers gives it position pad_token_id
    ids[3, 11] = 7      # a real id under the mask: it still counts in the row's positions
    types = rng.integers(0, getattr(cfg, "type_vocab_size", 1), size=(5, seq)) * mask
    return ids, mask, types


def run_reference(model, ids, mask, types):
    kwargs = dict(attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    if not isinstance(model, transformers.DistilBertModel):
        kwargs["token_type_ids"] = torch.from_numpy(types)
    with torch.no_grad():
        return model(torch.from_numpy(ids), **kwargs)


def check_against(model, ref_model, cfg, seed=0):
    ids, mask, types = batch(cfg, seed)
    ref = run_reference(ref_model, ids, mask, types)
    types_arg = None if isinstance(ref_model, transformers.DistilBertModel) else types
    out = model(ids, attention_mask=mask, token_type_ids=types_arg, output_hidden_states=True)
    assert_close_unmasked(out.last_hidden_state, ref.last_hidden_state.numpy(), mask, ATOL)
    assert not out.last_hidden_state[~mask.astype(bool)].any()
    assert len(out.hidden_states) == len(ref.hidden_states) == cfg.num_hidden_layers + 1
    for ours, theirs in zip(out.hidden_states, ref.hidden_states):
        assert_close_unmasked(ours, theirs.numpy(), mask, ATOL)
    pooler = getattr(ref, "pooler_output", None)
    if pooler is None:
        assert out.pooler_output is None
    else:  # transformers pools position 0, pybert the first real token: same where they agree
        starts_real = mask[:, 0] == 1
        assert np.abs(out.pooler_output - pooler.numpy())[starts_real].max() <= ATOL
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_matches_transformers(tmp_path, family):
    make_config, base, _, _ = FAMILIES[family]
    cfg = make_config()
    ref_model = randomize_(base(cfg), seed=len(family))
    model = pybert.AutoModel.from_pretrained(save(ref_model, tmp_path))
    assert model.config.model_type == family
    check_against(model, ref_model, cfg)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_body_of_a_classifier(tmp_path, family):
    """Saved from *ForSequenceClassification: the body sits under the family's prefix."""
    make_config, _, classifier, prefix = FAMILIES[family]
    cfg = make_config(num_labels=3)
    clf = randomize_(classifier(cfg), seed=1)
    path = save(clf, tmp_path)
    assert any(k.startswith(prefix) for k in load_file(os.path.join(path, "model.safetensors")))
    check_against(pybert.BertModel.from_pretrained(path), clf.base_model, cfg, seed=1)


@pytest.mark.parametrize("overrides", [
    dict(embedding_size=32),                                   # no projection
    dict(embedding_size=24, hidden_act="relu", type_vocab_size=3),
], ids=["same-width", "projected"])
def test_electra_embedding_widths(tmp_path, overrides):
    cfg = FAMILIES["electra"][0](**overrides)
    ref_model = randomize_(transformers.ElectraModel(cfg), seed=2)
    model = pybert.ElectraModel.from_pretrained(save(ref_model, tmp_path))
    check_against(model, ref_model, cfg, seed=2)
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(2, 7))
    with torch.no_grad():
        ref = ref_model.embeddings(input_ids=torch.from_numpy(ids))
    emb = model.embeddings(ids)
    assert emb.shape == (2, 7, cfg.embedding_size)
    assert np.abs(emb - ref.numpy()).max() <= ATOL


@pytest.mark.parametrize("layers, groups", [(3, 1), (4, 2), (5, 3)])
def test_albert_layers_share_weights(tmp_path, layers, groups):
    cfg = FAMILIES["albert"][0](num_hidden_layers=layers, num_hidden_groups=groups,
                                embedding_size=32)
    ref_model = randomize_(transformers.AlbertModel(cfg), seed=layers)
    model = pybert.AlbertModel.from_pretrained(save(ref_model, tmp_path))
    assert model._core.distinct_layers == groups  # one weight set per group in memory
    check_against(model, ref_model, cfg, seed=layers)


def test_distilbert_activation_and_sinusoidal_positions(tmp_path):
    cfg = FAMILIES["distilbert"][0](activation="relu", sinusoidal_pos_embds=True)
    ref_model = randomize_(transformers.DistilBertModel(cfg), seed=5)
    model = pybert.DistilBertModel.from_pretrained(save(ref_model, tmp_path))
    assert model.config.hidden_size == 32 and model.config.intermediate_size == 48
    assert model.config.hidden_act == "relu"
    check_against(model, ref_model, cfg, seed=5)


def test_roberta_embeddings_use_positions_after_padding(tmp_path):
    cfg = FAMILIES["roberta"][0](pad_token_id=3)
    ref_model = randomize_(transformers.RobertaModel(cfg), seed=6)
    model = pybert.RobertaModel.from_pretrained(save(ref_model, tmp_path))
    ids, _, _ = batch(cfg, seed=6)
    with torch.no_grad():
        ref = ref_model.embeddings(input_ids=torch.from_numpy(ids))
    assert np.abs(model.embeddings(ids) - ref.numpy()).max() <= ATOL
    # positions run pad_token_id + 1 .. so the table holds max_position_embeddings - 4 tokens
    model(np.full((1, 36), 5))
    with pytest.raises(ValueError, match=r"sequence length 37 exceeds the 36 positions left after pad_token_id"):
        model(np.full((1, 37), 5))


# ---- the pre-LN layer option, checked against a reference written here ------------------------

class PreLNReference(torch.nn.Module):
    """x += Attn(LN1(x)); x += FFN(LN2(x)) per layer, LN_final at the end (no embedding norm)."""

    def __init__(self, model: transformers.MegatronBertModel):
        super().__init__()
        self.m = model

    def forward(self, ids, mask, types):
        m, c = self.m, self.m.config
        e = m.embeddings
        pos = torch.arange(ids.shape[1])[None]
        x = e.word_embeddings(ids) + e.token_type_embeddings(types) + e.position_embeddings(pos)
        heads, d = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in m.encoder.layer:
            a = layer.attention
            h = a.ln(x)
            q, k, v = (f(h).view(*h.shape[:2], heads, d).transpose(1, 2)
                       for f in (a.self.query, a.self.key, a.self.value))
            p = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + bias, dim=-1)
            ctx = (p @ v).transpose(1, 2).reshape(x.shape)
            x = x + a.output.dense(ctx)
            h = layer.ln(x)
            x = x + layer.output.dense(torch.nn.functional.gelu(layer.intermediate.dense(h)))
        return m.encoder.ln(x)


def test_pre_layer_norm_against_handwritten_reference(tmp_path):
    cfg = FAMILIES["megatron-bert"][0](num_hidden_layers=3, hidden_size=48, num_attention_heads=6)
    ref_model = randomize_(transformers.MegatronBertModel(cfg, add_pooling_layer=False), seed=8)
    model = pybert.MegatronBertModel.from_pretrained(save(ref_model, tmp_path))
    ids, mask, types = batch(cfg, seed=8)
    with torch.no_grad():
        ref = PreLNReference(ref_model)(*(torch.from_numpy(a) for a in (ids, mask, types)))
    out = model(ids, mask, types)
    assert out.pooler_output is None
    assert_close_unmasked(out.last_hidden_state, ref.numpy(), mask, ATOL)


def test_pre_layer_norm_bf16(tmp_path):
    # The bf16 path hands bf16 rows from attention and the first FFN GEMM straight to the next
    # GEMM; in a pre-LN layer those GEMMs write into the buffer they read (y aliases x). Same
    # bar as test_precision: relative rms error <= 2 * 2^-8 * sqrt(4 L) against the reference.
    cfg = FAMILIES["megatron-bert"][0](num_hidden_layers=3, hidden_size=96, num_attention_heads=3,
                                       intermediate_size=200)
    ref_model = randomize_(transformers.MegatronBertModel(cfg, add_pooling_layer=False), seed=9,
                           std=0.05)
    model = pybert.MegatronBertModel.from_pretrained(save(ref_model, tmp_path), precision="bf16")
    ids, mask, types = batch(cfg, seed=9)
    with torch.no_grad():
        ref = PreLNReference(ref_model)(*(torch.from_numpy(a) for a in (ids, mask, types)))
    real = mask.astype(bool)
    out = model(ids, mask, types).last_hidden_state[real]
    ref = ref.numpy()[real]
    rel = np.sqrt(((out - ref) ** 2).mean() / (ref ** 2).mean())
    assert rel <= 2 * 2.0 ** -8 * np.sqrt(4 * cfg.num_hidden_layers)


# ---- strict loading, per family -------------------------------------------------------------

def saved_family(tmp_path, family, **overrides):
    make_config, base, _, _ = FAMILIES[family]
    path = save(randomize_(base(make_config(**overrides)), seed=11), tmp_path)
    return path, os.path.join(path, "model.safetensors")


STRICT_CASES = {
    "distilbert-missing": ("distilbert", {}, "transformer.layer.1.ffn.lin1.weight", None,
                           r"missing tensor 'transformer.layer.1.ffn.lin1.weight' "
                           r"\(expected shape \(48, 32\)\)"),
    "albert-misshaped": ("albert", {}, "encoder.embedding_hidden_mapping_in.weight", (32, 20),
                         r"'encoder.embedding_hidden_mapping_in.weight' has shape \(32, 20\), "
                         r"expected \(32, 16\)"),
    "albert-extra-group": ("albert", {}, "encoder.albert_layer_groups.1.albert_layers.0.ffn.weight",
                           (48, 32), r"unexpected tensor 'encoder.albert_layer_groups.1."
                                     r"albert_layers.0.ffn.weight' of shape \(48, 32\)"),
    "electra-needless-projection": ("electra", dict(embedding_size=32),
                                    "embeddings_project.weight", (32, 32),
                                    r"unexpected tensor 'embeddings_project.weight'"),
    "megatron-final-norm": ("megatron-bert", {}, "encoder.ln.bias", None,
                            r"missing tensor 'encoder.ln.bias'"),
}


@pytest.mark.parametrize("case", list(STRICT_CASES))
def test_strict_loading_names_the_tensor(tmp_path, case):
    """A tensor removed (shape None) or set to a zero tensor of `shape` is an error naming it."""
    family, overrides, name, shape, message = STRICT_CASES[case]
    path, file = saved_family(tmp_path, family, **overrides)
    replace_tensor(file, name, shape)
    with pytest.raises(ValueError, match=message):
        pybert.AutoModel.from_pretrained(path)


def rewrite_config(path, **changes):
    file = os.path.join(path, "config.json")
    cfg = json.load(open(file))
    cfg.update(changes)
    json.dump(cfg, open(file, "w"))


def test_unknown_model_type(tmp_path):
    path, _ = saved_family(tmp_path, "roberta")
    rewrite_config(path, model_type="deberta-v2")
    with pytest.raises(ValueError, match=r"model_type 'deberta-v2' is not supported; pybert runs "
                                         r"'bert', 'roberta'"):
        pybert.AutoModel.from_pretrained(path)


def test_wrong_family_names_the_prefixes_tried(tmp_path):
    cfg = FAMILIES["distilbert"][0]()
    path = save(transformers.DistilBertForSequenceClassification(cfg), tmp_path)
    rewrite_config(path, model_type="roberta", hidden_size=32, num_attention_heads=4,
                   num_hidden_layers=2, intermediate_size=48)
    with pytest.raises(ValueError, match=r"no roberta embeddings in the checkpoint: looked for "
                                         r"'embeddings.word_embeddings.weight' and "
                                         r"'roberta.embeddings.word_embeddings.weight'"):
        pybert.BertModel.from_pretrained(path)


def test_albert_inner_groups_are_refused(tmp_path):
    path, _ = saved_family(tmp_path, "albert")
    rewrite_config(path, inner_group_num=2)
    with pytest.raises(ValueError, match="inner_group_num 2 is not supported"):
        pybert.AlbertModel.from_pretrained(path)


def test_distilbert_has_no_token_types(tmp_path):
    path, _ = saved_family(tmp_path, "distilbert")
    model = pybert.DistilBertModel.from_pretrained(path)
    with pytest.raises(ValueError, match="token type id 1 is out of range"):
        model([[5, 6, 7]], token_type_ids=[[0, 1, 0]])
