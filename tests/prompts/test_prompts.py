"""Prompt templates render every block and carry a content-derived version."""

from __future__ import annotations

import re

import jinja2
import pytest

import prompts
from assistant.core.case import ClinicalContext, Symptoms
from assistant.core.retrieval import Passage


def test_version_is_manifest_plus_content_hash():
    assert re.fullmatch(r"report-v\d+\+[0-9a-f]{8}", prompts.PROMPT_VERSION)


def test_report_instruction_renders_context_guidelines_and_question():
    context = ClinicalContext(age=61, sex="female", fitzpatrick="5", body_site="left shin", duration="2 months",
                              symptoms=Symptoms(bleeding=True, growth=True), history="kidney transplant",
                              medications="tacrolimus, prednisolone", question="Is this a skin cancer?")
    passages = [Passage(id="squamous_cell_carcinoma#red-flags", title="SCC — Red flags", source="s",
                        text="Rapidly growing keratotic nodule.")]
    text = prompts.render("report/instruction.j2", context=context, passages=passages,
                          symptoms=", ".join(context.symptoms.present()))
    for expected in ("Age: 61", "Sex: female", "Fitzpatrick skin type: V", "left shin", "2 months",
                     "bleeding, growth", "kidney transplant", "tacrolimus, prednisolone",
                     "[squamous_cell_carcinoma#red-flags]", "Is this a skin cancer?"):
        assert expected in text


def test_report_instruction_without_context_or_passages_says_so():
    text = prompts.render("report/instruction.j2", context=ClinicalContext(), passages=[], symptoms="")
    assert "Age: not given" in text and "do not cite any" in text and "none reported" in text


@pytest.mark.parametrize("modality", ["clinical photographs of the skin", "dermoscopic images of a skin lesion"])
def test_system_prompt_names_modality_and_safety(modality):
    text = prompts.render("report/system.j2", modality_phrase=modality)
    assert modality in text and "do not make a diagnosis" in text


def test_missing_variable_is_an_error_not_an_empty_string():
    with pytest.raises(jinja2.UndefinedError):
        prompts.render("report/system.j2")


def test_chat_prompts_render():
    system = prompts.render("chat/system.j2", passages=[])
    user = prompts.render("chat/user.j2", question="What is this?", context=None, symptoms="")
    assert "decision-support" in system and user == "What is this?"


def test_no_prompt_text_in_python_code():
    """Prompts live in templates: no module of the pipeline carries instruction prose for the model."""
    import inspect

    import assistant.pipeline.pipeline as pipeline

    source = inspect.getsource(pipeline)
    assert "You are" not in source and "Answer with" not in source


def test_context_shows_monk_and_only_the_red_flag_questions_answered():
    context = ClinicalContext(fitzpatrick="VI", monk=9, fever=True, pregnant=False)
    text = prompts.render("report/instruction.j2", context=context, passages=[], symptoms="")
    assert "Fitzpatrick skin type: VI" in text and "Monk skin tone: 9 of 10" in text
    assert "Red-flag questions: fever: yes; pregnant: no" in text and "immunosuppressed" not in text
    plain = prompts.render("report/instruction.j2", context=ClinicalContext(), passages=[], symptoms="")
    assert "Monk" not in plain and "Red-flag questions" not in plain


def test_system_prompt_gives_the_colour_guidance_the_corpus_says_it_gives():
    """rag/corpus/topics/skin_of_colour_presentation.md tells readers what the assistant is instructed to do."""
    from support.paths import REPO

    claim = (REPO / "rag" / "corpus" / "topics" / "skin_of_colour_presentation.md").read_text(encoding="utf-8")
    prompt = prompts.render("report/system.j2", modality_phrase="clinical photographs of the skin")
    for phrase in ("describe colour in terms that apply to the patient's skin", '"purple-brown"',
                   "state uncertainty rather than over-reassure"):
        assert phrase.lower() in claim.lower(), phrase
        assert phrase.lower() in prompt.lower(), phrase
    assert "violaceous" in prompt and "palms" in prompt


def test_a_report_becomes_the_assistant_turn_of_a_follow_up():
    """`ReportPipeline.answer(report=...)` and the UI's thin client both put this text before the question."""
    from assistant.core.messages import chat_messages, report_turn
    from support.reports import first_chunk_ids, grounded_report

    report = grounded_report(first_chunk_ids(2))
    turn = report_turn(report)
    assert report.red_flags  # melanoma: the safety layer added one
    for expected in (f"Triage: {report.triage.urgency} — {report.triage.action}",
                     "Most likely: melanoma (confidence 45%)", "melanoma 45% [", "seborrheic keratosis 35%",
                     f"Red flags: {report.red_flags[0]}"):
        assert expected in turn, expected
    messages = chat_messages("What next?", history=[("assistant", turn)])
    assert [m.role for m in messages] == ["system", "assistant", "user"]
