"""The deterministic safety layer, table-driven: what escalates, to what, and what never goes down."""

from __future__ import annotations

import pytest

from assistant.core.case import Case, ClinicalContext, Symptoms
from assistant.core.ontology import default_ontology
from assistant.core.report import DISCLAIMER, Diagnosis, DifferentialItem, Findings, Provenance, Report, Triage
from assistant.pipeline.safety import SafetyPolicy, apply_safety
from support.images import lesion_image

ONTOLOGY = default_ontology()


def make_report(diagnosis: str, urgency: str = "routine", differential: list[tuple[str, float]] = (),
                disclaimer: str = "edited away") -> Report:
    items = [DifferentialItem(condition=c, likelihood=p, rationale="r", condition_id=ONTOLOGY.normalize(c))
             for c, p in (differential or [(diagnosis, 0.6)])]
    return Report(
        findings=Findings(primary_morphology="papule", colour="brown", shape="round", border="regular",
                          distribution="single", size="5 mm", summary="s"),
        differential=items,
        diagnosis=Diagnosis(condition=diagnosis, confidence=0.6, condition_id=ONTOLOGY.normalize(diagnosis)),
        triage=Triage(urgency=urgency, action="model action"), disclaimer=disclaimer,
        provenance=Provenance(model="m", backend="b", prompt_version="p", dermassist_version="0"))


def case(**symptoms) -> Case:
    return Case(images=[lesion_image()], context=ClinicalContext(symptoms=Symptoms(**symptoms)))


# diagnosis, model urgency, differential, symptoms, expected urgency, expected rules
TABLE = [
    ("melanocytic nevus", "routine", [], {}, "routine", set()),
    ("melanoma", "routine", [], {}, "urgent", {"suspected-malignancy"}),
    ("BCC", "soon", [], {}, "urgent", {"suspected-malignancy"}),
    ("nevus", "routine", [("nevus", 0.7), ("melanoma", 0.2)], {}, "urgent", {"suspected-malignancy"}),
    ("nevus", "routine", [("nevus", 0.9), ("melanoma", 0.1)], {}, "routine", set()),  # below threshold
    ("nevus", "routine", [("nevus", 0.8), ("toxic epidermal necrolysis", 0.15)], {}, "emergency",
     {"emergency-condition"}),
    ("necrotizing fasciitis", "urgent", [], {}, "emergency", {"emergency-condition"}),
    ("cellulitis", "routine", [], {}, "urgent", {"condition-default-urgency"}),
    ("melanoma", "emergency", [], {}, "emergency", {"suspected-malignancy"}),  # never lowered
    ("seborrheic keratosis", "routine", [], {"bleeding": True}, "soon", {"warning-symptoms"}),
    ("seborrheic keratosis", "urgent", [], {"growth": True, "change": True}, "urgent", {"warning-symptoms"}),
    ("seborrheic keratosis", "routine", [], {"itch": True}, "routine", set()),
    ("blorfic dermatosis", "routine", [], {}, "soon", {"unrecognised-diagnosis"}),
]


@pytest.mark.parametrize("diagnosis, urgency, differential, symptoms, expected, rules", TABLE)
def test_safety_table(diagnosis, urgency, differential, symptoms, expected, rules):
    out = apply_safety(make_report(diagnosis, urgency, differential), case(**symptoms), ONTOLOGY)
    assert out.triage.urgency == expected
    assert {a.rule for a in out.safety} == rules
    assert out.disclaimer == DISCLAIMER
    if expected != urgency:
        assert out.triage.action != "model action"  # the action matches the raised urgency
        assert len(out.red_flags) >= 1


def test_red_flag_names_the_malignant_condition_once():
    report = make_report("melanoma", differential=[("melanoma", 0.6), ("melanoma in situ", 0.3)])
    out = apply_safety(report, case(), ONTOLOGY)
    flags = [f for f in out.red_flags if "Possible malignancy" in f]
    assert flags == ["Possible malignancy (Melanoma): needs urgent specialist assessment."]


def test_threshold_is_configurable():
    report = make_report("nevus", differential=[("nevus", 0.9), ("melanoma", 0.1)])
    out = apply_safety(report, case(), ONTOLOGY, SafetyPolicy(differential_threshold=0.05))
    assert out.triage.urgency == "urgent"


def test_every_malignant_condition_escalates():
    for condition in ONTOLOGY.conditions:
        if condition.malignant:
            out = apply_safety(make_report(condition.name), case(), ONTOLOGY)
            assert out.triage.urgency in ("urgent", "emergency"), condition.id
