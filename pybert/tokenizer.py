"""Text to token ids with Hugging Face ``tokenizers``: tokenizer.json, or BERT WordPiece from vocab.txt."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tokenizers
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

__all__ = ["Tokenizer", "has_tokenizer_files", "check_texts"]

TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"

Texts = Union[str, Sequence[str]]


def has_tokenizer_files(path: str | os.PathLike) -> bool:
    """Whether a model directory holds a tokenizer this module can load."""
    return any(os.path.isfile(os.path.join(path, f)) for f in (TOKENIZER_FILE, VOCAB_FILE))


def check_texts(texts: Any, name: str = "texts") -> List[str]:
    """``texts`` as a list of str: one string, or a sequence of strings; anything else is a
    TypeError that names the offending index."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, dict)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(t).__name__}")
    return texts


def _read_json(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _token(value: Any, default: str) -> str:
    """A special token from tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content", default)
    return default if value is None else str(value)


def _bert_wordpiece(vocab_file: str, config: Dict[str, Any]) -> tokenizers.Tokenizer:
    """The BERT WordPiece tokenizer that transformers' BertTokenizer builds from vocab.txt."""
    with open(vocab_file, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    unk, sep, pad, cls, mask = (_token(config.get(k), d) for k, d in (
        ("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"),
        ("cls_token", "[CLS]"), ("mask_token", "[MASK]")))
    for t in (unk, sep, cls):
        if t not in vocab:
            raise ValueError(f"{vocab_file} has no {t!r} token, which BERT's tokenizer needs")
    tok = tokenizers.Tokenizer(WordPiece(vocab, unk_token=unk))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=config.get("tokenize_chinese_chars", True),
        strip_accents=config.get("strip_accents"), lowercase=config.get("do_lower_case", True))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in (pad, unk, cls, sep, mask) if t in vocab])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
    return tok


def _has_lowercase(normalizer: Optional[normalizers.Normalizer]) -> bool:
    """Whether a normalizer is or holds a Lowercase step, the check sentence-transformers makes
    before adding one (a lowercasing BertNormalizer does not count: it also strips accents)."""
    if isinstance(normalizer, normalizers.Lowercase):
        return True
    if isinstance(normalizer, normalizers.Sequence):
        return any(isinstance(n, normalizers.Lowercase) for n in normalizer)
    return False


