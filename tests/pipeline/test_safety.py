"""The deterministic safety layer, in process: what escalates, to what, with which action, and what never moves.

The scenario table (test_safety_scenarios.py) tries the layer end to end; these tests pin the engine's contract:
conditions the model names, the policy's thresholds, actions that fit the reason, superseded advice, recorded
contradictions, and the Markdown a clinician reads.
"""

from __future__ import annotations

import pytest

from assistant.core.case import Case, ClinicalContext, Symptoms
from assistant.core.ontology import default_ontology
from assistant.core.report import (
    DISCLAIMER,
    Diagnosis,
    DifferentialItem,
    Findings,
    Provenance,
    Report,
    ReportContext,
    Triage,
)
from assistant.pipeline.render import report_markdown
from assistant.pipeline.safety import SafetyPolicy, apply_safety, engine_for
from assistant.pipeline.safety.schema import default_rule_set
from support.images import lesion_image

ONTOLOGY = default_ontology()
ACTIONS = default_rule_set().actions.actions


def make_report(diagnosis: str, urgency: str = "routine", differential: list[tuple[str, float]] = (),
                action: str = "Reassure; no follow-up needed", recommendations: tuple[str, ...] = (),
                colour: str = "pink", disclaimer: str = "edited away") -> Report:
    items = [DifferentialItem(condition=c, likelihood=p, rationale="r", condition_id=ONTOLOGY.normalize(c))
             for c, p in (differential or [(diagnosis, 0.6)])]
    return Report(
        findings=Findings(primary_morphology="papule", colour=colour, shape="round", border="regular",
                          distribution="single", size="5 mm", summary="s"),
        differential=items,
        diagnosis=Diagnosis(condition=diagnosis, confidence=0.6, condition_id=ONTOLOGY.normalize(diagnosis)),
        triage=Triage(urgency=urgency, action=action), recommendations=list(recommendations), disclaimer=disclaimer,
        provenance=Provenance(model="m", backend="b", prompt_version="p", dermassist_version="0"))


def case(symptoms: dict | None = None, **context) -> Case:
    return Case(images=[lesion_image()], context=ClinicalContext(symptoms=Symptoms(**(symptoms or {})), **context))


def action_of(report: Report) -> str | None:
    return {a.text: key for key, a in ACTIONS.items()}.get(report.triage.action)


# diagnosis, model urgency, differential, context, expected urgency, expected rules, expected action
TABLE = [
    ("melanocytic nevus", "routine", [], {}, "routine", set(), None),
    ("melanoma", "routine", [], {}, "urgent", {"suspected-malignancy"}, "cancer_pathway"),
    ("Suspected melanoma", "soon", [], {}, "urgent", {"suspected-malignancy"}, "cancer_pathway"),
    ("BCC", "routine", [], {}, "soon", {"suspected-malignancy"}, "skin_cancer_referral"),
    ("BCC", "routine", [], {"body_site": "lower eyelid"}, "urgent", {"suspected-malignancy", "bcc-high-risk"},
     "cancer_pathway"),
    ("nevus", "routine", [("nevus", 0.6), ("melanoma", 0.3)], {}, "urgent", {"suspected-malignancy"},
     "cancer_pathway"),
    ("nevus", "routine", [("nevus", 0.9), ("melanoma", 0.05)], {}, "routine", set(), None),  # below 0.10
    ("nevus", "routine", [("nevus", 0.9), ("toxic epidermal necrolysis", 0.01)], {}, "emergency",
     {"emergency-condition"}, "emergency_drug_reaction"),
    ("necrotizing fasciitis", "urgent", [], {}, "emergency", {"emergency-condition"}, "emergency_sepsis"),
    ("cellulitis", "routine", [], {}, "urgent", {"condition-default-urgency"}, "urgent_infection"),
    ("pemphigus", "soon", [], {}, "urgent", {"condition-default-urgency"}, "urgent_inflammatory"),
    ("melanoma", "emergency", [], {}, "emergency", {"suspected-malignancy"}, None),  # never lowered
    ("seborrheic keratosis", "routine", [], {"symptoms": {"bleeding": True}}, "soon", {"warning-symptoms"},
     "review_soon"),
    ("seborrheic keratosis", "routine", [], {"symptoms": {"itch": True}}, "routine", set(), None),
    ("blorfic dermatosis", "routine", [], {}, "soon", {"unrecognised-condition"}, "review_soon"),
    ("actinic keratosis", "routine", [], {}, "routine", set(), None),
    ("actinic keratosis", "routine", [], {"history": "now thick and tender"}, "urgent",
     {"premalignant-invasion-signs"}, "cancer_pathway"),
]


@pytest.mark.parametrize("diagnosis, urgency, differential, context, expected, rules, action", TABLE)
def test_safety_table(diagnosis, urgency, differential, context, expected, rules, action):
    out = apply_safety(make_report(diagnosis, urgency, differential), case(**context), ONTOLOGY)
    assert out.triage.urgency == expected
    assert {a.rule for a in out.safety} == rules
    assert out.disclaimer == DISCLAIMER and out.model_triage.urgency == urgency
    if expected != urgency:
        assert action_of(out) == action
        assert out.superseded[0].kind == "action" and out.superseded[0].text == "Reassure; no follow-up needed"
        assert len(out.red_flags) >= 1
    else:
        assert out.triage.action == "Reassure; no follow-up needed" and not out.superseded


@pytest.mark.parametrize("condition", [c for c in ONTOLOGY.conditions if c.default_urgency == "emergency"],
                         ids=lambda c: c.id)
