"""BertConfig: the fields of a Hugging Face ``config.json``, with their names."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

from . import _core

__all__ = ["BertConfig"]


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
    architectures: Optional[List[str]] = None
    id2label: Optional[Dict[int, str]] = None
    label2id: Optional[Dict[str, int]] = None
    problem_type: Optional[str] = None
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "BertConfig":
        if not isinstance(values, dict):
            raise ValueError(f"a config must be a JSON object, got {type(values).__name__}")
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
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"config {name} must be an integer, got {value!r}")
        if self.position_embedding_type != "absolute":
            raise ValueError(
                f"position_embedding_type {self.position_embedding_type!r} is not supported; "
                "pybert runs 'absolute' position embeddings")
        self.to_core().validate()

    def to_core(self) -> "_core.BertConfig":
        core = _core.BertConfig()
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "hidden_act"):
            setattr(core, name, getattr(self, name))
        core.layer_norm_eps = float(self.layer_norm_eps)
        return core

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d
