"""What the retrieval encoders share in reading a sentence-transformers directory: its module
list, the module configs, prompts and the tokenizer's length."""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .encoder import _read_json
from .tokenizer import Tokenizer, has_tokenizer_files


@dataclasses.dataclass
class Module:
    """One entry of modules.json: its class name (the last part of ``type``), its directory and
    its config.json (empty when it has none)."""

    kind: str
    type: str
    path: str
    config: Dict[str, Any]


def read_modules(path: str, encoder: str, supported: Sequence[str]) -> List[Module]:
    """The modules of a sentence-transformers directory, in order; a module whose class is not
    in ``supported`` is an error naming it and what ``encoder`` supports."""
    modules_file = os.path.join(path, "modules.json")
    if not os.path.isfile(modules_file):
        raise ValueError(f"{path!r} has no modules.json: {encoder} reads sentence-transformers "
                         f"directories ({', '.join(supported)})")
    modules = []
    for entry in _read_json(modules_file):
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        if kind not in supported:
            raise ValueError(f"{modules_file}: module {entry.get('name')!r} of type "
                             f"{entry.get('type')!r} is not supported by pybert's {encoder} "
                             f"(supported: {', '.join(supported)})")
        module_path = os.path.join(path, entry.get("path", ""))
        config_file = os.path.join(module_path, "config.json")
        config = _read_json(config_file) if entry.get("path") and os.path.isfile(config_file) \
            else {}
        modules.append(Module(kind, str(entry.get("type")), module_path, config))
    return modules


