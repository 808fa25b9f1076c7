"""Grounding: a report may cite only passages that were retrieved for it.

Unknown ids are removed and listed in ``report.grounding.dropped_citation_ids`` (and a limitation says so), so a
hallucinated citation never reaches a clinician as if it were real.
"""

from __future__ import annotations

from assistant.core.report import Citation, DifferentialItem, Grounding, ReportDraft
from assistant.core.retrieval import Passage

SNIPPET_CHARS = 300


def ground_citations(draft: ReportDraft, passages: list[Passage]) -> tuple[list[DifferentialItem], list[Citation],
                                                                          Grounding, list[str]]:
    """Differential items with only retrieved citation ids, the cited passages, the grounding record and limitations."""
    by_id = {p.id: p for p in passages}
    cited: dict[str, Citation] = {}
    dropped: list[str] = []
    items = []
    for item in draft.differential:
        kept: list[str] = []
        for cid in item.citation_ids:  # decoders cannot enforce uniqueItems: repeats are dropped here
            if cid in kept:
                continue
            if cid in by_id:
                kept.append(cid)
                cited.setdefault(cid, as_citation(by_id[cid]))
            elif cid not in dropped:
                dropped.append(cid)
        items.append(DifferentialItem(**item.model_dump(exclude={"citation_ids"}), citation_ids=kept))
    limitations = []
    if dropped:
        limitations.append(f"Removed {len(dropped)} citation(s) to passages that were not retrieved for this case.")
    if not passages:
        limitations.append("No guideline passages were retrieved: this report is not grounded in guidelines.")
    return items, list(cited.values()), Grounding(retrieved_ids=[p.id for p in passages],
                                                  dropped_citation_ids=dropped), limitations


def cited_ids_in_text(text: str, passages: list[Passage]) -> tuple[list[Citation], list[str]]:
    """For free-text answers: ``[id]`` markers that match retrieved passages, and the ones that do not."""
    import re

    by_id = {p.id: p for p in passages}
    found: dict[str, Citation] = {}
    unknown: list[str] = []
    for marker in re.findall(r"\[([a-z0-9_#.\-]{2,128})\]", text):
        if marker in by_id:
            found.setdefault(marker, as_citation(by_id[marker]))
        elif marker not in unknown:
            unknown.append(marker)
    return list(found.values()), unknown


def as_citation(p: Passage) -> Citation:
    """A passage as a report shows it: id, title, source, a snippet of at most ``SNIPPET_CHARS``."""
    snippet = p.text if len(p.text) <= SNIPPET_CHARS else p.text[: SNIPPET_CHARS - 3].rsplit(" ", 1)[0] + "..."
    return Citation(id=p.id, source=p.source, title=p.title, snippet=snippet, url=p.url)
