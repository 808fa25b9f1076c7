"""Report targets: valid ReportDrafts for every condition, triage as the safety layer sets it, citations of what was
retrieved only, alternatives inside the task's label set."""

from __future__ import annotations

import pytest

from assistant.core.case import Case, ClinicalContext, Symptoms
from assistant.core.ontology import default_ontology
from assistant.core.report import ReportDraft
from assistant.core.retrieval import Passage
from eval.task import load_task
from finetune.data.targets import load_targets, report_target
from support.images import lesion_image

ONTOLOGY = default_ontology()
PASSAGES = [
    Passage(id="abcde#warning-signs", title="ABCDE", source="s", text="t", condition_ids=[]),
    Passage(id="melanoma#when-to-refer", title="Melanoma", source="s", text="t", condition_ids=["melanoma"]),
    Passage(id="benign_keratosis#typical", title="BKL", source="s", text="t",
            condition_ids=["benign_keratosis", "seborrheic_keratosis"]),
]


def case(**symptoms) -> Case:
    return Case(images=[lesion_image()], context=ClinicalContext(age=60, symptoms=Symptoms(**symptoms)))


@pytest.mark.parametrize("condition", [c.id for c in ONTOLOGY.conditions])
def test_every_condition_gets_a_valid_draft_that_names_it(condition):
    draft = report_target(condition, case(), PASSAGES)
    ReportDraft.model_validate_json(draft.model_dump_json())  # the decoder contract, printable and bounded
    assert ONTOLOGY.normalize(draft.diagnosis.condition) == condition
    assert ONTOLOGY.normalize(draft.differential[0].condition) == condition
    assert sum(item.likelihood for item in draft.differential) <= 1.0
    assert all(item.citation_ids for item in draft.differential)  # passages exist: every item rests on one


def test_triage_is_what_the_safety_layer_would_set():
    assert report_target("melanoma", case(), PASSAGES).triage.urgency == "urgent"
    nevus = report_target("melanocytic_nevus", case(), PASSAGES)
    assert nevus.triage.urgency == "routine" and nevus.red_flags == []
    assert report_target("melanocytic_nevus", case(bleeding=True), PASSAGES).triage.urgency == "soon"
    emergencies = [c.id for c in ONTOLOGY.conditions if c.default_urgency == "emergency"]
    assert emergencies and report_target(emergencies[0], case(), PASSAGES).triage.urgency == "emergency"
    melanoma = report_target("melanoma", case(), PASSAGES)
    assert any("Melanoma" in flag for flag in melanoma.red_flags)


def test_citations_prefer_passages_about_the_condition_and_never_invent():
    melanoma = report_target("melanoma", case(), PASSAGES)
    assert melanoma.differential[0].citation_ids == ["melanoma#when-to-refer"]
    sk = report_target("seborrheic_keratosis", case(), PASSAGES)
    assert sk.differential[0].citation_ids == ["benign_keratosis#typical"]  # its umbrella group's passage
    psoriasis = report_target("psoriasis", case(), PASSAGES)
    assert psoriasis.differential[0].citation_ids == ["abcde#warning-signs"]  # nothing about it: the top passage
    assert report_target("melanoma", case(), []).differential[0].citation_ids == []  # nothing retrieved


def test_alternatives_stay_inside_the_label_set_and_below_the_safety_threshold():
    labels = load_task("synthetic_ham").labels
    for condition in labels:
        draft = report_target(condition, case(), PASSAGES, labels=labels)
        ids = [ONTOLOGY.normalize(item.condition) for item in draft.differential]
        assert set(ids) <= set(labels) and len(ids) == len(set(ids))
        assert all(item.likelihood < 0.15 for item in draft.differential[1:])
    assert len(report_target("psoriasis", case(), PASSAGES).differential) == 1  # no alternatives listed


def test_target_book_is_valid_and_names_only_ontology_conditions():
    book = load_targets()
    assert set(book.category_findings) >= {c.category.value for c in ONTOLOGY.conditions}
    assert all(cid in ONTOLOGY for cid in book.conditions)
