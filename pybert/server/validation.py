"""Request validation: the body as a JSON object, its fields checked one by one, and every client
mistake a ``RequestError`` answered in OpenAI's error shape."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from starlette.requests import Request
from starlette.responses import JSONResponse

TOKEN_IDS_HINT = (
    "this server takes text, not token ids: ids from another tokenizer (e.g. tiktoken's, which "
    "LangChain's OpenAIEmbeddings sends by default) mean nothing to this model's vocabulary. "
    "Send strings; with LangChain, create OpenAIEmbeddings(..., check_embedding_ctx_length=False)")


class RequestError(Exception):
    """A client error, answered with ``status`` and OpenAI's error body: ``param`` names the
    field at fault (or None), ``code`` is a short machine-readable string (or None)."""

    def __init__(self, status: int, message: str, *, param: Optional[str] = None,
                 code: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(status: int, message: str, param: Optional[str] = None,
               code: Optional[str] = None) -> Dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI's API answers."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, param: Optional[str] = None,
                   code: Optional[str] = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "number", float: "number", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


async def read_json(request: Request, limit: int) -> Dict[str, Any]:
    """The request body as a JSON object; 413 past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared!r} is not a byte count")
        if int(declared) > limit:
            raise RequestError(413, f"the request body has {declared} bytes; the limit is "
                                    f"{limit} (--max-body-bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"the request body is over the limit of {limit} bytes "
                                    "(--max-body-bytes)")
    if not body:
        raise RequestError(400, "the request body is empty; expected a JSON object")
    try:
        payload = json.loads(bytes(body))
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, absurd nesting
        raise RequestError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"the request body must be a JSON object, got "
                                f"{json_type(payload)}")
    return payload


def check_fields(payload: Dict[str, Any], required: Union[str, Sequence[str]],
                 allowed: Sequence[str] = ()) -> None:
    """Every ``required`` field present, no field outside ``required`` and ``allowed``."""
    required = (required,) if isinstance(required, str) else tuple(required)
    for name in required:
        if name not in payload:
            raise RequestError(400, f"missing field {name!r}", param=name)
    unknown = sorted(set(payload) - {*required, *allowed})
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; expected "
                                + ", ".join(repr(f) for f in (*required, *allowed)),
                           param=unknown[0])


def _is_token_ids(item: Any) -> bool:
    """An integer, or a non-empty array of integers: what OpenAI's API takes as token ids."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)
    return is_int(item) or (isinstance(item, list) and bool(item) and all(map(is_int, item)))


def check_count(n: int, field: str, max_inputs: int) -> None:
    """413 for more than ``max_inputs`` inputs in one request."""
    if n > max_inputs:
        raise RequestError(413, f"{field!r} has {n} inputs; one request may send at most "
                                f"{max_inputs} (--max-inputs): split it", param=field)


def request_texts(value: Any, field: str, max_inputs: int, *, pairs: bool = False
                  ) -> Tuple[List[str], Optional[List[str]]]:
    """A string or a non-empty list of non-empty strings; with ``pairs``, the list may instead
    hold [text, text_pair] arrays (all of them, when the first is one). Returns (texts,
    text_pairs or None). Token ids (integers or arrays of them) are refused with a message
    that says why and what to send instead."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RequestError(400, f"{field!r} must be a string or an array of strings"
                                + (" or of [text, text_pair] arrays" if pairs else "")
                                + f", got {json_type(value)}", param=field)
    if not items:
        raise RequestError(400, f"{field!r} is an empty array; send at least one input",
                           param=field)
    if _is_token_ids(items) or _is_token_ids(items[0]):
        raise RequestError(400, f"{field!r} holds token ids (arrays of integers); "
                                + TOKEN_IDS_HINT, param=field, code="token_ids_not_supported")
    check_count(len(items), field, max_inputs)
    with_pairs = pairs and isinstance(items[0], list)
    for i, item in enumerate(items):
        if with_pairs:
            if not (isinstance(item, list) and len(item) == 2
                    and all(isinstance(part, str) for part in item)):
                kinds = (", ".join(json_type(part) for part in item)
                         if isinstance(item, list) else "")
                raise RequestError(400, f"{field}[{i}] must be a [text, text_pair] array of "
                                        f"two strings, as {field}[0] is; got "
                                        f"{json_type(item)} [{kinds}]", param=field)
        elif not isinstance(item, str):
            raise RequestError(400, f"{field}[{i}] must be a string, got {json_type(item)}",
                               param=field)
        if "" in (item if with_pairs else [item]):
            raise RequestError(400, f"{field}[{i}] is or holds an empty string", param=field)
    if with_pairs:
        return [item[0] for item in items], [item[1] for item in items]
    return list(items), None


def documents(value: Any, field: str, max_inputs: int) -> List[str]:
    """Rerank documents: a non-empty array of strings or of ``{"text": str}`` objects (Jina's and
    Cohere's APIs take both)."""
    if isinstance(value, list):
        value = [d["text"] if isinstance(d, dict) and set(d) == {"text"} else d for d in value]
    texts, _ = request_texts(value, field, max_inputs)
    if isinstance(value, str):
        raise RequestError(400, f"{field!r} must be an array of strings, got string", param=field)
    return texts


def optional(payload: Dict[str, Any], name: str, kind: type, default: Any = None, *,
             minimum: Optional[int] = None, maximum: Optional[int] = None) -> Any:
    """Field ``name`` of type ``kind`` (bool, int or str), ``default`` when absent or null;
    integers within [minimum, maximum]."""
    value = payload.get(name)
    if value is None:
        return default
    wrong = isinstance(value, bool) != (kind is bool) or not isinstance(value, kind)
    if wrong:
        expected = {bool: "a boolean", int: "an integer", str: "a string"}[kind]
        raise RequestError(400, f"{name!r} must be {expected}, got {json_type(value)}",
                           param=name)
    if kind is int and ((minimum is not None and value < minimum)
                        or (maximum is not None and value > maximum)):
        bounds = (f"from {minimum} to {maximum}" if maximum is not None
                  else f"at least {minimum}")
        raise RequestError(400, f"{name!r} must be an integer {bounds}, got {value}", param=name)
    return value


def choice(payload: Dict[str, Any], name: str, choices: Sequence[str], default: str) -> str:
    """A string field that must be one of ``choices`` (compared without case: TEI's clients send
    "left" where its schema says "Left")."""
    value = optional(payload, name, str, default)
    for c in choices:
        if value.lower() == c.lower():
            return c
    raise RequestError(400, f"{name!r} must be one of {', '.join(map(repr, choices))}, got "
                            f"{value!r}", param=name)
