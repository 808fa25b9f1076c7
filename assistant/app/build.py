"""Turn an ``AppConfig`` into running parts: the backend config (defaults resolved), the retriever, the pipeline.

This is the one place that decides what "no --model" means (the packaged demo model, or an upstream's first
model), which backend is the default, and which adapter a report uses; every surface calls it.
"""

from __future__ import annotations

import os
import sys

from assistant.app.config import AppConfig, RetrievalConfig
from assistant.backends.base import BackendConfig
from assistant.backends.registry import create_backend
from assistant.core.errors import BackendError, ConfigError
from assistant.core.retrieval import NullRetriever, Retriever
from assistant.pipeline.pipeline import PipelineSettings, ReportPipeline

DEMO_MODEL_NAMES = ("demo", "tiny")


def default_backend(base_url: str | None) -> str:
    """openai with an upstream URL; the in-process vLLM engine on a CUDA machine that has vLLM; else transformers."""
    if base_url:
        return "openai"
    return "vllm" if _has_cuda() and _has_vllm() else "transformers"


def resolve_backend_config(config: AppConfig) -> BackendConfig:
    """The section with its defaults filled in: backend, and the model (demo model or the upstream's)."""
    section = config.backend
    backend = section.backend or default_backend(section.base_url)
    model = section.model
    if backend == "openai" and not section.base_url:
        raise ConfigError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    if backend != "openai" and (model is None or model in DEMO_MODEL_NAMES):
        from assistant.models.tiny import default_model

        path, warning = default_model()
        model = str(path)
        print(warning, file=sys.stderr, flush=True)
    elif backend == "openai" and model is None:
        model = upstream_model(section.base_url or "", section.api_key)
    return BackendConfig.model_validate({**section.model_dump(), "backend": backend, "model": model})


def build_retriever(config: RetrievalConfig) -> Retriever:
    if not config.enabled:
        return NullRetriever()
    from rag.retriever import build_default_retriever

    return build_default_retriever(config.store, chroma_url=config.chroma_url,
                                   embedding_model=config.embedding_model, k=config.k, reranker=config.reranker)


def build_pipeline(config: AppConfig, *, backend: BackendConfig | None = None,
                   retriever: Retriever | None = None) -> ReportPipeline:
    """The pipeline every surface runs. The retriever is built before the backend: a broken store fails fast.
    ``backend`` / ``retriever``: already resolved or built by the caller (``dermassist batch`` checks what a
    folder's reports were made with before it loads a model)."""
    config.active_adapter()  # a named adapter that is not configured fails before anything loads
    retriever = retriever or build_retriever(config.retrieval)
    settings = PipelineSettings(retrieval_k=config.retrieval.k, generation=config.generation, safety=config.safety)
    return ReportPipeline(create_backend(backend or resolve_backend_config(config)), retriever, settings=settings)


def upstream_model(base_url: str, api_key: str | None) -> str:
    """The first model an OpenAI-compatible upstream lists (what a single-model vLLM server serves)."""
    import httpx

    key = api_key or os.environ.get("OPENAI_API_KEY")
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", timeout=10, trust_env=False,
                             headers={"Authorization": f"Bearer {key}"} if key else {})
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
        raise BackendError(f"could not list the models of the upstream {base_url}; pass --model") from None


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken torch install must not break choosing a backend
        return False


def _has_vllm() -> bool:
    from importlib.util import find_spec

    return find_spec("vllm") is not None