def test_every_emergency_condition_escalates_at_any_likelihood(condition):
    report = make_report("insect bite", differential=[("insect bite", 0.98), (condition.name, 0.01)])
    out = apply_safety(report, case(), ONTOLOGY)
    assert out.triage.urgency == "emergency"
    assert ACTIONS[action_of(out)].level == "emergency"
    assert "emergency-condition" in {a.rule for a in out.safety}


@pytest.mark.parametrize("condition", [c for c in ONTOLOGY.conditions if c.malignant], ids=lambda c: c.id)
def test_every_malignant_condition_escalates_with_a_cancer_referral(condition):
    out = apply_safety(make_report(condition.name), case(), ONTOLOGY)
    expected = "cancer_pathway" if condition.default_urgency == "urgent" else "skin_cancer_referral"
    assert out.triage.urgency == ACTIONS[expected].level and action_of(out) == expected


def test_only_a_suspected_malignancy_gets_the_cancer_pathway():
    engine = engine_for(ONTOLOGY, SafetyPolicy())
    for condition in ONTOLOGY.conditions:
        if condition.default_urgency == "routine" and not condition.malignant:
            continue
        action = engine.condition_action(condition)
        assert ACTIONS[action].level == engine.condition_level(condition), condition.id
        assert (action in ("cancer_pathway", "skin_cancer_referral")) == condition.malignant, condition.id


def test_thresholds_come_from_the_policy():
    report = make_report("nevus", differential=[("nevus", 0.9), ("melanoma", 0.05)])
    assert apply_safety(report, case(), ONTOLOGY).triage.urgency == "routine"
    assert apply_safety(report, case(), ONTOLOGY, SafetyPolicy(malignant_threshold=0.05)).triage.urgency == "urgent"
    emergency = make_report("nevus", differential=[("nevus", 0.9), ("sjs", 0.05)])
    assert apply_safety(emergency, case(), ONTOLOGY, SafetyPolicy(emergency_threshold=0.05)).triage.urgency \
        == "routine"


def test_reassuring_advice_is_superseded_and_the_rest_kept():
    report = make_report("naevus", recommendations=("Reassure, this is benign", "Photograph the lesion",
                                                    "Routine follow-up in 12 months"), colour="brown")
    report = report.model_copy(update={"red_flags": ["No red flags identified"]})
    out = apply_safety(report, case(age=60, history="it grew and darkened"), ONTOLOGY)
    assert out.triage.urgency == "urgent" and out.model_triage.action == "Reassure; no follow-up needed"
    assert out.recommendations == ["Photograph the lesion"]
    assert {(s.kind, s.text) for s in out.superseded} == {
        ("action", "Reassure; no follow-up needed"), ("recommendation", "Reassure, this is benign"),
        ("recommendation", "Routine follow-up in 12 months"), ("red_flag", "No red flags identified")}
    assert "No red flags identified" not in out.red_flags
    assert any("melanoma" in flag for flag in out.red_flags)


def test_the_input_report_is_not_modified():
    report = make_report("melanoma")
    before = report.model_dump()
    apply_safety(report, case(), ONTOLOGY)
    assert report.model_dump() == before


def test_applying_twice_changes_nothing_more():
    once = apply_safety(make_report("melanoma"), case(), ONTOLOGY)
    twice = apply_safety(once.model_copy(update={"safety": []}), case(), ONTOLOGY)
    assert twice.triage == once.triage and twice.model_triage == once.model_triage
    assert twice.superseded == once.superseded


@pytest.mark.parametrize("differential, diagnosis, message", [
    ([("psoriasis", 0.5), ("eczema", 0.3)], "tinea", "is not in the model's own differential"),
    ([("eczema", 0.5), ("tinea", 0.3), ("psoriasis", 0.1)], "psoriasis", "is only number 3"),
    ([("psoriasis", 0.9), ("eczema", 0.8)], "psoriasis", "sum to 1.70"),
    ([("psoriasis", 0.3), ("eczema", 0.1)], "psoriasis", "sum to 0.40"),
])
def test_contradictions_are_recorded_limitations(differential, diagnosis, message):
    out = apply_safety(make_report(diagnosis, differential=differential), case(), ONTOLOGY)
    assert any(message in limit for limit in out.limitations), out.limitations
    assert out.triage.urgency == "routine"


def test_a_consistent_report_has_no_contradiction():
    out = apply_safety(make_report("psoriasis", differential=[("psoriasis", 0.7), ("eczema", 0.3)]), case(),
                       ONTOLOGY)
    assert out.limitations == []


def test_markdown_shows_each_reason_under_the_triage_line_and_the_case_context():
    the_case = case(age=61, fitzpatrick="V", monk=8, body_site="shin", duration="3 weeks", fever=True,
                    immunosuppressed=False, symptoms={"pain": True})
    report = make_report("cellulitis").model_copy(update={"context": ReportContext.from_case(the_case)})
    text = report_markdown(apply_safety(report, the_case, ONTOLOGY))
    lines = text.splitlines()
    triage = next(i for i, line in enumerate(lines) if line.startswith("**Triage: URGENT**"))
    below = "\n".join(lines[triage:triage + 6])
    assert "Raised by the safety layer from the model's triage, ROUTINE" in below
    assert "Cellulitis usually needs this urgency" in below
    assert ACTIONS["urgent_infection"].text in lines[triage]
    for expected in ("## Case context", "| Age / sex | 61 / unknown |", "Fitzpatrick V · Monk 8",
                     "| Duration | 3 weeks |", "fever: yes, immunosuppressed: no", "| Symptoms | pain |",
                     "## Superseded model advice"):
        assert expected in text
