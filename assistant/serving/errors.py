"""HTTP errors: every refusal is an OpenAI-shaped ``{"error": {...}}`` body with a user-safe message.

``DermassistError`` kinds map to status codes here; anything that is not a ``DermassistError`` is a bug and is
answered 500 "internal error" with no traceback, path or library message.
"""

from __future__ import annotations

from assistant.core.errors import DermassistError

STATUS_BY_KIND = {
    "invalid_image": 400,
    "invalid_case": 400,
    "invalid_request": 400,
    "invalid_config": 400,  # e.g. an unknown adapter named by a request
    "authentication_error": 401,
    "model_not_found": 404,
    "request_too_large": 413,
    "rate_limited": 429,
    "retrieval_error": 503,
    "backend_unavailable": 503,
    "shutting_down": 503,
    "invalid_model_output": 502,  # the model never produced a valid report: fail closed
    "context_length_exceeded": 400,  # the prompt does not fit the model: the client's to shorten, not an outage
    "max_tokens_too_small": 400,  # the client's token budget cut the report off: a 5xx would make SDKs retry it
    "cancelled": 499,  # the client went away (nginx's code; nobody receives it, the log and metrics do)
}


class ServingError(DermassistError):
    """A refusal raised by the HTTP layer; ``kind`` picks the status code, ``param`` names the request field."""

    def __init__(self, message: str, kind: str = "invalid_request", param: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.param = param


def status_for(exc: DermassistError) -> int:
    return STATUS_BY_KIND.get(exc.kind, 400)


def error_body(message: str, kind: str, status: int, param: str | None = None) -> dict:
    """The OpenAI error shape. ``type`` follows OpenAI's families, ``code`` is dermassist's error kind."""
    if status == 401:
        family = "authentication_error"
    elif status == 404:
        family = "not_found_error"
    elif status == 429:
        family = "rate_limit_error"
    elif status >= 500:
        family = "server_error" if status != 503 else "service_unavailable_error"
    else:
        family = "invalid_request_error"
    return {"error": {"message": message, "type": family, "param": param, "code": kind}}
