"""BertConfig: the fields of a Hugging Face ``config.json``, with BERT's names.

The BERT family's configs (RoBERTa, XLM-R, DistilBERT, ELECTRA, ALBERT, Megatron-BERT) load into
the same class: ``model_type`` picks the family, DistilBERT's own field names are mapped to
BERT's, and fields a family's config.json may leave out get that family's default."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

from . import _core

__all__ = ["BertConfig"]

# DistilBERT's config.json names -> BERT's.
_DISTILBERT_NAMES = {"dim": "hidden_size", "n_heads": "num_attention_heads",
                     "n_layers": "num_hidden_layers", "hidden_dim": "intermediate_size",
                     "activation": "hidden_act"}

# transformers' defaults where a family's differ from BERT's, for fields a config.json omits.
_FAMILY_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "roberta": {"pad_token_id": 1},
    "xlm-roberta": {"pad_token_id": 1},
    "distilbert": {"type_vocab_size": 0},  # no token types
    "electra": {"embedding_size": 128},
    "albert": {"embedding_size": 128, "hidden_act": "gelu_new", "vocab_size": 30000},
}


@dataclasses.dataclass
class BertConfig:
    """A BERT ``config.json``. Unknown keys are kept in ``extra``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"
    model_type: str = "bert"
    embedding_size: Optional[int] = None  # ALBERT, ELECTRA: factorized embeddings
    num_hidden_groups: int = 1            # ALBERT: layer weight sets shared by all layers
    inner_group_num: int = 1              # ALBERT: layers per group
    architectures: Optional[List[str]] = None
    id2label: Optional[Dict[int, str]] = None
    label2id: Optional[Dict[str, int]] = None
    problem_type: Optional[str] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "BertConfig":
        if not isinstance(values, dict):
            raise ValueError(f"a config must be a JSON object, got {type(values).__name__}")
        values = dict(values)
        model_type = values.get("model_type", "bert")
        if model_type == "distilbert":
            for theirs, ours in _DISTILBERT_NAMES.items():
                if theirs in values:
                    values[ours] = values.pop(theirs)
        for name, default in _FAMILY_DEFAULTS.get(model_type, {}).items():
            values.setdefault(name, default)
        if model_type == "distilbert":
            values["type_vocab_size"] = 0
        if values.get("pad_token_id", 0) is None:
            values["pad_token_id"] = 0
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names}
        config = cls(**known, extra=extra)
        if config.id2label is not None:
            config.id2label = {int(k): v for k, v in config.id2label.items()}
        config.validate()
        return config

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BertConfig":
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        return cls.from_dict(values)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "BertConfig":
        """Read ``config.json`` from a model directory."""
        file = os.path.join(path, "config.json")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no config.json in {os.fspath(path)!r}")
        return cls.from_json_file(file)

    def validate(self) -> None:
        """Raise ValueError if this config cannot describe a model pybert runs."""
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "pad_token_id", "num_hidden_groups", "inner_group_num"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"config {name} must be an integer, got {value!r}")
        if self.embedding_size is not None and (not isinstance(self.embedding_size, int)
                                                or isinstance(self.embedding_size, bool)
                                                or self.embedding_size <= 0):
            raise ValueError(f"config embedding_size must be a positive integer, "
                             f"got {self.embedding_size!r}")
        if self.inner_group_num != 1:
            raise ValueError(f"config inner_group_num {self.inner_group_num} is not supported: "
                             "pybert runs ALBERT with one layer per group (inner_group_num 1)")
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"position_embedding_type {self.position_embedding_type!r} is not supported; "
                "pybert runs 'absolute' position embeddings")
        self.to_core().validate()

    def to_core(self) -> "_core.BertConfig":
        core = _core.BertConfig()
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "hidden_act", "model_type", "pad_token_id", "num_hidden_groups"):
            setattr(core, name, getattr(self, name))
        core.embedding_size = self.embedding_size or 0
        core.layer_norm_eps = float(self.layer_norm_eps)
        return core

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d