@dataclasses.dataclass
class Router:
    """A ``Router`` module (router_config.json): its routes' modules and how sentence-transformers
    picks a route for an encode call's ``task`` (the text modality only)."""

    routes: Dict[str, List[Module]]
    default_route: Optional[str]
    route_mappings: Dict[Tuple[Optional[str], Any], str]

    def resolve(self, task: Optional[str]) -> str:
        """The route for ``task`` as sentence-transformers' Router resolves it: the mappings
        (task, "text"), (task, any), (any, "text"), (any, any); then the route named ``task``;
        then, with no task, the default route."""
        for key in ((task, "text"), (task, None), (None, "text"), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task is not None and task in self.routes:
            return task
        if task is not None:
            raise ValueError(f"no route for task {task!r}; the model's routes are "
                             f"{sorted(self.routes)}")
        if self.default_route is None:
            raise ValueError("the model's Router has no default route: pass task= (one of "
                             f"{sorted(self.routes)}), or use encode_query / encode_document")
        return self.default_route


def read_router(path: str, encoder: str, supported: Sequence[str]) -> Router:
    """The Router saved in ``path`` (router_config.json and a folder per module); a module whose
    class is not in ``supported`` is an error naming it and what ``encoder`` supports."""
    config_file = os.path.join(path, "router_config.json")
    if not os.path.isfile(config_file):
        raise ValueError(f"{path!r} has a Router module but no router_config.json")
    config = _read_json(config_file)
    types, structure = config.get("types") or {}, config.get("structure") or {}
    routes: Dict[str, List[Module]] = {}
    for route, names in structure.items():
        routes[route] = []
        for name in names:
            if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
                raise ValueError(f"{config_file}: module folder {name!r} is outside the model")
            kind = str(types.get(name, "")).rsplit(".", 1)[-1]
            if kind not in supported:
                raise ValueError(f"{config_file}: module {name!r} of type {types.get(name)!r} in "
                                 f"route {route!r} is not supported by pybert's {encoder} "
                                 f"(supported in a Router: {', '.join(supported)})")
            module_path = os.path.join(path, name)
            module_config = os.path.join(module_path, "config.json")
            routes[route].append(Module(kind, str(types[name]), module_path,
                                        _read_json(module_config)
                                        if os.path.isfile(module_config) else {}))
    if not routes:
        raise ValueError(f"{config_file} has no routes")
    parameters = config.get("parameters") or {}
    default = parameters.get("default_route")
    if default is None and parameters.get("allow_empty_key", True):
        default = next(iter(routes))
    if default is not None and default not in routes:
        raise ValueError(f"{config_file}: default_route {default!r} is not one of the routes "
                         f"{sorted(routes)}")
    mappings: Dict[Tuple[Optional[str], Any], str] = {}
    for key, route in (parameters.get("route_mappings") or {}).items():
        try:  # saved as str((task, modality)), e.g. "('query', 'text')" or "(None, None)"
            task, modality = ast.literal_eval(key)
        except (ValueError, SyntaxError, TypeError):
            raise ValueError(f"{config_file}: route_mappings key {key!r} is not a "
                             "(task, modality) pair") from None
        if route not in routes:
            raise ValueError(f"{config_file}: route_mappings maps {key} to {route!r}, not one "
                             f"of the routes {sorted(routes)}")
        if modality in (None, "text"):  # pybert encodes text only
            mappings[(task, modality)] = route
    return Router(routes, default, mappings)


def model_config(path: str) -> Dict[str, Any]:
    """config_sentence_transformers.json (prompts, default_prompt_name, ...), or {}."""
    file = os.path.join(path, "config_sentence_transformers.json")
    return _read_json(file) if os.path.isfile(file) else {}


def transformer_config(transformer_path: str) -> Dict[str, Any]:
    """sentence_bert_config.json of the Transformer module, or {}."""
    file = os.path.join(transformer_path, "sentence_bert_config.json")
    return _read_json(file) if os.path.isfile(file) else {}


def load_tokenizer(transformer_path: str, st_config: Dict[str, Any]) -> Tokenizer:
    if not has_tokenizer_files(transformer_path):
        raise FileNotFoundError(f"no tokenizer in {transformer_path!r}: looked for "
                                "tokenizer.json and vocab.txt")
    tokenizer = Tokenizer.from_pretrained(transformer_path)
    return tokenizer.lowercased() if st_config.get("do_lower_case") else tokenizer


def max_seq_length(st_config: Dict[str, Any], tokenizer: Tokenizer, model: Any) -> int:
    """sentence_bert_config.json's max_seq_length, else the tokenizer's limit capped by the
    position table (as SentenceEncoder)."""
    length = st_config.get("max_seq_length")
    if length is None:
        length = model.config.max_position_embeddings
        if tokenizer.model_max_length is not None:
            length = min(length, tokenizer.model_max_length)
    return int(length)


class Prompts:
    """sentence-transformers' prompts: ``prompts`` and ``default_prompt_name`` from
    config_sentence_transformers.json (or the constructor), resolved as its encode methods do."""

    def __init__(self, saved: Dict[str, Any], prompts: Optional[Dict[str, str]],
                 default_prompt_name: Optional[str]):
        self.prompts: Dict[str, str] = dict(saved.get("prompts") or {})
        if prompts is not None:
            self.prompts.update(prompts)
        self.default_prompt_name = default_prompt_name if default_prompt_name is not None \
            else saved.get("default_prompt_name")

    def resolve(self, prompt: Optional[str], prompt_name: Optional[str]) -> str:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            raise ValueError(f"prompt_name {name!r} not found; the model has prompts "
                             f"{sorted(self.prompts)}")
        return self.prompts[name] or ""

    def for_query(self, prompt: Optional[str], prompt_name: Optional[str]) -> str:
        if prompt is None and prompt_name is None and "query" in self.prompts:
            prompt_name = "query"
        return self.resolve(prompt, prompt_name)

    def for_document(self, prompt: Optional[str], prompt_name: Optional[str]) -> str:
        if prompt is None and prompt_name is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts),
                               None)
        return self.resolve(prompt, prompt_name)


def similarity_name(value: Any, supported: Sequence[str]) -> str:
    """A similarity_fn_name the encoder's ``similarity`` computes, or a ValueError."""
    if value not in supported:
        raise ValueError(f"similarity_fn_name {value!r} is not supported (supported: "
                         f"{', '.join(supported)})")
    return value


def check_dir(path: Any) -> str:
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model directory {path!r} does not exist")
    return path


__all__ = ["Module", "Router", "read_router", "read_modules", "model_config", "transformer_config", "load_tokenizer",
           "max_seq_length", "Prompts", "similarity_name", "check_dir"]
