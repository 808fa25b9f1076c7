"""The rule files (``rules/*.yaml``) as pydantic models, loaded and cross-checked once.

* ``lexicon.yaml`` — concepts (words for "fever", "mucosal involvement", "grew"...) in English, Spanish, French,
  Portuguese and German; a concept marked ``emergency`` or ``malignancy`` must have words in all five.
* ``language.yaml`` — NegEx triggers, scope terminators, words never fuzzy-matched, qualifiers stripped from
  condition names and the malignancy words that escalate even an unmapped condition name.
* ``signals.yaml`` — named signals: where each is read (structured fields, symptoms, case text, the model's findings,
  the model's conditions).
* ``rules.yaml`` — the case-side and syndrome rules (boolean expressions over signals, ages, durations, sizes,
  scores) and the reason texts of the condition rules.
* ``actions.yaml`` — the actions a rule can call for, in priority order, and which action a condition calls for.

``python -m assistant.pipeline.safety.schema`` validates the files; ``tests/pipeline/test_safety_rules.py`` too.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from assistant.core.ontology import Category, Urgency, default_ontology
from assistant.core.report import Line

LANGUAGES = ("en", "es", "fr", "pt", "de")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Concept(_Strict):
    kind: Literal["emergency", "malignancy", "general"] = Field(
        description="emergency and malignancy concepts need words in every language")
    en: tuple[str, ...] = ()
    es: tuple[str, ...] = ()
    fr: tuple[str, ...] = ()
    pt: tuple[str, ...] = ()
    de: tuple[str, ...] = ()
    any_language: tuple[str, ...] = Field((), description="words that are the same in every language (drug names)")

    def phrases(self) -> tuple[str, ...]:
        return (*self.en, *self.es, *self.fr, *self.pt, *self.de, *self.any_language)

    @model_validator(mode="after")
    def _languages(self) -> Concept:
        if self.kind != "general" and not self.any_language:
            missing = [lang for lang in LANGUAGES if not getattr(self, lang)]
            if missing:
                raise ValueError(f"a {self.kind} concept needs words in every language; missing {missing}")
        return self


class Lexicon(_Strict):
    concepts: dict[str, Concept]


class PerLanguage(_Strict):
    en: tuple[str, ...] = ()
    es: tuple[str, ...] = ()
    fr: tuple[str, ...] = ()
    pt: tuple[str, ...] = ()
    de: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return (*self.en, *self.es, *self.fr, *self.pt, *self.de)

    @model_validator(mode="after")
    def _every_language(self) -> PerLanguage:
        missing = [lang for lang in LANGUAGES if not getattr(self, lang)]
        if missing:
            raise ValueError(f"needs words in every language; missing {missing}")
        return self


class Language(_Strict):
    negation_before: PerLanguage
    negation_list: PerLanguage
    negation_after: PerLanguage
    negation_final: PerLanguage
    uncertainty_before: PerLanguage
    uncertainty_after: tuple[str, ...]
    pseudo_triggers: tuple[str, ...]
    terminators: PerLanguage
    conjunctions: PerLanguage
    stopwords: PerLanguage = Field(description="function words that tell which language a text is written in")
    no_fuzzy: tuple[str, ...] = Field(description="real words one edit away from a lexicon word: never corrected")
    qualifiers: PerLanguage = Field(description="words stripped from a condition name before matching")
    malignant_stems: tuple[str, ...] = Field(
        description="word stems naming a malignancy in any of the languages; a condition name with one escalates")


class SignalDef(_Strict):
    fields: tuple[str, ...] = Field((), description="ClinicalContext yes/no fields; True = present")
    symptoms: tuple[str, ...] = Field((), description="Symptoms fields; True = present")
    concepts: tuple[str, ...] = Field((), description="lexicon concepts found in the case text")
    findings: tuple[str, ...] = Field((), description="lexicon concepts found in the model's findings text")
    conditions: tuple[str, ...] = Field((), description="ontology ids the model names (diagnosis or differential)")
    condition_flags: tuple[Literal["malignant", "premalignant"], ...] = ()
    temperature_at_least: float | None = Field(None, description="a written temperature (°C) this high")
    size_mm_at_least: float | None = Field(None, description="a lesion size (case text or the model's findings)")

    @model_validator(mode="after")
    def _not_empty(self) -> SignalDef:
        if not any((self.fields, self.symptoms, self.concepts, self.findings, self.conditions, self.condition_flags,
                    self.temperature_at_least, self.size_mm_at_least)):
            raise ValueError("a signal needs at least one source")
        return self


class AllOf(_Strict):
    all: tuple[Expr, ...] = Field(min_length=1)


class AnyOf(_Strict):
    any: tuple[Expr, ...] = Field(min_length=1)


class NotOf(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    not_: Expr = Field(alias="not")


class AgeAtLeast(_Strict):
    age_at_least: int


class AgeBelow(_Strict):
    age_below: int


class DurationAtLeast(_Strict):
    duration_days_at_least: float


class SizeAtLeast(_Strict):
    size_mm_at_least: float


class ScoreAtLeast(_Strict):
    score: str
    at_least: float


Expr = Annotated[
    str | AllOf | AnyOf | NotOf | AgeAtLeast | AgeBelow | DurationAtLeast | SizeAtLeast | ScoreAtLeast,
    Field(union_mode="left_to_right")]
for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    level: Urgency
    action: str
    reason: str = Field(min_length=10, description="one sentence for the clinician")
    when: Expr


class Score(_Strict):
    weights: dict[str, float] = Field(description="signal -> points when present")


class ConditionRuleText(_Strict):
    reason: str = Field(description="may use {names}")


class Rules(_Strict):
    scores: dict[str, Score] = Field(default_factory=dict)
    rules: tuple[Rule, ...]
    condition_rules: dict[str, ConditionRuleText]


class Action(_Strict):
    level: Urgency
    text: str

    @model_validator(mode="after")
    def _report_line(self) -> Action:
        # the text becomes Triage.action: the report contract's printable, bounded line
        TypeAdapter(Line).validate_python(self.text)
        return self


class ConditionActions(_Strict):
    by_id: dict[str, str] = Field(default_factory=dict)
    by_level: dict[Urgency, dict[str, str]] = Field(
        description="level -> {category, 'malignant' or 'default': action}")


class Actions(_Strict):
    actions: dict[str, Action] = Field(description="in priority order: the first at the top level sets the action")
    condition_actions: ConditionActions


class RuleSet(_Strict):
    lexicon: Lexicon
    language: Language
    signals: dict[str, SignalDef]
    rules: Rules
    actions: Actions

    @model_validator(mode="after")
    def _cross_references(self) -> RuleSet:
        ontology = default_ontology()
        problems: list[str] = []
        concepts = set(self.lexicon.concepts)
        contexts = {"fever", "mucosal_involvement", "immunosuppressed", "non_blanching_rash", "rapid_spread",
                    "new_medication_last_8_weeks", "pregnant", "systemically_unwell"}
        for name, signal in self.signals.items():
            problems += [f"signal {name}: unknown concept {c}" for c in (*signal.concepts, *signal.findings)
                         if c not in concepts]
            problems += [f"signal {name}: unknown condition {c}" for c in signal.conditions if c not in ontology]
            problems += [f"signal {name}: unknown field {f}" for f in signal.fields if f not in contexts]
            problems += [f"signal {name}: unknown symptom {s}" for s in signal.symptoms
                         if s not in {"itch", "pain", "bleeding", "growth", "change"}]
        for score_name, score in self.rules.scores.items():
            problems += [f"score {score_name}: unknown signal {s}" for s in score.weights if s not in self.signals]
        seen: set[str] = set()
        for rule in self.rules.rules:
            if rule.id in seen:
                problems.append(f"rule {rule.id}: duplicate id")
            seen.add(rule.id)
            if rule.action not in self.actions.actions:
                problems.append(f"rule {rule.id}: unknown action {rule.action}")
            elif self.actions.actions[rule.action].level != rule.level:
                level = self.actions.actions[rule.action].level
                problems.append(f"rule {rule.id}: action {rule.action} is for {level}")
            problems += [f"rule {rule.id}: {p}" for p in _expr_problems(rule.when, self)]
        for cid, action in self.actions.condition_actions.by_id.items():
            if cid not in ontology:
                problems.append(f"condition_actions: unknown condition {cid}")
            if action not in self.actions.actions:
                problems.append(f"condition_actions: unknown action {action}")
        for level, table in self.actions.condition_actions.by_level.items():
            for key, action in table.items():
                if key not in {"malignant", "default", *(c.value for c in Category)}:
                    problems.append(f"condition_actions.{level}: unknown key {key}")
                if action not in self.actions.actions:
                    problems.append(f"condition_actions.{level}: unknown action {action}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def concepts_used_by(self, expr: Expr) -> set[str]:
        """Every lexicon concept an expression can read (through its signals and scores)."""
        names = _signal_names(expr, self)
        return {c for n in names for c in (*self.signals[n].concepts, *self.signals[n].findings)}


def _signal_names(expr: Expr, rules: RuleSet) -> set[str]:
    if isinstance(expr, str):
        return {expr}
    if isinstance(expr, AllOf):
        return set().union(*(_signal_names(e, rules) for e in expr.all))
    if isinstance(expr, AnyOf):
        return set().union(*(_signal_names(e, rules) for e in expr.any))
    if isinstance(expr, NotOf):
        return _signal_names(expr.not_, rules)
    if isinstance(expr, ScoreAtLeast) and expr.score in rules.rules.scores:
        return set(rules.rules.scores[expr.score].weights)
    return set()


def _expr_problems(expr: Expr, rules: RuleSet) -> list[str]:
    if isinstance(expr, str):
        return [] if expr in rules.signals else [f"unknown signal {expr}"]
    if isinstance(expr, ScoreAtLeast):
        return [] if expr.score in rules.rules.scores else [f"unknown score {expr.score}"]
    children: tuple[Any, ...] = ()
    if isinstance(expr, AllOf):
        children = expr.all
    elif isinstance(expr, AnyOf):
        children = expr.any
    elif isinstance(expr, NotOf):
        children = (expr.not_,)
    return [p for child in children for p in _expr_problems(child, rules)]


RULE_FILES = ("lexicon", "language", "signals", "rules", "actions")


def read_rule_files(folder: Any = None) -> dict[str, Any]:
    """The raw YAML of every rule file (``folder`` for tests; default: the packaged ``rules/``)."""
    root = folder or resources.files("assistant.pipeline.safety") / "rules"
    return {name: yaml.safe_load((root / f"{name}.yaml").read_text(encoding="utf-8")) for name in RULE_FILES}


def parse_rule_set(data: dict[str, Any]) -> RuleSet:
    return RuleSet(lexicon=data["lexicon"], language=data["language"], signals=data["signals"]["signals"],
                   rules=data["rules"], actions=data["actions"])


@functools.lru_cache(maxsize=1)
def default_rule_set() -> RuleSet:
    """The packaged rules, validated once per process (read-only afterwards)."""
    return parse_rule_set(read_rule_files())


def main() -> int:
    try:
        rules = default_rule_set()
    except (ValidationError, ValueError) as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {len(rules.lexicon.concepts)} concepts, {len(rules.signals)} signals, {len(rules.rules.rules)} rules, "
          f"{len(rules.actions.actions)} actions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