class Tokenizer:
    """BERT inputs from text: [CLS] text [SEP] (text_pair [SEP]), truncated, right-padded.

    >>> tok = pybert.Tokenizer.from_pretrained("path/to/bert")
    >>> batch = tok(["hello world", "a longer sentence here"])
    >>> batch["input_ids"].shape, batch["attention_mask"].dtype
    ((2, 6), dtype('int64'))
    """

    def __init__(self, backend: tokenizers.Tokenizer, *, model_max_length: Optional[int] = None,
                 pad_token: str = "[PAD]", mask_token: str = "[MASK]"):
        self._backend = backend
        self.model_max_length = model_max_length
        self.pad_token = pad_token
        self.mask_token = mask_token  # what fill-mask looks for: "[MASK]", RoBERTa's "<mask>"
        self.pad_token_id = backend.token_to_id(pad_token)
        if self.pad_token_id is None:
            self.pad_token_id = 0
        self._configured: Dict[Tuple[Optional[int], str], tokenizers.Tokenizer] = {}

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "Tokenizer":
        """Load ``tokenizer.json``, or build BERT's WordPiece from ``vocab.txt``; both read
        ``tokenizer_config.json`` (``do_lower_case``, special tokens, ``model_max_length``)."""
        path = os.fspath(path)
        config = _read_json(os.path.join(path, CONFIG_FILE))
        file = os.path.join(path, TOKENIZER_FILE)
        if os.path.isfile(file):
            backend = tokenizers.Tokenizer.from_file(file)
        elif os.path.isfile(os.path.join(path, VOCAB_FILE)):
            backend = _bert_wordpiece(os.path.join(path, VOCAB_FILE), config)
        else:
            raise FileNotFoundError(f"no tokenizer in {path!r}: looked for {TOKENIZER_FILE} "
                                    f"and {VOCAB_FILE}")
        max_len = config.get("model_max_length")
        # transformers writes a huge sentinel when a checkpoint sets no limit.
        if not isinstance(max_len, int) or max_len > 1_000_000:
            max_len = None
        return cls(backend, model_max_length=max_len,
                   pad_token=_token(config.get("pad_token"), "[PAD]"),
                   mask_token=_token(config.get("mask_token"), "[MASK]"))

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def _backend_for(self, max_length: Optional[int], direction: str = "right"
                     ) -> tokenizers.Tokenizer:
        """A copy of the backend set to truncate at max_length (cutting tokens off the
        ``direction`` end) and pad to the longest; one per setting, so that calls never
        reconfigure a tokenizer another thread is using."""
        tok = self._configured.get((max_length, direction))
        if tok is None:
            tok = tokenizers.Tokenizer.from_str(self._backend.to_str())
            tok.no_truncation()
            if max_length is not None:
                tok.enable_truncation(max_length, strategy="longest_first", direction=direction)
            tok.enable_padding(direction="right", pad_id=self.pad_token_id, pad_type_id=0,
                               pad_token=self.pad_token)
            self._configured[(max_length, direction)] = tok
        return tok

    def __call__(self, texts: Texts, text_pairs: Optional[Texts] = None,
                 max_length: Optional[int] = None, direction: str = "right", *,
                 add_special_tokens: bool = True) -> Dict[str, np.ndarray]:
        """Token ids of a batch: ``input_ids``, ``attention_mask``, ``token_type_ids``, each
        int64 (batch, longest). ``max_length`` defaults to the checkpoint's model_max_length;
        pairs are truncated longest-first, as transformers does; ``direction`` ("right" or
        "left") is the end truncation cuts tokens from. ``add_special_tokens=False`` leaves out
        [CLS]/[SEP] and the like."""
        texts = check_texts(texts)
        if text_pairs is not None:
            text_pairs = check_texts(text_pairs, "text_pairs")
            if len(text_pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts and {len(text_pairs)} text_pairs; "
                                 "they must pair up one to one")
        if max_length is None:
            max_length = self.model_max_length
        elif isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
                or max_length < 1:
            raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
        if direction not in ("right", "left"):
            raise ValueError(f"direction must be 'right' or 'left', got {direction!r}")
        inputs = texts if text_pairs is None else list(zip(texts, text_pairs))
        try:
            encodings = self._backend_for(None if max_length is None else int(max_length),
                                          direction).encode_batch(
                                              inputs, add_special_tokens=bool(add_special_tokens))
        except Exception as e:  # tokenizers raises plain Exception, e.g. max_length too short
            raise ValueError(f"cannot tokenize with max_length={max_length}: {e}") from None
        seq = len(encodings[0].ids) if encodings else 0

        def stack(field: str) -> np.ndarray:
            out = np.fromiter((v for e in encodings for v in getattr(e, field)), dtype=np.int64,
                              count=len(encodings) * seq)
            return out.reshape(len(encodings), seq)

        return {"input_ids": stack("ids"), "attention_mask": stack("attention_mask"),
                "token_type_ids": stack("type_ids")}

    def concat(self, batches: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        """Batches from calls to this tokenizer as one: their rows in order, right-padded to the
        longest. Lets separately tokenized requests run as one model call."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        seq = max(b["input_ids"].shape[1] for b in batches)
        rows = sum(b["input_ids"].shape[0] for b in batches)
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        out = {key: np.full((rows, seq), pad, dtype=np.int64) for key, pad in pads.items()}
        start = 0
        for b in batches:
            n, s = b["input_ids"].shape  # this batch's rows, right-padded to s <= seq
            for key in pads:
                out[key][start:start + n, :s] = b[key]
            start += n
        return out

    def lowercased(self) -> "Tokenizer":
        """A copy that lowercases text first (sentence-transformers' ``do_lower_case``): a
        Lowercase normalizer in front, unless the tokenizer lowercases already."""
        backend = tokenizers.Tokenizer.from_str(self._backend.to_str())
        current = backend.normalizer
        if not _has_lowercase(current):
            backend.normalizer = normalizers.Sequence(
                [normalizers.Lowercase()] + ([current] if current is not None else []))
        return Tokenizer(backend, model_max_length=self.model_max_length,
                         pad_token=self.pad_token, mask_token=self.mask_token)

    def encode_with_offsets(self, texts: Texts, max_length: Optional[int] = None
                            ) -> Dict[str, np.ndarray]:
        """Like calling the tokenizer on single texts, plus where each token came from:
        ``offset_mapping`` int64 (batch, seq, 2), the [start, end) characters of each token in
        its text, and ``word_ids`` int64 (batch, seq), the index of the word each token belongs
        to; both are 0 / -1 at special tokens and padding. For per-word predictions."""
        batch = self(texts, max_length=max_length)
        # The same settings the call above used, so the tokens line up one to one.
        if max_length is None:
            max_length = self.model_max_length
        encodings = self._backend_for(None if max_length is None else int(max_length)) \
            .encode_batch(check_texts(texts), add_special_tokens=True)
        shape = batch["input_ids"].shape
        offsets = np.zeros(shape + (2,), dtype=np.int64)
        word_ids = np.full(shape, -1, dtype=np.int64)
        for b, e in enumerate(encodings):
            for s, (word, special) in enumerate(zip(e.word_ids, e.special_tokens_mask)):
                if word is not None and not special:
                    word_ids[b, s] = word
                    offsets[b, s] = e.offsets[s]
        batch["offset_mapping"] = offsets
        batch["word_ids"] = word_ids
        return batch

    def prompt_length(self, prompt: str, max_length: Optional[int] = None) -> int:
        """Tokens a prompt takes at the front of a text: those of the prompt alone, leading
        special tokens included, less a trailing special token (sentence-transformers' count)."""
        encoding = self._backend_for(max_length).encode(check_texts(prompt, "prompt")[0])
        special = encoding.special_tokens_mask
        return len(encoding.ids) - (1 if special and special[-1] else 0)

    def token_to_id(self, token: str) -> Optional[int]:
        """The id of a vocabulary token (special tokens included), or None."""
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        """The vocabulary string of an id (``##ing`` for a WordPiece continuation), or None."""
        return self._backend.id_to_token(int(token_id))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids, special tokens skipped."""
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def tokenize(self, text: str) -> List[str]:
        """The tokens of one text, special tokens included (for inspection)."""
        return self._backend_for(None).encode(check_texts(text)[0]).tokens

    def __repr__(self) -> str:
        return (f"Tokenizer(vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length})")
