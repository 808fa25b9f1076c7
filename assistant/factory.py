"""Wire a pipeline from configuration: backend from the registry, retriever from the knowledge base."""

from __future__ import annotations

from assistant.backends.base import BackendConfig
from assistant.backends.registry import create_backend
from assistant.config import RetrievalConfig
from assistant.pipeline import PipelineSettings, ReportPipeline
from assistant.retrieval import NullRetriever, Retriever


def build_retriever(config: RetrievalConfig) -> Retriever:
    if not config.enabled:
        return NullRetriever()
    from rag.retriever import build_default_retriever

    return build_default_retriever(config.store, chroma_url=config.chroma_url,
                                   embedding_model=config.embedding_model, k=config.k, reranker=config.reranker)


def build_pipeline(config: BackendConfig, *, retrieval: bool | RetrievalConfig = True,
                   settings: PipelineSettings | None = None) -> ReportPipeline:
    retrieval_config = retrieval if isinstance(retrieval, RetrievalConfig) else RetrievalConfig(enabled=retrieval)
    retriever = build_retriever(retrieval_config)  # before the backend: a broken store fails fast and cheap
    settings = settings or PipelineSettings(retrieval_k=retrieval_config.k)
    return ReportPipeline(create_backend(config), retriever, settings=settings)
