"""Case validation: clear messages for what a clinician or integrator gets wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.core.case import Case, ClinicalContext, Symptoms
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
