"""The Starlette app: the route table with errors turned into OpenAI-shaped answers and counted,
the API key and CORS middleware, and ``serve`` (uvicorn, graceful SIGTERM)."""

from __future__ import annotations

import contextlib
import hmac
import logging
import signal
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from . import config as defaults
from .config import ServerConfig
from .metrics import Metrics
from .openapi import DOCS_HTML, document
from .routes import ENDPOINTS
from .state import Endpoint, Service
from .validation import RequestError, error_response

log = logging.getLogger("pybert.server")

OPEN_PATHS = ("/health",)  # answered without an API key


class ApiKeyMiddleware:
    """Every request but ``OPEN_PATHS`` (and CORS preflights, which browsers send without
    credentials) must carry ``Authorization: Bearer KEY``; others get OpenAI's 401. The key is
    compared in constant time."""

    def __init__(self, app: Any, api_key: str):
        self.app = app
        self.key = api_key.encode("utf-8")

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS \
                and scope["method"] != "OPTIONS":
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.key):
                message = ("Incorrect API key provided" if given else
                           "You didn't provide an API key: send it in an Authorization header "
                           "as Bearer auth (Authorization: Bearer KEY)")
                await error_response(401, message, code="invalid_api_key")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route(endpoint: Endpoint, service: Service) -> Route:
    """``endpoint``'s handler with its errors turned into JSON answers and the request
    counted."""
    async def handle(request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await endpoint.handler(request, service)
        except RequestError as e:
            response = error_response(e.status, e.message, e.param, e.code)
        except Exception:
            log.exception("request to %s failed", endpoint.path)
            response = error_response(500, "internal error; the server log has the details")
        service.metrics.requests[(endpoint.path, response.status_code)] += 1
        service.metrics.request_seconds.observe(time.perf_counter() - start)
        return response
    return Route(endpoint.path, handle, methods=[endpoint.method])


def create_app(models: Union[Any, Dict[str, Any]], config: Optional[ServerConfig] = None,
               model_name: Optional[str] = None, *, api_key: Optional[str] = None,
               cors_allow_origins: Sequence[str] = ()) -> Starlette:
    """The Starlette app of the served models: ``{served name: task}`` (see ``load_task``), or
    one task served as ``model_name``. Its lifespan starts each model's batcher and, at
    shutdown, runs what is still queued before stopping."""
    if not isinstance(models, dict):
        models = {model_name or "pybert": models}
    config = config or ServerConfig()
    service = Service(models, config, Metrics())
    endpoints: List[Endpoint] = list(ENDPOINTS)

    async def openapi_json(request: Request, service: Service) -> Response:
        return JSONResponse(document(endpoints, __version__))

    async def docs(request: Request, service: Service) -> Response:
        return HTMLResponse(DOCS_HTML)

    endpoints += [Endpoint("/openapi.json", "GET", openapi_json, "This description.", "pybert",
                           None, {"type": "object"}),
                  Endpoint("/docs", "GET", docs, "Swagger UI of /openapi.json.", "pybert",
                           None, {"type": "string"}, "text/html")]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "error")
        if status == 404:
            detail = f"{detail}: no route {request.url.path}; GET /docs lists them"
        return error_response(status, f"{request.method} {request.url.path}: {detail}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        service.start()
        yield
        await service.close()

    middleware = []
    if cors_allow_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_allow_origins),
                                     allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))
    if api_key:
        middleware.append(Middleware(ApiKeyMiddleware, api_key=api_key))
    app = Starlette(routes=[_route(e, service) for e in endpoints], lifespan=lifespan,
                    middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app


def serve(models: Union[str, Dict[str, str]], task: Optional[str] = None,
          host: str = defaults.HOST, port: int = defaults.PORT,
          config: Optional[ServerConfig] = None, num_threads: Optional[int] = None,
          precision: str = "fp32", log_level: str = defaults.LOG_LEVEL,
          graceful_timeout: float = defaults.GRACEFUL_TIMEOUT_S,
          served_model_name: Optional[str] = None, api_key: Optional[str] = None,
          cors_allow_origins: Sequence[str] = ()) -> None:
    """Load the models and serve them until SIGINT/SIGTERM; in-flight requests are answered
    before the process exits (within ``graceful_timeout`` seconds).

    ``models``: one model directory (served as ``served_model_name``, default its own name, with
    ``task``, default detected), or ``{served name: "[TASK:]DIR"}``. All models share the CPUs
    through the core's thread budget (``num_threads`` each)."""
    import uvicorn

    from .tasks import load_task, parse_model_spec, served_name

    if isinstance(models, str):
        models = {served_model_name or served_name(models): (task, models)}
    else:
        models = {name: parse_model_spec(spec, task) for name, spec in models.items()}
    tasks = {name: load_task(path, model_task, num_threads, precision)
             for name, (model_task, path) in models.items()}
    app = create_app(tasks, config, api_key=api_key, cors_allow_origins=cors_allow_origins)
    # uvicorn handles SIGINT/SIGTERM itself, and once it has shut down gracefully it raises the
    # signal again for the handler it found: make that one a no-op, so the process exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=graceful_timeout)
