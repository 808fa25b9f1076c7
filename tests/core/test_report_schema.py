"""The report contract: exported schema in sync, decoding schema compiles the way vLLM compiles it."""

from __future__ import annotations

import json

import pytest
import xgrammar as xgr
from pydantic import ValidationError

from assistant.core.report import (
    DISCLAIMER,
    Report,
    ReportDraft,
    draft_json_schema,
    packaged_report_schema,
    report_json_schema,
    urgency_at_least,
)


def test_packaged_schema_matches_the_model():
    assert packaged_report_schema() == json.loads(json.dumps(report_json_schema())), (
        "assistant/core/schema/report.schema.json is stale: run "
        "`dermassist schema --output assistant/core/schema/report.schema.json`")


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_decoding_schema_is_bounded_and_decoder_friendly():
    schema = draft_json_schema(["psoriasis#red-flags"])
    for node in _walk(schema):
        if node.get("type") == "string" and "enum" not in node:
            assert "pattern" in node and "maxLength" not in node  # pattern carries the bound (see report._text)
            assert "{0," in node["pattern"]
        if node.get("type") == "array":
            assert "maxItems" in node


def test_citation_ids_are_an_enum_of_retrieved_ids_and_required_when_present():
    item = draft_json_schema(["b#x", "a#y", "a#y"])["$defs"]["DraftDifferentialItem"]["properties"]["citation_ids"]
    assert item["items"]["enum"] == ["a#y", "b#x"] and item["minItems"] == 1
    assert "citation_ids" in draft_json_schema(["a#y"])["$defs"]["DraftDifferentialItem"]["required"]
    empty = draft_json_schema([])["$defs"]["DraftDifferentialItem"]["properties"]["citation_ids"]
    assert empty["maxItems"] == 0


@pytest.mark.parametrize("cache", [True, False])
def test_decoding_schema_compiles_in_xgrammar_as_vllm_runs_it(tiny_model, cache):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tok, vocab_size=1024), cache_enabled=cache)
    compiler.compile_json_schema(json.dumps(draft_json_schema(["a#b", "c#d"])), any_whitespace=False,
                                 separators=(",", ":"))


def test_vllm_would_choose_xgrammar_for_our_schema():
    from vllm.v1.structured_output.backend_xgrammar import has_xgrammar_unsupported_json_features

    assert not has_xgrammar_unsupported_json_features(draft_json_schema(["a#b"]))


def _draft(**over):
    base = {
        "findings": {"primary_morphology": "plaque", "colour": "pink", "shape": "oval", "border": "well defined",
                     "distribution": "extensor", "size": "3 cm", "secondary_changes": ["scale"], "summary": "s"},
        "differential": [{"condition": "psoriasis", "likelihood": 0.7, "rationale": "r", "citation_ids": []}],
        "diagnosis": {"condition": "psoriasis", "confidence": 0.7},
        "triage": {"urgency": "routine", "action": "GP review"},
    }
    base.update(over)
    return base


@pytest.mark.parametrize("bad, where", [
    ({"differential": []}, "differential"),
    ({"differential": [{"condition": "x", "likelihood": 1.5, "rationale": "r"}]}, "likelihood"),
    ({"triage": {"urgency": "whenever", "action": "a"}}, "urgency"),
    ({"diagnosis": {"condition": "x" * 81, "confidence": 0.5}}, "condition"),
    ({"diagnosis": {"condition": "bad\u0007bell", "confidence": 0.5}}, "condition"),
    ({"red_flags": ["a"] * 6}, "red_flags"),
    ({"extra": 1}, "extra"),
])
def test_draft_validation_rejects(bad, where):
    with pytest.raises(ValidationError) as err:
        ReportDraft.model_validate(_draft(**bad))
    assert where in str(err.value)


def test_report_always_has_a_disclaimer_by_default():
    assert "not a diagnosis" in DISCLAIMER
    assert Report.model_fields["disclaimer"].default == DISCLAIMER


@pytest.mark.parametrize("current, floor, expected", [
    ("routine", "urgent", "urgent"), ("emergency", "soon", "emergency"), ("soon", "soon", "soon"),
])
def test_urgency_only_goes_up(current, floor, expected):
    assert urgency_at_least(current, floor) == expected


def test_every_knowledge_base_chunk_id_is_a_valid_citation_id():
    """The decoder may cite any retrieved chunk id: each must also pass ReportDraft validation."""
    from pydantic import TypeAdapter

    from assistant.core.report import CitationId
    from rag.corpus import chunk_documents, load_packaged_corpus

    adapter = TypeAdapter(CitationId)
    ids = [chunk.id for chunk in chunk_documents(load_packaged_corpus())]
    assert len(ids) > 600
    for chunk_id in ids:
        adapter.validate_python(chunk_id)
