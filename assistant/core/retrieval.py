"""The seam between the report pipeline and the guideline knowledge base.

The pipeline only knows this Protocol; ``rag.retriever.KnowledgeBaseRetriever`` implements it over Chroma and
``NullRetriever`` is used with ``--no-retrieval``. Passage ids are stable chunk ids (``<doc>#<section>``) and are
the only thing a report may cite.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from assistant.core.case import Case


class Passage(BaseModel):
    id: str = Field(description="stable chunk id, e.g. 'psoriasis#red-flags'")
    title: str = Field(description="document title and section heading")
    source: str = Field(description="who the text is attributed to, e.g. 'dermassist guideline summary (BAD 2022)'")
    text: str
    url: str | None = None
    score: float = 0.0
    condition_ids: list[str] = Field(default_factory=list)


@runtime_checkable
class Retriever(Protocol):
    @property
    def version(self) -> str | None:
        """Store version (corpus + embedding model) recorded in report provenance; None without a store."""
        ...

    def retrieve(self, case: Case, k: int | None = None) -> list[Passage]:
        """Passages relevant to a case (query built from its context and question)."""
        ...

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        """Passages relevant to free text (chat turns)."""
        ...


class NullRetriever:
    """No grounding: the report says so in its limitations."""

    version: str | None = None

    def retrieve(self, case: Case, k: int | None = None) -> list[Passage]:
        return []

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        return []
