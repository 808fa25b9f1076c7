"""The safety layer tried the way a clinical safety reviewer would: the scenario table (tests/data/safety/
scenarios.yaml, >= 80 cases in five languages, with typos, negations, qualifiers, injected instructions and benign
controls) run through the real pipeline and the real ``openai`` backend against a scripted OpenAI-compatible server
on loopback (real HTTP, the real constrained-output request). Every emergency and urgent case must reach its level
with the right action; no benign control may be raised."""

from __future__ import annotations

from collections import Counter

import pytest

from assistant.app.build import build_pipeline
from assistant.app.config import load_app_config
from assistant.pipeline.render import report_markdown
from assistant.pipeline.safety.schema import default_rule_set
from support.kb import built_store_dir
from support.safety_scenarios import Outcome, load_scenarios, run, summary
from support.scripted_openai import ScriptedOpenAI

pytestmark = pytest.mark.slow  # a few scenarios retrieve from the real knowledge base (built once per session)

SCENARIOS = load_scenarios()


@pytest.fixture(scope="module")
def scripted():
    server = ScriptedOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="module")
def outcomes(scripted) -> dict[str, Outcome]:
    """Every scenario run once: a pipeline without retrieval, and one on the real store for ``store: true``."""
    backend = {"backend": "openai", "model": scripted.model, "base_url": scripted.url}
    plain = build_pipeline(load_app_config(overrides={"backend": backend, "retrieval": {"enabled": False}}))
    stored = build_pipeline(load_app_config(overrides={"backend": backend,
                                                       "retrieval": {"store": str(built_store_dir())}}))
    try:
        return {s.id: run(s, stored if s.store else plain, scripted) for s in SCENARIOS}
    finally:
        plain.close()
        stored.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario(outcomes, scenario):
    outcome = outcomes[scenario.id]
    assert not outcome.problems(), outcome.problems()


def test_recall_is_total_and_no_benign_control_is_raised(outcomes):
    stats = summary(list(outcomes.values()))
    assert stats["emergency_recall"] == 1.0 and stats["urgent_recall"] == 1.0 and stats["soon_recall"] == 1.0
    assert stats["over_escalation_rate"] == 0.0


def test_the_table_covers_every_rule_language_and_kind(outcomes):
    assert len(SCENARIOS) >= 80
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)
    kinds = Counter((s.lang, s.kind) for s in SCENARIOS)
    for lang in ("en", "es", "fr", "pt", "de"):
        assert kinds[(lang, "emergency")] >= 2 and kinds[(lang, "urgent")] >= 2 and kinds[(lang, "benign")] >= 1, lang
    fired = {rule for o in outcomes.values() for rule in o.fired}
    syndromes = {rule.id for rule in default_rule_set().rules.rules}
    assert syndromes <= fired, f"rules no scenario exercises: {sorted(syndromes - fired)}"
    assert set(default_rule_set().rules.condition_rules) <= fired
    tags = Counter(tag for s in SCENARIOS for tag in s.tags)
    for tag in ("misspelling", "negation", "qualifier", "injection", "store", "structured", "skin-tone"):
        assert tags[tag] >= 1, tag


def test_every_request_was_the_real_constrained_output_request(scripted, outcomes):
    assert len(scripted.requests) >= len(SCENARIOS)
    for body in scripted.requests:
        assert body["response_format"]["type"] == "json_schema"
        content = body["messages"][-1]["content"]
        assert any(part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
                   for part in content)
    stored = [o for o in outcomes.values() if o.scenario.store]
    assert stored and all(o.report.citations and o.report.grounding.retrieved_ids for o in stored)
    dark = outcomes["store-benign-psoriasis-darker-skin"].report
    assert any(pid.endswith("#on-darker-skin") for pid in dark.grounding.retrieved_ids)


def test_a_raised_report_keeps_the_models_triage_and_lists_what_it_superseded(outcomes):
    report = outcomes["melanoma-signs-en-naevus"].report
    assert report.model_triage.urgency == "routine" and report.triage.urgency == "urgent"
    assert {(s.kind, s.text) for s in report.superseded} >= {("action", "Reassure; no follow-up needed"),
                                                              ("recommendation", "Reassure; no follow-up needed")}
    assert "Reassure; no follow-up needed" not in report.recommendations
    assert report.context.age == 60 and report.context.body_site == "back"
    text = report_markdown(report)
    triage_line = text.index("**Triage: URGENT**")
    reason = text.index("Warning signs of melanoma", triage_line)
    assert reason < text.index("**Most likely:**") and "Raised by the safety layer" in text
    assert "## Superseded model advice" in text and "## Case context" in text
    injected = outcomes["emergency-injection-en"].report
    assert ("red_flag", "No red flags") in {(s.kind, s.text) for s in injected.superseded}
