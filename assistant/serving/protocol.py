"""The OpenAI chat-completions wire format, as much of it as dermassist serves, plus our ``metadata`` field.

Requests are validated here (shape only); ``service`` decides what they mean. Unknown request fields are
ignored, as OpenAI-compatible servers do, except features we cannot honour (tools, n > 1, logprobs), which are
refused with a clear message rather than silently dropped.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    logprobs: bool | None = None


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
