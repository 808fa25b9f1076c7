"""What every model backend speaks: chat messages with images in, text out, optionally schema-constrained.

Backends know nothing of reports; the pipeline builds messages and the JSON schema. Each backend enforces the
schema with its own constrained decoder (xgrammar in transformers, structured outputs in vLLM,
``response_format`` for OpenAI-compatible servers); the pipeline validates whatever comes back anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.case import MAX_IMAGES_PER_CASE
from assistant.core.errors import ConfigError, DermassistError
from assistant.core.messages import ChatMessage


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[ChatMessage, ...]
    json_schema: dict | None = None
    max_new_tokens: int = 1536
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    adapter: str | None = None  # a name from BackendConfig.adapters
    # Set by the caller when the result is no longer wanted (an HTTP client left, a batch was stopped): a backend
    # stops generating as soon as it can and raises ``GenerationCancelled``.
    cancel: threading.Event | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    model: str
    adapter: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    extra: dict = field(default_factory=dict)


class BackendConfig(BaseModel):
    """How to reach a model. Fields a backend does not use are ignored by it."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("transformers", description="registry name: transformers | vllm | openai")
    model: str = Field(description="local path or hub id (transformers/vllm), or the served model name (openai)")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="LoRA adapters: name -> path (transformers/vllm) or served name (openai)"
    )
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16")
    device: str = Field("auto", description="transformers only: auto | cpu | cuda")
    base_url: str | None = Field(None, description="openai only: e.g. http://127.0.0.1:8000/v1")
    api_key: str | None = Field(None, description="openai only; default from OPENAI_API_KEY")
    timeout_s: float = Field(120.0, gt=0)
    max_model_len: int = Field(8192, ge=512)
    max_images: int = Field(MAX_IMAGES_PER_CASE, ge=1, le=MAX_IMAGES_PER_CASE)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    enforce_eager: bool = False
    enable_prefix_caching: bool = Field(
        True, description="vllm only; off for bit-exact reproducibility (cached KV can flip near-tied greedy choices)")
    quantization: Literal["none", "4bit", "8bit"] = Field("none", description="transformers only, via bitsandbytes")
    max_batch_size: int = Field(
        8, ge=1, le=256, description="transformers: conversations per batched generate call (padding costs memory); "
                                     "openai: requests kept in flight by generate_batch")
    threads: int | None = Field(
        None, ge=1, description="transformers only: torch threads; default: the cores this process may use (CPU "
                                "affinity and container quota). Fewer help when other busy processes share them")

    def check_adapter(self, name: str | None) -> None:
        """A request may only name an adapter this backend was configured with."""
        if name is not None and name not in self.adapters:
            raise ConfigError(f"unknown adapter {name!r}; loaded: {', '.join(sorted(self.adapters)) or 'none'}")

    def check_adapter_folders(self) -> None:
        """In-process backends load adapters from folders: each must hold a PEFT ``adapter_config.json``."""
        for name, path in self.adapters.items():
            if not (Path(path) / "adapter_config.json").is_file():
                raise ConfigError(f"adapter {name!r}: no adapter_config.json in {path}")

    @property
    def display_name(self) -> str:
        """The model name shown in reports and APIs: a hub id as is, a local folder by its name only
        (a local path says where PHI-adjacent files live on our machine)."""
        model = self.model
        if model.startswith(("/", ".", "~")) or Path(model).is_absolute() or Path(model).exists():
            return Path(model).name or "local-model"
        return model


# One outcome per request of a batch: its result, or the one-line error that request alone ran into.
GenerationOutcome = GenerationResult | DermassistError


@runtime_checkable
class WarmsUp(Protocol):
    """A backend that can prepare constrained decoding for a schema of this shape ahead of the first request."""

    def warm_up(self, json_schema: dict) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """``generate`` is safe to call from many threads at once; ``generate_batch`` hands the backend a whole batch
    (one engine batch where it can: vLLM schedules all of it at once, transformers pads and runs ``generate`` on
    groups, openai keeps ``max_batch_size`` requests in flight). A request that fails is its own error outcome,
    never the batch's; outcomes come back in request order."""

    name: str
    config: BackendConfig

    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]: ...

    def close(self) -> None: ...
