"""The endpoint's ``metadata`` carries the structured red-flag answers and the Monk scale with no serving code of
their own: they are ``ClinicalContext`` fields, so they validate (and fail) exactly as on the CLI."""

from __future__ import annotations

import pytest

from assistant.core.case import EMERGENCY_FIELDS
from assistant.serving.errors import ServingError
from assistant.serving.service import parse_metadata


def test_red_flags_and_monk_flat_as_strings_and_nested():
    flat, _ = parse_metadata({"fever": "true", "non_blanching_rash": "yes", "pregnant": "no", "monk": "8",
                              "new_medication_last_8_weeks": "1"})
    assert flat.emergency_answers() == [("fever", True), ("non_blanching_rash", True),
                                        ("new_medication_last_8_weeks", True), ("pregnant", False)]
    assert flat.monk == 8
    nested, _ = parse_metadata({"clinical_context": {name: True for name in EMERGENCY_FIELDS}})
    assert [name for name, _ in nested.emergency_answers()] == list(EMERGENCY_FIELDS)


@pytest.mark.parametrize("metadata, message", [({"fever": "sometimes"}, "fever"), ({"monk": "11"}, "Monk"),
                                               ({"fevr": "true"}, "unknown key")])
def test_bad_red_flag_metadata_is_a_clear_400(metadata, message):
    with pytest.raises(ServingError, match=message):
        parse_metadata(metadata)
