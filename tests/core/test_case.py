"""Case validation: clear messages for what a clinician or integrator gets wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.core.case import EMERGENCY_FIELDS, Case, ClinicalContext, Symptoms
from assistant.core.report import ReportContext
from assistant.core.skintone import is_darker_skin
from support.images import lesion_image


@pytest.mark.parametrize("images, message", [
    ([], "at least 1 item"),
    ([lesion_image()] * 5, "at most 4 items"),
    ([42], "image 1 must be a file path, bytes or a PIL image, not int"),
    ([lesion_image(), b""], "image 2 is empty"),
])
def test_images(images, message):
    with pytest.raises(ValidationError, match=message):
        Case(images=images)


def test_a_single_image_and_string_paths_are_accepted(tmp_path):
    case = Case(images=str(tmp_path / "x.jpg"))
    assert case.images == [tmp_path / "x.jpg"] and case.modality.value == "clinical"


@pytest.mark.parametrize("value, expected", [("iv", "IV"), (4, "IV"), ("6", "VI"), (" ii ", "II"), (None, None)])
def test_fitzpatrick_accepts_roman_and_arabic(value, expected):
    assert ClinicalContext(fitzpatrick=value).fitzpatrick == expected


@pytest.mark.parametrize("field, value, message", [
    ("fitzpatrick", "7", "Fitzpatrick type must be I-VI"),
    ("monk", "11", "Monk skin tone must be 1-10"),
    ("monk", 0, "Monk skin tone must be 1-10"),
    ("monk", "V", "Monk skin tone must be 1-10"),
    ("monk", 7.5, "Monk skin tone must be 1-10"),
    ("fever", "maybe", "valid boolean"),
    ("age", 130, "less than or equal to 120"),
    ("sex", "robot", "female"),
    ("body_site", "x" * 101, "at most 100 characters"),
])
def test_context_errors(field, value, message):
    with pytest.raises(ValidationError, match=message):
        ClinicalContext(**{field: value})


def test_unknown_context_field_is_refused():
    with pytest.raises(ValidationError, match="allergies"):
        ClinicalContext(allergies="penicillin")


def test_medications_from_a_comma_list_and_symptoms_from_names():
    assert ClinicalContext(medications="methotrexate, folic acid").medications == ["methotrexate", "folic acid"]
    assert Symptoms.from_names(["Itch", " bleeding", ""]).present() == ["itch", "bleeding"]
    with pytest.raises(ValueError, match="unknown symptom"):
        Symptoms.from_names(["sneezing"])


@pytest.mark.parametrize("value, expected", [(8, 8), ("8", 8), ("MST 3", 3), ("Monk 10", 10), ("", None), (None, None)])
def test_monk_is_accepted_alongside_fitzpatrick(value, expected):
    context = ClinicalContext(fitzpatrick="III", monk=value)
    assert context.monk == expected and context.fitzpatrick == "III"


@pytest.mark.parametrize("fitzpatrick, monk, darker", [
    ("VI", None, True), ("V", None, True), ("IV", None, False), (None, 7, True), (None, 6, False), ("I", 9, True),
    (None, None, False)])
def test_darker_skin_is_fitzpatrick_v_vi_or_monk_7_10(fitzpatrick, monk, darker):
    assert is_darker_skin(fitzpatrick, monk) is darker


def test_emergency_fields_are_described_yes_no_questions():
    """The CLI, the endpoint's metadata and the UI form are built from these fields and their descriptions."""
    fields = ClinicalContext.model_fields
    assert len(EMERGENCY_FIELDS) == 8
    for name in EMERGENCY_FIELDS:
        assert fields[name].annotation == bool | None and fields[name].default is None
        assert fields[name].description and len(fields[name].description) > 10


def test_emergency_answers_keep_yes_and_no_apart_from_not_asked():
    # strings as an HTTP client sends them in flat metadata
    context = ClinicalContext.model_validate({"fever": "yes", "pregnant": "false", "rapid_spread": True})
    assert context.emergency_answers() == [("fever", True), ("rapid_spread", True), ("pregnant", False)]
    assert ClinicalContext().emergency_answers() == []


def test_the_report_records_the_case_context_without_free_text():
    case = Case(images=[lesion_image()], modality="dermoscopy", context=ClinicalContext(
        age=54, sex="female", fitzpatrick="II", monk=3, body_site="back", duration="3 months",
        symptoms=Symptoms(change=True, itch=False), history="private history", medications="x", question="q?",
        fever=False, immunosuppressed=True))
    summary = ReportContext.from_case(case)
    assert summary.model_dump() == {
        "modality": "dermoscopy", "age": 54, "sex": "female", "body_site": "back", "fitzpatrick": "II", "monk": 3,
        "duration": "3 months", "symptoms": ["change"],
        "red_flag_answers": {"fever": False, "immunosuppressed": True}}
