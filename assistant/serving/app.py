"""The FastAPI application: routers, the runtime (limiter + worker threads), middleware and error handlers.

``create_app(service)`` takes a ready ``ServingService`` (the pipeline is built before the server binds its
port, so a bad model or backend fails the command with one clear line instead of a half-started server).
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import __version__
from assistant.core.errors import DermassistError
from assistant.serving.errors import error_body, status_for
from assistant.serving.limits import ConcurrencyLimiter
from assistant.serving.logging import log_backend_error, log_internal_error, log_request
from assistant.serving.metrics import Metrics
from assistant.serving.protocol import ChatCompletionRequest, validation_message
from assistant.serving.routes import router
from assistant.serving.security import GuardMiddleware, send_error
from assistant.serving.service import ServingService

RETRY_AFTER_S = 1  # what a 429 tells clients (the openai SDK waits this long before its retry)
BACKEND_FAILED = "the model backend failed or is unavailable; retry later"


def error_response(message: str, kind: str, status: int, param: str | None = None,
                   state=None) -> JSONResponse:
    if state is not None:
        state.error_kind = kind
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 429 else None
    return JSONResponse(error_body(message, kind, status, param), status_code=status, headers=headers)


def dermassist_error_response(exc: DermassistError, state) -> JSONResponse:
    """A user error as it is; an engine fault without the engine's words (they are for the log, not the client)."""
    message = str(exc)
    if exc.kind == "backend_unavailable":
        log_backend_error(getattr(state, "request_id", "-"), exc)
        message = BACKEND_FAILED
    return error_response(message, exc.kind, status_for(exc), getattr(exc, "param", None), state)


class Runtime:
    """What the routers call: the service behind the concurrency limit, in worker threads, with metrics."""

    def __init__(self, service: ServingService, metrics: Metrics) -> None:
        self.service = service
        self.metrics = metrics
        config = service.config
        self.limiter = ConcurrencyLimiter(config.max_concurrency, config.max_queue)
        self.threads = anyio.CapacityLimiter(config.max_concurrency)
        metrics.queued.set_function(lambda: self.limiter.waiting)

    async def chat_completion(self, body: ChatCompletionRequest, request: Request):
        """A finished ``ChatCompletionResponse``, an SSE event iterator (stream) or an error ``JSONResponse``.

        While it waits for a slot or works, a watcher listens for the client going away: then a queued request
        leaves the queue at once and a running one is cancelled (``Prepared.cancel``: the backend stops at the
        next token), answered 499 in the log instead of being generated for nobody.
        """
        state = request.state
        cancel = threading.Event()
        result = None
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                cancel.set()
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            try:
                result = await self._complete(body, state, cancel)
            finally:
                group.cancel_scope.cancel()
        if result is None:
            return error_response("the client closed the request", "cancelled", 499, state=state)
        return result

    async def _complete(self, body: ChatCompletionRequest, state, cancel: threading.Event):
        try:
            async with self.limiter.slot():
                prepared = await anyio.to_thread.run_sync(self.service.prepare, body, limiter=self.threads)
                prepared.cancel = cancel
                state.log = prepared.log
                response = await anyio.to_thread.run_sync(self.service.execute, prepared, limiter=self.threads)
        except DermassistError as exc:
            return dermassist_error_response(exc, state)
        except Exception as exc:  # a bug: say so without internals; the log gets type and code locations only
            log_internal_error(getattr(state, "request_id", "-"), exc)
            return error_response("internal error", "internal_error", 500, state=state)
        self.metrics.completions.labels(body.model, prepared.task).inc()
        if body.stream:
            return self.service.sse_events(response, prepared.include_usage)
        return response

    def health(self) -> tuple[int, dict]:
        if self.limiter.closing:
            return 503, {"status": "shutting_down"}
        body = {"status": "ok" if self.service.backend_ok else "degraded", "version": __version__,
                "backend": self.service.pipeline.backend.name, "running": self.limiter.running,
                "queued": self.limiter.waiting}
        return (200 if self.service.backend_ok else 503), body


class ObserveMiddleware:
    """Request id, metrics and one PHI-free log line per request; the last safety net for unhandled errors."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        route = Metrics.route(scope.get("path", ""))
        status, started = 500, False
        t0 = time.perf_counter()

        async def observed_send(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed_send)
        except Exception as exc:
            log_internal_error(request_id, exc)
            if not started:
                await send_error(send, 500, "internal error", "internal_error")
            status = 500
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - t0
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            kind = state.get("error_kind") or (None if status < 400 else _kind_for_status(status))
            if kind:
                self.metrics.errors.labels(kind).inc()
            log_request(request_id=request_id, method=scope.get("method"), route=route, status=status,
                        ms=round(elapsed * 1000, 1), error=kind, **state.get("log", {}))


def _kind_for_status(status: int) -> str:
    return {401: "authentication_error", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
            422: "invalid_request", 400: "invalid_request"}.get(status, "internal_error" if status >= 500 else
                                                                 "invalid_request")


def create_app(service: ServingService) -> FastAPI:
    metrics = Metrics()
    runtime = Runtime(service, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            runtime.limiter.closing = True  # new requests: 503; uvicorn lets running ones finish
            await anyio.to_thread.run_sync(service.close)

    app = FastAPI(title="dermassist", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    app.state.runtime = runtime
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        return error_response(validation_message(list(exc.errors())), "invalid_request", 400, state=request.state)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, "invalid request")
        return error_response(message, kind, exc.status_code, state=request.state)

    @app.exception_handler(DermassistError)
    async def _dermassist(request, exc: DermassistError):
        return dermassist_error_response(exc, request.state)

    # Outermost first at run time: Observe (metrics, logs, safety net) → Guard (key, body size) → routes.
    app.add_middleware(GuardMiddleware, api_key=service.config.api_key,
                       max_body_bytes=service.config.max_body_bytes)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    return app
