"""Reports as the pipeline makes them after generation, for tests of what surfaces do with a report.

``grounded_report`` runs a model's draft through the real post-generation steps (grounding against real passages
of the packaged guideline corpus, ontology normalisation, the safety layer): the same code ``ReportPipeline.run``
runs once the model has written. The draft's strings can carry markup, to prove surfaces escape model output.
"""

from __future__ import annotations

import functools

from assistant.core.case import Case, ClinicalContext
from assistant.core.ontology import default_ontology
from assistant.core.report import Diagnosis, Provenance, Report, ReportDraft
from assistant.core.retrieval import Passage
from assistant.pipeline.grounding import ground_citations
from assistant.pipeline.safety import apply_safety
from rag.corpus import chunk_documents, load_packaged_corpus
from support.images import lesion_image


@functools.cache
def _chunks() -> dict:
    return {c.id: c for c in chunk_documents(load_packaged_corpus())}


def corpus_passages(*ids: str) -> list[Passage]:
    chunks = _chunks()
    return [Passage(id=i, title=f"{chunks[i].doc_title} — {chunks[i].section}", source=chunks[i].source,
                    text=chunks[i].text, url=chunks[i].url) for i in ids]


def first_chunk_ids(n: int = 2) -> list[str]:
    return list(_chunks())[:n]


def grounded_report(passage_ids: list[str], *, summary: str = "A 7 mm brown plaque with an irregular border.",
                    rationale: str = "asymmetry and colour variegation") -> Report:
    passages = corpus_passages(*passage_ids)
    draft = ReportDraft.model_validate({
        "findings": {"primary_morphology": "plaque", "colour": "brown and black", "shape": "asymmetric",
                     "border": "irregular", "distribution": "solitary", "size": "7 mm", "secondary_changes": [],
                     "summary": summary},
        "differential": [
            {"condition": "melanoma", "likelihood": 0.45, "rationale": rationale,
             "citation_ids": [passage_ids[0], "not-retrieved#x"]},
            {"condition": "seborrheic keratosis", "likelihood": 0.35, "rationale": "stuck-on appearance",
             "citation_ids": passage_ids[1:2]},
            {"condition": "melanocytic nevus", "likelihood": 0.2, "rationale": "common", "citation_ids": []}],
        "diagnosis": {"condition": "melanoma", "confidence": 0.45},
        "triage": {"urgency": "routine", "action": "review in 3 months"},
        "red_flags": [], "recommendations": ["dermoscopy"], "limitations": ["single image"]})
    items, citations, grounding, limits = ground_citations(draft, passages)
    ontology = default_ontology()
    for item in items:
        item.condition_id = ontology.normalize(item.condition)
    report = Report(findings=draft.findings, differential=items,
                    diagnosis=Diagnosis(**draft.diagnosis.model_dump(),
                                        condition_id=ontology.normalize(draft.diagnosis.condition)),
                    triage=draft.triage, red_flags=draft.red_flags, recommendations=draft.recommendations,
                    citations=citations, limitations=[*draft.limitations, *limits], grounding=grounding,
                    provenance=Provenance(model="tiny", backend="transformers", prompt_version="test",
                                          dermassist_version="0.1.0", image_sha256=["ab" * 32]))
    case = Case(images=[lesion_image()], context=ClinicalContext(age=60))
    return apply_safety(report, case, ontology)
