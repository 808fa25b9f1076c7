"""API key and body-size checks, as ASGI middleware: they run before a request body is read or parsed.

The key is compared in constant time (``hmac.compare_digest``) over fixed-length digests, so neither the key's
content nor its length leaks through timing. ``/health`` stays open (load balancers probe it without a key).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from assistant.serving.errors import error_body

OPEN_PATHS = frozenset({"/health"})


def key_matches(provided: str | None, expected: str) -> bool:
    if not provided:
        return False
    a = hashlib.sha256(provided.encode("utf-8", "surrogateescape")).digest()
    b = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(a, b)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    for name, value in headers:
        if name.lower() == b"x-api-key":
            return value.decode("latin-1").strip()
    return None


async def send_error(send, status: int, message: str, kind: str, extra_headers: list | None = None) -> None:
    body = json.dumps(error_body(message, kind, status)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """401 without the right key; 413 when the body is larger than ``max_body_bytes`` (declared or streamed)."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = scope.get("headers", [])
        if self.api_key and path not in OPEN_PATHS and not key_matches(bearer_token(headers), self.api_key):
            return await send_error(send, 401, "missing or invalid API key (send 'Authorization: Bearer KEY')",
                                    "invalid_api_key", [(b"www-authenticate", b"Bearer")])
        limit = self.max_body_bytes
        declared = [value for name, value in headers if name == b"content-length"]
        if declared:
            if not declared[0].isdigit() or int(declared[0]) > limit:
                return await send_error(send, 413, f"request body is larger than {_size(limit)}",
                                        "request_too_large")
            return await self.app(scope, receive, send)  # the HTTP server enforces the declared length
        # Chunked upload: buffer it here under the cap, then replay it, so nothing has been sent when we refuse.
        chunks, received, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = message.get("more_body", False)
            if received > limit:
                return await send_error(send, 413, f"request body is larger than {_size(limit)}",
                                        "request_too_large")
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"
