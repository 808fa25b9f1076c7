"""Retrieval quality over the query set: recall@k and MRR@k, overall and per query kind.

Query files are ``tests/data/retrieval_queries/*.jsonl`` (format in ``docs/kb-spec.md``): one
``{"query": ..., "relevant": [doc ids], "kind": "vignette" | "question"}`` per line. A query is a hit when any of the
top-k chunks belongs to a relevant document; its reciprocal rank is 1 / rank of the first such chunk (0 if none in
the top k).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from assistant.core.errors import RetrievalError
from assistant.core.retrieval import Passage

SearchFn = Callable[[str, int], list[Passage]]


class Query(BaseModel):
    query: str = Field(min_length=1)
    relevant: list[str] = Field(min_length=1)
    kind: str = "vignette"
    file: str = ""


class Score(BaseModel):
    n: int
    recall: float
    mrr: float


class EvalResult(BaseModel):
    k: int
    overall: Score
    per_kind: dict[str, Score]
    per_file: dict[str, Score]
    misses: list[dict] = Field(default_factory=list, description="queries with no relevant doc in the top k")


def default_queries_dir() -> Path:
    """The repository's query set (``tests/data/retrieval_queries``), located relative to this package."""
    return Path(__file__).resolve().parent.parent / "tests" / "data" / "retrieval_queries"


def load_queries(path: Path | str | None = None) -> list[Query]:
    path = Path(path) if path else default_queries_dir()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise RetrievalError(f"{path} has no *.jsonl query files.")
    elif path.is_file():
        files = [path]
    else:
        raise RetrievalError(f"{path} does not exist; give a folder of *.jsonl query files.")
    queries = []
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                queries.append(Query(**json.loads(line), file=file.stem))
            except (json.JSONDecodeError, ValidationError, TypeError):
                raise RetrievalError(
                    f"{file.name} line {number} is not a valid query (need 'query' and a non-empty 'relevant' list)."
                ) from None
    if not queries:
        raise RetrievalError(f"{path} contains no queries.")
    return queries


def first_relevant_rank(passages: list[Passage], relevant: list[str]) -> int | None:
    wanted = set(relevant)
    for rank, passage in enumerate(passages, start=1):
        if passage.id.split("#", 1)[0] in wanted:
            return rank
    return None


def evaluate(search: SearchFn, queries: list[Query], k: int = 5) -> EvalResult:
    ranks: list[tuple[Query, int | None, list[str]]] = []
    for q in queries:
        passages = search(q.query, k)[:k]
        ranks.append((q, first_relevant_rank(passages, q.relevant), [p.id for p in passages]))

    def score(rows: list[tuple[Query, int | None, list[str]]]) -> Score:
        n = len(rows)
        return Score(
            n=n,
            recall=round(sum(r is not None for _, r, _ in rows) / n, 4),
            mrr=round(sum(1 / r for _, r, _ in rows if r) / n, 4),
        )

    by_kind, by_file = defaultdict(list), defaultdict(list)
    for row in ranks:
        by_kind[row[0].kind].append(row)
        by_file[row[0].file].append(row)
    return EvalResult(
        k=k,
        overall=score(ranks),
        per_kind={kind: score(rows) for kind, rows in sorted(by_kind.items())},
        per_file={name: score(rows) for name, rows in sorted(by_file.items())},
        misses=[{"query": q.query, "relevant": q.relevant, "got": got} for q, r, got in ranks if r is None],
    )


def format_result(result: EvalResult) -> str:
    lines = [
        f"queries: {result.overall.n}",
        f"recall@{result.k}: {result.overall.recall:.3f}",
        f"MRR@{result.k}: {result.overall.mrr:.3f}",
    ]
    for label, table in (("kind", result.per_kind), ("file", result.per_file)):
        for name, s in table.items():
            lines.append(f"  {label} {name}: n={s.n} recall@{result.k}={s.recall:.3f} MRR@{result.k}={s.mrr:.3f}")
    return "\n".join(lines)
