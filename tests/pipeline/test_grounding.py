"""Citations resolve to retrieved passages; anything else is dropped and flagged."""

from __future__ import annotations

from assistant.core.report import ReportDraft
from assistant.core.retrieval import Passage
from assistant.pipeline.grounding import cited_ids_in_text, ground_citations

PASSAGES = [Passage(id="psoriasis#red-flags", title="Psoriasis — Red flags", source="dermassist (NICE 2017)",
                    text="Erythrodermic or pustular psoriasis needs same-day care. " * 10, url="https://x"),
            Passage(id="tinea#typical-presentation", title="Tinea", source="s", text="Annular scaly plaque.")]


def draft(*cites: list[str]) -> ReportDraft:
    return ReportDraft.model_validate({
        "findings": {"primary_morphology": "plaque", "colour": "pink", "shape": "oval", "border": "sharp",
                     "distribution": "elbows", "size": "4 cm", "summary": "s"},
        "differential": [{"condition": f"c{i}", "likelihood": 0.3, "rationale": "r", "citation_ids": c}
                         for i, c in enumerate(cites)],
        "diagnosis": {"condition": "c0", "confidence": 0.3},
        "triage": {"urgency": "routine", "action": "a"}})


def test_unknown_citations_are_dropped_and_flagged():
    items, citations, grounding, limits = ground_citations(
        draft(["psoriasis#red-flags", "made#up", "psoriasis#red-flags"], ["made#up", "tinea#typical-presentation"]),
        PASSAGES)
    assert items[0].citation_ids == ["psoriasis#red-flags"] and items[1].citation_ids == ["tinea#typical-presentation"]
    assert [c.id for c in citations] == ["psoriasis#red-flags", "tinea#typical-presentation"]
    assert grounding.dropped_citation_ids == ["made#up"]
    assert grounding.retrieved_ids == [p.id for p in PASSAGES]
    assert any("not retrieved" in x for x in limits)
    assert len(citations[0].snippet) <= 300 and citations[0].url == "https://x"


def test_no_passages_means_ungrounded_limitation():
    _, citations, grounding, limits = ground_citations(draft([]), [])
    assert citations == [] and grounding.retrieved_ids == []
    assert any("not grounded" in x for x in limits)


def test_free_text_citations():
    found, unknown = cited_ids_in_text("Likely psoriasis [psoriasis#red-flags], not [x#y].", PASSAGES)
    assert [c.id for c in found] == ["psoriasis#red-flags"] and unknown == ["x#y"]
