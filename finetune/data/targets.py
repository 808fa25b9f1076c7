"""Report targets: the ``ReportDraft`` a tuned model should write for a labelled case.

Built from the label, the ontology and the passages the real retriever returned for that case, so a tuned model
learns the exact output contract and to cite what was retrieved. Wording lives in ``targets.yaml`` (data, not
code). Triage and red flags are what the deterministic safety layer would set for the labelled diagnosis, so the
model is taught to say up front what the pipeline would enforce anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant import __version__
from assistant.core.case import Case
from assistant.core.errors import ConfigError, first_error
from assistant.core.ontology import Ontology, default_ontology
from assistant.core.report import (
    Diagnosis,
    DifferentialItem,
    DraftDiagnosis,
    DraftDifferentialItem,
    Findings,
    Provenance,
    Report,
    ReportDraft,
    Triage,
    Urgency,
)
from assistant.core.retrieval import Passage
from assistant.pipeline.safety import apply_safety

TARGETS_FILE = Path(__file__).with_name("targets.yaml")
MAX_CITATIONS = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionTarget(_Strict):
    findings: Findings
    alternatives: list[str] = Field(default_factory=list, description="ontology ids, most similar first")


class TargetBook(_Strict):
    """The contents of ``targets.yaml``."""

    version: str
    likelihoods: list[float] = Field(min_length=1, max_length=5)
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str
    alternative_rationale: str
    routine_action: str
    recommendations: dict[Urgency, list[str]]
    limitations: list[str]
    category_findings: dict[str, Findings]
    conditions: dict[str, ConditionTarget]

    def findings_for(self, condition_id: str, ontology: Ontology) -> Findings:
        """The condition's own typical findings, else its category's, with ``{name}`` filled in."""
        condition = ontology.get(condition_id)
        entry = self.conditions.get(condition_id)
        template = entry.findings if entry else self.category_findings[condition.category.value]
        data = {key: value.format(name=condition.name) if isinstance(value, str) else value
                for key, value in template.model_dump().items()}
        return Findings.model_validate(data)


@functools.cache
def load_targets(path: Path = TARGETS_FILE) -> TargetBook:
    try:
        book = TargetBook.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read report targets {path.name}: {err}") from None
    except ValidationError as err:
        raise ConfigError(f"{path.name}: {first_error(err, root='targets')}") from None
    unknown = sorted({cid for cid, entry in book.conditions.items() for cid in [cid, *entry.alternatives]
                      if cid not in default_ontology()})
    if unknown:
        raise ConfigError(f"{path.name}: unknown condition id(s) {', '.join(unknown)}")
    return book


def _citations(condition_id: str, passages: Sequence[Passage], ontology: Ontology) -> list[str]:
    """Passages about the condition (or its umbrella group), best-ranked first; else the top-ranked passage."""
    related = {condition_id, *ontology.ancestors(condition_id)}
    about = [p.id for p in passages if related & set(p.condition_ids)]
    chosen = list(dict.fromkeys(about))[:MAX_CITATIONS]
    return chosen or ([passages[0].id] if passages else [])


def _alternatives(condition_id: str, book: TargetBook, labels: Sequence[str]) -> list[str]:
    entry = book.conditions.get(condition_id)
    candidates = [c for c in (entry.alternatives if entry else []) if c != condition_id]
    if labels:
        candidates = [c for c in candidates if c in labels]
    return candidates[: len(book.likelihoods) - 1]


def report_target(condition_id: str, case: Case, passages: Sequence[Passage], *, labels: Sequence[str] = (),
                  book: TargetBook | None = None, ontology: Ontology | None = None) -> ReportDraft:
    """The report a tuned model should write for ``case`` whose diagnosis is ``condition_id``.

    ``labels`` (the task's label set) keeps the alternatives inside the classes the dataset can tell apart.
    """
    book = book or load_targets()
    ontology = ontology or default_ontology()
    condition = ontology.get(condition_id)
    ids = [condition_id, *_alternatives(condition_id, book, labels)]
    differential = []
    for rank, cid in enumerate(ids):
        template = book.rationale if rank == 0 else book.alternative_rationale
        differential.append(DraftDifferentialItem(
            condition=ontology.get(cid).name, likelihood=book.likelihoods[rank],
            rationale=template.format(name=condition.name), citation_ids=_citations(cid, passages, ontology)))
    draft = ReportDraft(
        findings=book.findings_for(condition_id, ontology), differential=differential,
        diagnosis=DraftDiagnosis(condition=condition.name, confidence=book.confidence),
        triage=Triage(urgency="routine", action=book.routine_action), limitations=list(book.limitations))
    urgency, action, red_flags = _safety_floor(draft, ids, case, ontology)
    action = book.routine_action if urgency == "routine" else action
    return ReportDraft.model_validate({
        **draft.model_dump(), "triage": {"urgency": urgency, "action": action}, "red_flags": red_flags[:5],
        "recommendations": list(book.recommendations.get(urgency, []))})


def _safety_floor(draft: ReportDraft, ids: list[str], case: Case,
                  ontology: Ontology) -> tuple[Urgency, str, list[str]]:
    """Triage (urgency and the action of its most urgent reason) and red flags the safety layer sets for this
    draft: the target says them itself."""
    items = [DifferentialItem(**item.model_dump(), condition_id=cid) for item, cid in zip(draft.differential, ids,
                                                                                         strict=True)]
    report = Report(findings=draft.findings, differential=items,
                    diagnosis=Diagnosis(**draft.diagnosis.model_dump(), condition_id=ids[0]), triage=draft.triage,
                    provenance=Provenance(model="target", backend="target", prompt_version="target",
                                          dermassist_version=__version__, created_at=datetime(2000, 1, 1, tzinfo=UTC)))
    checked = apply_safety(report, case, ontology)
    return checked.triage.urgency, checked.triage.action, [flag for flag in checked.red_flags if len(flag) <= 200]
