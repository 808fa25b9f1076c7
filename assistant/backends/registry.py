"""Backend registry: name -> factory, imported lazily so `transformers` users never import vLLM and vice versa."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from assistant.backends.base import Backend, BackendConfig
from assistant.errors import ConfigError

_REGISTRY: dict[str, str] = {
    "transformers": "assistant.backends.transformers_backend:TransformersBackend",
    "vllm": "assistant.backends.vllm_backend:VLLMBackend",
    "openai": "assistant.backends.openai_backend:OpenAIBackend",
}


def register_backend(name: str, target: str) -> None:
    """Register a third-party backend as ``"package.module:Factory"`` (called with a BackendConfig)."""
    _REGISTRY[name] = target


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(config: BackendConfig) -> Backend:
    target = _REGISTRY.get(config.backend)
    if target is None:
        raise ConfigError(f"unknown backend {config.backend!r}; choose from {', '.join(backend_names())}")
    module, _, attr = target.partition(":")
    factory: Callable[[BackendConfig], Backend] = getattr(import_module(module), attr)
    return factory(config)
