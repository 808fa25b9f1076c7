"""Retrieval for data building: the real retriever, asked once per distinct query.

The knowledge-base retriever turns a case into a query from its text fields only (``rag.retriever.case_query``),
so the many cases of a dataset that share site, symptoms and modality share their passages. Building data for
thousands of cases then costs a handful of searches instead of thousands, with exactly the passages inference gets.
"""

from __future__ import annotations

from assistant.core.case import Case
from assistant.core.retrieval import Passage, Retriever


class MemoRetriever:
    """Wraps a retriever; memoises ``retrieve`` by the knowledge base's case query and ``search`` by text."""

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner
        self._memo: dict[tuple[str, str, int | None], list[Passage]] = {}

    @property
    def version(self) -> str | None:
        return self.inner.version

    def _query(self, case: Case) -> str | None:
        from rag.retriever import KnowledgeBaseRetriever, case_query

        return case_query(case) if isinstance(self.inner, KnowledgeBaseRetriever) else None

    def retrieve(self, case: Case, k: int | None = None) -> list[Passage]:
        query = self._query(case)
        if query is None:
            return self.inner.retrieve(case, k)
        key = ("case", query, k)
        if key not in self._memo:
            self._memo[key] = self.inner.retrieve(case, k)
        return list(self._memo[key])

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        key = ("search", query, k)
        if key not in self._memo:
            self._memo[key] = self.inner.search(query, k)
        return list(self._memo[key])
