"""The safety scenario table (tests/data/safety/scenarios.yaml) run through the real pipeline.

Each scenario is a case (structured context and free text, in one of five languages, with typos, negations,
qualifiers or injected instructions) plus what a model wrote about it. The scripted model answers through a real
OpenAI-compatible HTTP server on loopback (``support.scripted_openai``), so the case goes through image intake,
retrieval (``NullRetriever``, or the real Chroma store for scenarios marked ``store: true``), the real ``openai``
backend with the constrained-output request, validation, grounding, normalisation and the safety layer.

Used by tests/pipeline/test_safety_scenarios.py, and to produce the numbers in docs/safety.md::

    PYTHONPATH=. .venv/bin/python tests/support/safety_scenarios.py
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

if __name__ == "__main__":  # run as a script: make `support.*` importable as under pytest
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.core.case import Case, ClinicalContext, Symptoms
from assistant.core.report import URGENCY_ORDER, Report
from assistant.pipeline.pipeline import ReportPipeline
from assistant.pipeline.safety.schema import default_rule_set
from support.images import lesion_image
from support.paths import DATA
from support.scripted_openai import ScriptedOpenAI

SCENARIOS = DATA / "safety" / "scenarios.yaml"
Level = Literal["routine", "soon", "urgent", "emergency"]


# What the scripted model says to do when a scenario does not say: the reassuring routine advice is what a raised
# triage must supersede.
MODEL_ACTIONS = {"routine": "Reassure; no follow-up needed", "soon": "Review in 4 weeks",
                 "urgent": "Urgent dermatology review", "emergency": "Emergency department"}


class ModelOutput(BaseModel):
    """What the scripted model writes, in short: the rest of the draft is filled with neutral text."""

    model_config = ConfigDict(extra="forbid")

    dx: str
    confidence: float = 0.7
    diff: list[tuple[str, float]] | None = None
    triage: Level = "routine"
    action: str | None = None
    recommendations: list[str] | None = None
    red_flags: list[str] = Field(default_factory=list)
    colour: str = "pink"
    border: str = "well defined"
    distribution: str = "localised"
    size: str = "10 mm"
    morphology: str = "plaque"
    summary: str = "A single lesion as described."

    def draft(self) -> dict[str, Any]:
        action = self.action or MODEL_ACTIONS[self.triage]
        differential = self.diff or [(self.dx, self.confidence)]
        return {
            "findings": {"primary_morphology": self.morphology, "colour": self.colour, "shape": "round",
                         "border": self.border, "distribution": self.distribution, "size": self.size,
                         "secondary_changes": [], "summary": self.summary},
            "differential": [{"condition": c, "likelihood": p, "rationale": "Fits the appearance.",
                              "citation_ids": []} for c, p in differential],
            "diagnosis": {"condition": self.dx, "confidence": self.confidence},
            "triage": {"urgency": self.triage, "action": action},
            "red_flags": self.red_flags,
            "recommendations": self.recommendations if self.recommendations is not None else [action],
            "limitations": ["Image-only assessment."],
        }


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    lang: Literal["en", "es", "fr", "pt", "de"]
    kind: Literal["emergency", "urgent", "soon", "benign", "no-overcall"] = Field(
        description="emergency/urgent/soon: must reach at least `expect`; benign: a control that must stay at the "
                    "model's routine with no rule fired; no-overcall: must stay exactly at `expect`")
    expect: Level
    action: str | None = Field(None, description="the action the final triage must carry (actions.yaml key)")
    rules: list[str] = Field(default_factory=list, description="rules that must fire")
    tags: list[str] = Field(default_factory=list)
    store: bool = Field(False, description="retrieve from the real knowledge base")
    context: dict[str, Any] = Field(default_factory=dict)
    model: ModelOutput

    def case(self) -> Case:
        data = dict(self.context)
        if isinstance(data.get("symptoms"), list):
            data["symptoms"] = Symptoms.from_names(data["symptoms"])
        return Case(images=[lesion_image()], context=ClinicalContext(**data))


def load_scenarios(path: Path = SCENARIOS) -> list[Scenario]:
    return [Scenario.model_validate(item) for item in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]]


@dataclass
class Outcome:
    scenario: Scenario
    report: Report

    @property
    def level(self) -> str:
        return self.report.triage.urgency

    @property
    def action(self) -> str | None:
        texts = {a.text: key for key, a in default_rule_set().actions.actions.items()}
        return texts.get(self.report.triage.action)

    @property
    def fired(self) -> set[str]:
        return {a.rule for a in self.report.safety}

    def problems(self) -> list[str]:
        s, out = self.scenario, []
        reached = URGENCY_ORDER.index(self.level) >= URGENCY_ORDER.index(s.expect)
        if s.kind in ("emergency", "urgent", "soon") and not reached:
            out.append(f"reached {self.level}, expected at least {s.expect}")
        if s.kind in ("benign", "no-overcall") and self.level != s.expect:
            out.append(f"over-escalated to {self.level} (expected {s.expect})")
        if s.kind == "benign" and (self.fired or self.report.superseded):
            out.append(f"a benign control fired rules {sorted(self.fired)}")
        if s.action and self.action != s.action:
            out.append(f"action {self.action} ({self.report.triage.action!r}), expected {s.action}")
        missing = set(s.rules) - self.fired
        if missing:
            out.append(f"rules {sorted(missing)} did not fire (fired: {sorted(self.fired)})")
        return out


def run(scenario: Scenario, pipeline: ReportPipeline, server: ScriptedOpenAI) -> Outcome:
    server.script(scenario.model.draft())
    return Outcome(scenario, pipeline.run(scenario.case()))


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Recall per expected level (share reaching at least it, with the right action) and over-escalation."""
    out: dict[str, Any] = {"scenarios": len(outcomes), "by_language": dict(Counter(o.scenario.lang for o in outcomes))}
    for level in ("emergency", "urgent", "soon"):
        group = [o for o in outcomes if o.scenario.kind == level]
        out[f"{level}_n"] = len(group)
        out[f"{level}_recall"] = sum(not o.problems() for o in group) / len(group) if group else None
    controls = [o for o in outcomes if o.scenario.kind in ("benign", "no-overcall")]
    out["controls_n"] = len(controls)
    out["over_escalation_rate"] = sum(o.level != o.scenario.expect for o in controls) / len(controls)
    out["rules_fired"] = dict(sorted(Counter(r for o in outcomes for r in o.fired).items()))
    return out


