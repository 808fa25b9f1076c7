"""Backend registry: name -> factory (called with a ``BackendConfig``), imported lazily so transformers users never
import vLLM and vice versa. A third-party backend is one module plus ``BACKENDS.register(name, "pkg.mod:Factory")``.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.backends.base import Backend, BackendConfig
from assistant.core.registry import Registry

BACKENDS: Registry[Callable[[BackendConfig], Backend]] = Registry("backend", {
    "transformers": "assistant.backends.transformers_backend:TransformersBackend",
    "vllm": "assistant.backends.vllm_backend:VLLMBackend",
    "openai": "assistant.backends.openai_backend:OpenAIBackend",
})


def create_backend(config: BackendConfig) -> Backend:
    return BACKENDS.get(config.backend)(config)
