"""Any OpenAI-compatible chat server: a `vllm` server, a hosted model, or dermassist's own endpoint.

Images travel as base64 PNG data URLs of the already-cleaned pixels (no metadata leaves this process); the report
schema goes as ``response_format`` json_schema. Requests go through the SDK's plain ``post`` (its retries, errors
and response types) rather than ``chat.completions.create``, whose recursive re-typing of the request's messages
(image data URLs included) cost about 2 ms of CPU per call on this project's machine: a third of what the HTTP
endpoint adds to a request (docs/serving.md). Against a vLLM server start it with
``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'`` (``dermassist
vllm-args`` prints the full command) to get the same compact JSON as the in-process backends.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from assistant.backends.base import BackendConfig, GenerationOutcome, GenerationRequest, GenerationResult
from assistant.backends.common import engine_error
from assistant.core.errors import BackendError, ConfigError, ContextLengthError, DermassistError, GenerationCancelled
from assistant.core.messages import ChatMessage, ImagePart

T = TypeVar("T")


class OpenAIBackend:
    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        import openai
        from openai import Stream
        from openai.types.chat import ChatCompletionChunk

        self._chunk_type, self._stream_type = ChatCompletionChunk, Stream

        if not config.base_url:
            raise ConfigError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        self.config = config
        self.client = openai.OpenAI(base_url=config.base_url,
                                    api_key=config.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
                                    timeout=config.timeout_s, max_retries=1)

    def _served_name(self, adapter: str | None) -> str:
        if adapter is None:
            return self.config.model
        self.config.check_adapter(adapter)
        return self.config.adapters[adapter] or adapter  # the served LoRA name (vLLM --lora-modules NAME=PATH)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Streamed from the upstream, so that a cancelled request closes the connection at the next token (vLLM
        and OpenAI abort a generation whose client has gone) instead of running to ``max_tokens``."""
        kwargs: dict = dict(model=self._served_name(request.adapter), messages=openai_messages(request.messages),
                            max_tokens=request.max_new_tokens, temperature=request.temperature,
                            top_p=request.top_p, seed=request.seed, stream=True,
                            stream_options={"include_usage": True})
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "dermassist_report", "schema": request.json_schema,
                                                         "strict": True}}
        what = f"the model server at {self.config.base_url}"
        try:
            result = call_openai(lambda: self._collect(kwargs, request), what)
        except UpstreamStatusError as exc:
            error = engine_error(exc, what)
            if exc.status_code == 400 and isinstance(error, ContextLengthError):
                raise error from None  # the prompt does not fit the upstream's context: the caller's to fix
            raise
        if result is None:
            raise GenerationCancelled("generation was cancelled; the upstream request was closed")
        return result

    def _collect(self, kwargs: dict, request: GenerationRequest) -> GenerationResult | None:
        """The streamed answer put together, or None when ``request.cancel`` was set (the stream is closed)."""
        pieces: list[str] = []
        finish, usage, model = None, None, self.config.model
        # The SDK's plain post: ``chat.completions.create`` would re-type every message (images included) per call.
        with self.client.post("/chat/completions", body=kwargs, cast_to=self._chunk_type, stream=True,
                              stream_cls=self._stream_type[self._chunk_type]) as stream:
            for chunk in stream:
                if request.cancel is not None and request.cancel.is_set():
                    return None  # leaving the block closes the connection: the upstream aborts the generation
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices[:1]:
                    pieces.append(choice.delta.content or "")
                    finish = choice.finish_reason or finish
        return GenerationResult(text="".join(pieces), model=model, adapter=request.adapter,
                                prompt_tokens=usage.prompt_tokens if usage else 0,
                                completion_tokens=usage.completion_tokens if usage else 0,
                                finish_reason=finish or "stop")

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        """``max_batch_size`` requests in flight at once: the server (vLLM) batches what arrives together."""

        def one(request: GenerationRequest) -> GenerationOutcome:
            if request.cancel is not None and request.cancel.is_set():
                return GenerationCancelled("the request was cancelled before generation finished")
            try:
                return self.generate(request)
            except DermassistError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, min(self.config.max_batch_size, len(requests))),
                                thread_name_prefix="dermassist-openai") as pool:
            return list(pool.map(one, requests))

    def close(self) -> None:
        self.client.close()


def openai_messages(messages: tuple[ChatMessage, ...]) -> list[dict]:
    out = []
    for message in messages:
        content = []
        for part in message.parts:
            if isinstance(part, ImagePart):
                url = "data:image/png;base64," + base64.b64encode(part.image.png_bytes()).decode("ascii")
                content.append({"type": "image_url", "image_url": {"url": url}})
            else:
                content.append({"type": "text", "text": part.text})
        out.append({"role": message.role, "content": content})
    return out


class UpstreamStatusError(BackendError):
    """An OpenAI-compatible server answered with an error status (kept, so callers can tell 4xx from 5xx)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def call_openai(fn: Callable[[], T], what: str) -> T:
    """Run one openai-SDK call; its errors become one-line ``BackendError``s naming ``what`` (a server, a judge)."""
    import openai

    try:
        return fn()
    except openai.APITimeoutError:  # a subclass of APIConnectionError: first
        raise BackendError(f"{what} timed out") from None
    except openai.APIConnectionError:
        raise BackendError(f"cannot reach {what}") from None
    except openai.APIStatusError as exc:
        raise UpstreamStatusError(f"{what} answered {exc.status_code}: {_message(exc)}", exc.status_code) from None


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error", {}).get("message") or "")[:200]
    return str(exc)[:200]
