"""The UI's parts without a browser: the form generated from ClinicalContext, the report HTML, the exports, and the
thin client's reading of the endpoint's chat content. Reports come from the real post-generation steps
(``support.reports``)."""

from __future__ import annotations

import io
import json

import jsonschema
import pytest
from pydantic import BaseModel, Field
from pypdf import PdfReader

from assistant.core.case import ClinicalContext, Symptoms
from assistant.core.errors import CaseError
from assistant.core.report import DISCLAIMER, Report, packaged_report_schema
from assistant.core.skintone import MONK
from assistant.pipeline.pipeline import ChatAnswer
from assistant.serving.service import render_chat
from assistant.ui import views
from assistant.ui.engine import answer_text
from assistant.ui.export import report_pdf, write_exports
from assistant.ui.form import TOP_LEVEL_FLAGS, context_form, context_from_values, form_values
from support.reports import first_chunk_ids, grounded_report


def _controls(model=ClinicalContext) -> dict[str, object]:
    """Every field a form control fills, with the control (nested flag groups count their sub-fields too)."""
    covered = {}
    for spec in context_form(model):
        for name in spec.fields():
            covered[name] = spec
    return covered


def test_every_clinical_context_field_has_a_form_control():
    covered = _controls()
    assert set(covered) == set(ClinicalContext.model_fields) - {"question"}  # the question has its own box
    for name, info in ClinicalContext.model_fields.items():
        nested = getattr(info.annotation, "model_fields", None)
        if nested and name in covered:  # a group of yes/unknown flags: every flag is a tick box
            assert {flag for flag, _ in covered[name].flags} == set(nested), name


class _FutureContext(BaseModel):
    """A context model as the safety issue grows ClinicalContext: structured emergency fields and a Monk tone."""

    age: int | None = Field(None, ge=0, le=120)
    monk: int | None = Field(None, ge=1, le=10, description="Monk skin tone 1-10")
    symptoms: Symptoms = Field(default_factory=Symptoms)
    fever: bool | None = Field(None, description="temperature 38 C or more")
    mucosal_involvement: bool | None = Field(None, description="mouth, eyes or genitals affected")


def test_fields_added_to_the_context_appear_in_the_form_and_validate():
    specs = context_form(_FutureContext)
    covered = _controls(_FutureContext)
    assert set(covered) == {"age", "monk", "symptoms", "fever", "mucosal_involvement"}
    signs = next(s for s in specs if s.name == TOP_LEVEL_FLAGS)
    assert dict(signs.flags)["fever"] == "Fever (temperature 38 C or more)"
    assert next(s for s in specs if s.name == "monk").choices == MONK
    values = [["fever"] if s.name == TOP_LEVEL_FLAGS else "7" if s.name == "monk" else None for s in specs]
    context = context_from_values(specs, values, model=_FutureContext)
    assert context.fever is True and context.mucosal_involvement is None  # unticked: not reported, never False
    assert context.monk == 7
    assert form_values(specs, context)[[s.name for s in specs].index("monk")] == 7


def test_form_values_round_trip():
    specs = context_form()
    context = ClinicalContext(age=61, sex="female", fitzpatrick="V", body_site="left shin", duration="2 months",
                              symptoms=Symptoms(bleeding=True, change=True), history="kidney transplant",
                              medications=["tacrolimus", "prednisolone"])
    values = form_values(specs, context)
    assert context_from_values(specs, values, "Is this a skin cancer?") == context.model_copy(
        update={"question": "Is this a skin cancer?"})


@pytest.mark.parametrize("age, message", [
    ("999", "invalid clinical context: age: Input should be less than or equal to 120"),
    ("fifty", "invalid clinical context: age: age must be a number"),
])
def test_invalid_form_values_are_one_sentence_naming_the_field(age, message):
    specs = context_form()
    values = [age if s.name == "age" else None for s in specs]
    with pytest.raises(CaseError) as err:
        context_from_values(specs, values)
    assert str(err.value) == message


def test_an_empty_age_box_means_not_given_never_zero():
    specs = context_form()
    assert context_from_values(specs, ["" if s.name == "age" else None for s in specs]).age is None
    assert context_from_values(specs, [" 54 " if s.name == "age" else None for s in specs]).age == 54


def test_report_html_escapes_model_output_and_shows_every_part():
    ids = first_chunk_ids(2)
    report = grounded_report(ids, summary="<script>alert(1)</script> & <b>x</b>", rationale="<img src=x onerror=y>")
    html = views.report_html(report)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in html
    assert 'class="da-triage da-triage-urgent"' in html  # melanoma in the diagnosis: the safety layer escalates
    assert "suspected-malignancy" in html  # the escalation reason under the badge
    assert html.count('class="da-diff-bar"') == 3 and 'style="width:45%"' in html
    assert f'data-citation="{ids[0]}"' in html  # the cited passage, expandable beside its claim
    assert "Removed 1 citation(s)" in html  # the hallucinated id is gone, and the report says so
    assert DISCLAIMER in html


def test_exports_json_validates_markdown_reads_and_pdf_carries_what_matters(tmp_path):
    ids = first_chunk_ids(2)
    report = grounded_report(ids)
    paths = write_exports(report, tmp_path / "session")
    data = json.loads(paths["json"].read_text())
    jsonschema.validate(data, packaged_report_schema())
    assert Report.model_validate(data) == report
    markdown = paths["markdown"].read_text()
    assert "**Triage: URGENT**" in markdown and "not a diagnosis" in markdown
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(paths["pdf"].read_bytes())).pages)
    flat = " ".join(text.split())
    for expected in ("Clinical decision support, not a diagnosis", "Triage: URGENT", "melanoma: 45%",
                     "seborrheic keratosis: 35%", "Guideline sources cited", f"[{ids[0]}]"):
        assert expected in flat, expected


def test_pdf_survives_unbroken_and_non_latin_text():
    report = grounded_report(first_chunk_ids(2), summary="x" * 400)
    report = report.model_copy(update={"recommendations": ["Überweisung — 皮膚科 ≥ 2 weeks"]})
    assert report_pdf(report).startswith(b"%PDF")


def test_the_thin_client_reads_the_answer_the_server_rendered():
    """``dermassist serve`` appends safety notes, sources and the disclaimer for plain chat clients; the UI shows
    those from the structured extras, so it takes back exactly the answer text."""
    report = grounded_report(first_chunk_ids(2))
    answer = ChatAnswer(text="Refer urgently.\n\nSee the guideline.", citations=report.citations[:1],
                        safety_notes=["Mentions Melanoma: possible malignancy."], provenance=report.provenance)
    content = render_chat(answer.text, answer.safety_notes, [(c.id, c.title) for c in answer.citations],
                          answer.disclaimer)
    extras = answer.model_dump(mode="json", exclude={"text"})
    assert answer_text(content, extras) == answer.text
    assert answer_text("just text", {}) == "just text"


def test_more_than_four_photos_is_one_message_and_no_photo_is_taken(tmp_path):
    from assistant.ui.app import UISettings, _Handlers
    from support.images import png_bytes

    handlers = _Handlers(engine=None, settings=UISettings(sessions=tmp_path), specs=context_form())
    images, errors = handlers.intake([png_bytes(size=(240, 240))] * 5)
    assert images == [] and errors == ["A case takes at most 4 photos; remove 1."]
