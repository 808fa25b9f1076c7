"""The deterministic safety layer, applied to every report after validation.

A model can under-call danger; these rules cannot. They only ever *raise* triage, add red flags and record what
they did in ``report.safety`` so a reviewer sees why. Rules are data (``RULES``): each looks at the report and
the case and returns at most one escalation. Condition facts (malignant, default urgency) come from the ontology.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.case import Case
from assistant.core.ontology import Ontology
from assistant.core.report import DISCLAIMER, URGENCY_ORDER, Report, SafetyAction, urgency_at_least

ACTIONS = {
    "soon": "Arrange a clinical review within days to weeks, sooner if it changes.",
    "urgent": "Urgent specialist assessment: refer on the suspected-cancer pathway (NICE NG12: seen within 2 weeks).",
    "emergency": "Emergency: same-day assessment in an emergency department or acute dermatology service.",
}


class SafetyPolicy(BaseModel):
    """The ``safety:`` section of a run config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    differential_threshold: float = Field(
        0.15, ge=0.0, le=1.0,
        description="a malignant or emergency condition this likely in the differential escalates triage")


@dataclass(frozen=True)
class Escalation:
    rule: str
    floor: str
    red_flag: str
    detail: str


Rule = Callable[[Report, Case, Ontology, SafetyPolicy], Escalation | None]


def _flagged(report: Report, ontology: Ontology, policy: SafetyPolicy, test) -> list[tuple[str, float]]:
    """Conditions passing ``test`` in the diagnosis (any confidence) or the differential (above threshold)."""
    hits = []
    if report.diagnosis.condition_id and test(ontology.get(report.diagnosis.condition_id)):
        hits.append((report.diagnosis.condition_id, report.diagnosis.confidence))
    for item in report.differential:
        likely = item.likelihood >= policy.differential_threshold
        if item.condition_id and likely and test(ontology.get(item.condition_id)):
            hits.append((item.condition_id, item.likelihood))
    return hits


def _condition_rule(rule: str, floor: str, test: Callable, flag: str) -> Rule:
    """A rule that fires when a condition passing ``test`` is the diagnosis or likely enough in the differential."""

    def check(report: Report, case: Case, ontology: Ontology, policy: SafetyPolicy) -> Escalation | None:
        hits = _flagged(report, ontology, policy, test)
        if not hits:
            return None
        names = ", ".join(sorted({ontology.get(cid).name for cid, _ in hits}))
        return Escalation(rule, floor, flag.format(names=names),
                          f"{rule.replace('-', ' ')} in diagnosis or differential >= "
                          f"{policy.differential_threshold}: {names}")

    check.__name__ = rule.replace("-", "_")
    return check


suspected_malignancy = _condition_rule(
    "suspected-malignancy", "urgent", lambda c: c.malignant,
    "Possible malignancy ({names}): needs urgent specialist assessment.")
emergency_condition = _condition_rule(
    "emergency-condition", "emergency", lambda c: c.default_urgency == "emergency",
    "Possible dermatological emergency ({names}): seek same-day emergency care.")


def diagnosis_default_urgency(report: Report, case: Case, ontology: Ontology,
                              policy: SafetyPolicy) -> Escalation | None:
    cid = report.diagnosis.condition_id
    if not cid:
        return None
    condition = ontology.get(cid)
    if URGENCY_ORDER.index(condition.default_urgency) <= URGENCY_ORDER.index(report.triage.urgency):
        return None
    return Escalation("condition-default-urgency", condition.default_urgency,
                      f"{condition.name} usually needs {condition.default_urgency} assessment.",
                      f"the ontology's default urgency for {condition.name} is {condition.default_urgency}")


def warning_symptoms(report: Report, case: Case, ontology: Ontology, policy: SafetyPolicy) -> Escalation | None:
    s = case.context.symptoms
    reported = [name for name in ("bleeding", "growth", "change") if getattr(s, name)]
    if not reported:
        return None
    return Escalation("warning-symptoms", "soon",
                      f"Reported {', '.join(reported)} of the lesion: warning signs that need prompt clinical review.",
                      f"case reports {', '.join(reported)}")


def unmapped_diagnosis(report: Report, case: Case, ontology: Ontology, policy: SafetyPolicy) -> Escalation | None:
    if report.diagnosis.condition_id:
        return None
    return Escalation("unrecognised-diagnosis", "soon",
                      "The suggested diagnosis is not a recognised condition name, so its risk could not be checked: "
                      "have it reviewed.",
                      f"diagnosis {report.diagnosis.condition!r} did not map to the ontology")


RULES: tuple[Rule, ...] = (emergency_condition, suspected_malignancy, diagnosis_default_urgency, warning_symptoms,
                           unmapped_diagnosis)


def apply_safety(report: Report, case: Case, ontology: Ontology, policy: SafetyPolicy | None = None) -> Report:
    """Return a copy of ``report`` with every rule applied; triage never goes down; disclaimer always set.

    Rules run in order on the report as escalated so far, so a later rule only fires when it still adds something.
    """
    policy = policy or SafetyPolicy()
    report = report.model_copy(update={"disclaimer": DISCLAIMER})
    for rule in RULES:
        escalation = rule(report, case, ontology, policy)
        if escalation is None:
            continue
        triage = report.triage
        raised = urgency_at_least(triage.urgency, escalation.floor)
        if raised != triage.urgency:
            triage = triage.model_copy(update={"urgency": raised, "action": ACTIONS[raised]})
        red_flags = report.red_flags if escalation.red_flag in report.red_flags else [*report.red_flags,
                                                                                      escalation.red_flag]
        report = report.model_copy(update={
            "triage": triage, "red_flags": red_flags,
            "safety": [*report.safety, SafetyAction(rule=escalation.rule, detail=escalation.detail)]})
    return report
