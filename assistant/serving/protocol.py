"""The OpenAI chat-completions wire format, as much of it as dermassist serves, plus our ``metadata`` field.

Requests are validated here (shape only); ``service`` decides what they mean. Unknown request fields are
ignored, as OpenAI-compatible servers do; the known ones that would change the answer and cannot be honoured
(tools, ``tool_choice``, ``n`` > 1, logprobs, ``stop``, penalties, ``logit_bias``) are declared here so that
``service`` refuses them with a clear message instead of silently dropping them. ``null`` means "the default", as
in OpenAI's API. Text with an unpaired UTF-16 surrogate (``"\\ud800"``) is refused here: it cannot be encoded.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

_SURROGATE = re.compile("[\ud800-\udfff]")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Lenient):
    url: str = Field(max_length=64 * 1024 * 1024)
    detail: str | None = None


class TextContentPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageContentPart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = TextContentPart | ImageContentPart


class ChatMessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _image_url_is_an_object(cls, content: Any) -> Any:
        """``{"type": "image_url", "image_url": "data:..."}`` is a common slip: say so instead of a union error."""
        if isinstance(content, list):
            for i, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url" and isinstance(part.get("image_url"),
                                                                                            str):
                    raise PydanticCustomError(
                        "image_url_string", "content part {index}: image_url must be an object with a url field "
                        '("image_url": {"url": "data:image/png;base64,..."}), not a plain string', {"index": i})
        return content

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextContentPart))

    def image_urls(self) -> list[str]:
        if not isinstance(self.content, list):
            return []
        return [p.image_url.url for p in self.content if isinstance(p, ImageContentPart)]


class JSONSchemaFormat(_Lenient):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    """``metadata`` carries the structured clinical context (see docs/serving.md):

    ``{"clinical_context": {"age": 54, "sex": "female", "fitzpatrick": "II", "body_site": "left forearm",
    "duration": "3 months", "symptoms": ["itch", "bleeding"], "history": "...", "medications": ["..."]},
    "modality": "dermoscopy"}``; ``clinical_context`` may also be a JSON string, and every context field may be
    given flat as a string (OpenAI's own ``metadata`` is string → string), e.g. ``{"age": "54",
    "symptoms": "itch,bleeding"}``.
    """

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    metadata: dict[str, Any] | None = None
    n: int = 1
    # Accepted for client compatibility; the server decodes greedily with a fixed seed (reproducible reports).
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    user: str | None = None
    # Declared so that ``service`` can refuse them when they ask for something dermassist does not do.
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None

    @field_validator("stream", "n", mode="before")
    @classmethod
    def _null_is_the_default(cls, value: Any, info) -> Any:
        return cls.model_fields[info.field_name].default if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        """JSON may carry a lone surrogate (``"\\ud800"``); it cannot be encoded, so it is refused here."""
        where = _surrogate_at(data, [])
        if where is not None:
            raise PydanticCustomError("invalid_unicode", "{where} contains invalid Unicode (an unpaired surrogate)",
                                      {"where": ".".join(where) or "the request"})
        return data


def _surrogate_at(value: Any, path: list[str]) -> list[str] | None:
    """Where the first string (value or key) with an unpaired surrogate is, iteratively; None if there is none.

    The path stops at the first key that is not one of ours (a ``metadata`` key is client input, never shown).
    """
    stack: list[tuple[Any, list[str]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return where
        elif isinstance(node, dict):
            for key, item in node.items():
                if _SURROGATE.search(str(key)):
                    return where
                shown = where if (where and where[-1] == "…") else [*where, str(key) if key in _FIELD_NAMES else "…"]
                stack.append((item, shown))
        elif isinstance(node, list):
            stack.extend((item, where if (where and where[-1] == "…") else [*where, str(i)])
                         for i, item in enumerate(node))
    return None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: str = "stop"
    logprobs: None = None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    # dermassist's structured extras (citations, safety notes, provenance); plain clients ignore it.
    dermassist: dict[str, Any] | None = None


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    dermassist: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "dermassist"
    root: str | None = None
    parent: str | None = None
    description: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


# Field names that may appear in an error's location (anything else a client sent is shown as "…").
_FIELD_NAMES = frozenset().union(*(model.model_fields for model in (
    ChatCompletionRequest, ChatMessageIn, TextContentPart, ImageContentPart, ImageURL, ResponseFormat,
    JSONSchemaFormat, StreamOptions)), {"schema", "clinical_context"})
_OWN_ERRORS = frozenset({"image_url_string", "invalid_unicode"})


def validation_message(errors: list[dict]) -> str:
    """Where and what, never the offending input (it may be clinical text or image bytes).

    Of several errors the most telling is shown: one of ours (they say exactly what to fix), else the deepest
    (a union reports every branch it tried; the branch that got furthest is the one the client meant).
    """
    if not errors:
        return "invalid request"
    if any(err.get("type") == "json_invalid" for err in errors):
        return "the request body is not valid JSON"
    err = max(errors, key=lambda e: (e.get("type") in _OWN_ERRORS, len(e.get("loc", ()))))
    where = shown_location(err.get("loc", ())) or "body"
    msg = str(err.get("msg", "invalid"))[:200]
    return f"invalid request: {where}: {msg}"


def shown_location(loc) -> str:
    """A pydantic location as ``messages.0.content``: union branch labels dropped, client-chosen keys as "…"."""
    parts: list[str] = []
    for part in loc:
        if part == "body":
            continue
        if isinstance(part, int):
            parts.append(str(part))
        elif part in _FIELD_NAMES:
            parts.append(part)
        elif "[" in part or part in _BRANCH_LABELS:
            continue
        else:
            parts.append("…")
    return ".".join(parts)


_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "list", "dict", "TextContentPart", "ImageContentPart"})
