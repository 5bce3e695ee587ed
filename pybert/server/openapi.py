"""``GET /openapi.json`` (OpenAPI 3.0, written from the route table) and ``GET /docs`` (Swagger
UI, loaded from a CDN by the browser)."""

from __future__ import annotations

from typing import Any, Dict, List

from .routes import schemas
from .state import Endpoint

STATUSES = {400: "Malformed request: bad JSON, missing, unknown or mistyped fields",
            401: "Missing or wrong API key (--api-key)",
            404: "Unknown model (code model_not_found) or path",
            413: "Body, inputs or tokens over the server's limits",
            503: "Queue full or shutting down"}

DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>pybert serve</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
</body></html>
"""


def document(endpoints: List[Endpoint], version: str) -> Dict[str, Any]:
    """The OpenAPI description of ``endpoints``: each one's request body and answers."""
    paths: Dict[str, Dict[str, Any]] = {}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for e in endpoints:
        path = e.path.replace(":path}", "}")
        operation: Dict[str, Any] = {
            "summary": e.summary, "tags": [e.tag],
            "operationId": e.method.lower() + (path.strip("/").replace("/", "_")
                                               .replace("{", "").replace("}", "") or "_root"),
            "responses": {"200": {"description": "OK"}}}
        if e.response is not None:
            operation["responses"]["200"]["content"] = {e.media_type: {"schema": e.response}}
        if e.request is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": e.request}}}
        for status, text in STATUSES.items():
            if e.request is not None or status in (401, 404):
                operation["responses"][str(status)] = {"description": text, "content": error}
        if "{" in path:
            operation["parameters"] = [{"name": "model", "in": "path", "required": True,
                                        "schema": {"type": "string"}}]
        if path == "/health":
            operation["security"] = []
        paths.setdefault(path, {})[e.method.lower()] = operation
    return {"openapi": "3.0.3",
            "info": {"title": "pybert serve", "version": version,
                     "description": "Embeddings, classification, reranking and sparse vectors "
                                    "with the APIs of OpenAI, Hugging Face TEI, Jina and "
                                    "Cohere."},
            "paths": paths,
            "components": {"schemas": {"Error": schemas.ERROR},
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]}
