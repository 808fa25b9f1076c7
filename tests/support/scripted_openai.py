"""A scripted OpenAI-compatible chat server on loopback: real HTTP, answering each chat completion with the next
scripted model output.

It stands in for a model in the safety scenarios: the real ``openai`` backend sends its real request (messages with
the case's images as data URLs, ``response_format`` json_schema with the retrieved passage ids as an enum) and gets
back what the scenario says the model wrote. The server checks the request carries the constrained-output schema,
fills ``citation_ids`` from the schema's enum when the scripted output cites nothing (a constrained decoder could not
do otherwise), and validates its answer against the schema it received, so a scripted report a real decoder could
not have produced fails loudly instead of testing nothing.
"""

from __future__ import annotations

import collections
import http.server
import json
import threading
import time
from typing import Any

import jsonschema
import referencing

from support.net import send_whole


class ScriptedOpenAI:
    def __init__(self, model: str = "scripted") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._replies: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model",
                                                                  "owned_by": "tests"}]})
                else:
                    self._send(404, {"error": {"message": "not found", "type": "not_found", "param": None,
                                               "code": None}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                status, answer = server._complete(body)
                if status == 200 and body.get("stream"):
                    self._stream(answer)
                else:
                    self._send(status, answer)

            def _stream(self, completion: dict[str, Any]) -> None:
                """The completion as server-sent events, as the backend asks (it streams so that it can cancel):
                one chunk with the whole text and the finish reason, one with the usage, then [DONE]."""
                choice = completion["choices"][0]
                base = {key: completion[key] for key in ("id", "created", "model")}
                base["object"] = "chat.completion.chunk"
                delta = {"role": "assistant", "content": choice["message"]["content"]}
                events = [
                    base | {"choices": [{"index": 0, "delta": delta, "finish_reason": choice["finish_reason"]}]},
                    base | {"choices": [], "usage": completion["usage"]},
                ]
                data = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"
                send_whole(self, 200, data, "text/event-stream")

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                send_whole(self, status, json.dumps(payload).encode(), "application/json")

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def script(self, draft: dict[str, Any]) -> None:
        """Queue the next model output (a ``ReportDraft`` as a dict)."""
        with self._lock:
            self._replies.append(draft)

    def _complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            draft = self._replies.popleft() if self._replies else None
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt.get("type") != "json_schema" or not schema:
            return 400, _error("the request carries no json_schema response_format")
        if draft is None:
            return 500, _error("no scripted reply queued")
        draft = json.loads(json.dumps(draft))
        enum = schema["$defs"]["DraftDifferentialItem"]["properties"]["citation_ids"]["items"].get("enum")
        for item in draft["differential"]:
            if enum and not item.get("citation_ids"):
                item["citation_ids"] = [enum[0]]
        validator = jsonschema.Draft202012Validator(schema, registry=referencing.Registry())
        problems = sorted(validator.iter_errors(draft), key=lambda e: list(e.path))
        if problems:
            return 400, _error(f"the scripted reply violates the request's schema: {problems[0].message[:200]}")
        text = json.dumps(draft, separators=(",", ":"))
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