def markdown(stats: dict[str, Any]) -> str:
    rows = ["| scenarios | level | recall (level reached with the right action) |", "|---|---|---|"]
    for level in ("emergency", "urgent", "soon"):
        rows.append(f"| {stats[f'{level}_n']} | {level} | {stats[f'{level}_recall']:.0%} |")
    rows.append(f"| {stats['controls_n']} | benign and no-over-call controls | over-escalation "
                f"{stats['over_escalation_rate']:.0%} |")
    langs = ", ".join(f"{k} {v}" for k, v in sorted(stats["by_language"].items()))
    return "\n".join([*rows, "", f"{stats['scenarios']} scenarios ({langs})."])


def main() -> int:
    import os
    import tempfile

    os.environ.setdefault("DERMASSIST_HOME", tempfile.mkdtemp(prefix="dermassist-safety-"))
    from assistant.app.build import build_pipeline
    from assistant.app.config import load_app_config
    from support.kb import built_store_dir

    server = ScriptedOpenAI()
    backend = {"backend": "openai", "model": server.model, "base_url": server.url}
    plain = build_pipeline(load_app_config(overrides={"backend": backend, "retrieval": {"enabled": False}}))
    scenarios = load_scenarios()
    stored = None
    if any(s.store for s in scenarios):
        stored = build_pipeline(load_app_config(overrides={
            "backend": backend, "retrieval": {"store": str(built_store_dir())}}))
    outcomes = [run(s, stored if s.store and stored else plain, server) for s in scenarios]
    server.close()
    for o in outcomes:
        if o.problems():
            print(f"FAIL {o.scenario.id}: {'; '.join(o.problems())}", file=sys.stderr)
    print(markdown(summary(outcomes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
