"""The safety engine: reads the whole case and the model's report, fires the rules, and raises triage.

One engine, two kinds of rules, both only ever raising triage:

* **case and syndrome rules** (``rules/rules.yaml``): boolean expressions over signals read from the structured
  fields, the symptom tick-boxes, the free text (history, question, medications, duration, body site; five
  languages, typos, NegEx negation) and the model's findings and condition names;
* **condition rules** (below): what the model names, matched tolerantly (``conditions.py``) — an emergency
  condition at any likelihood, a malignancy at the policy's threshold, a malignancy word in an unmapped name, the
  diagnosis's default urgency, and unrecognised names.

When triage is raised, the action follows the most urgent reason (``rules/actions.yaml``), the model's own action and
any reassuring recommendation or red flag it wrote are moved to ``superseded``, ``model_triage`` keeps what the
model said, and every fired rule is recorded in ``report.safety`` with its reason and evidence.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

from assistant.core.case import Case, ClinicalContext
from assistant.core.ontology import Condition, Ontology, Urgency
from assistant.core.report import (
    DISCLAIMER,
    URGENCY_ORDER,
    Report,
    SafetyAction,
    SupersededItem,
    Triage,
    urgency_at_least,
)
from assistant.pipeline.safety import measures
from assistant.pipeline.safety.conditions import ConditionMatch, ConditionMatcher
from assistant.pipeline.safety.policy import SafetyPolicy
from assistant.pipeline.safety.schema import (
    LANGUAGES,
    AgeAtLeast,
    AgeBelow,
    AllOf,
    AnyOf,
    DurationAtLeast,
    Expr,
    NotOf,
    RuleSet,
    ScoreAtLeast,
    SizeAtLeast,
    default_rule_set,
)
from assistant.pipeline.safety.text import ANY_LANGUAGE, Hit, Matcher, Term, Triggers, fold, read, tokens


@dataclass(frozen=True)
class Evidence:
    where: str
    what: str
    uncertain: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" + (" (uncertain)" if self.uncertain else "")


@dataclass(frozen=True)
class Item:
    """A condition the model names: the diagnosis or a differential item."""

    text: str
    likelihood: float
    is_diagnosis: bool
    match: ConditionMatch

    def label(self) -> str:
        return f"{self.text} ({'diagnosis' if self.is_diagnosis else f'{self.likelihood:.2f}'})"


@dataclass
class Reading:
    """Everything the rules can see in one case and one report, read once."""

    context: ClinicalContext
    case_hits: list[Hit]
    finding_hits: list[Hit]
    items: list[Item]
    age: int | None
    duration_days: float | None
    size_mm: float | None
    temperature_c: float | None


@dataclass(frozen=True)
class Reason:
    rule: str
    level: Urgency
    action: str
    reason: str
    evidence: tuple[str, ...]


def _level(urgency: str) -> int:
    return URGENCY_ORDER.index(urgency)


class SafetyEngine:
    def __init__(self, ontology: Ontology, policy: SafetyPolicy, rules: RuleSet | None = None) -> None:
        self.ontology = ontology
        self.policy = policy
        self.rules = rules or default_rule_set()
        lexicon, language = self.rules.lexicon, self.rules.language
        terms = [Term.parse(name, phrase, lang) for name, concept in lexicon.concepts.items() for lang in LANGUAGES
                 for phrase in getattr(concept, lang)]
        terms += [Term.parse(name, phrase, ANY_LANGUAGE) for name, concept in lexicon.concepts.items()
                  for phrase in concept.any_language]
        # the same phrase listed in two languages ("eczema") is one term: one hit, fuzzy-matched in both languages
        unique = list(dict.fromkeys(t for t in terms if t.words))
        self.matcher = Matcher(unique, frozenset(fold(w) for w in language.no_fuzzy),
                               policy.min_fuzzy_length)
        self.triggers = Triggers(
            negation_before=Triggers.phrases(language.negation_before.all()),
            negation_list=Triggers.phrases(language.negation_list.all()),
            negation_after=Triggers.phrases(language.negation_after.all()),
            negation_final=Triggers.phrases(language.negation_final.all()),
            uncertainty_before=Triggers.phrases(language.uncertainty_before.all()),
            uncertainty_after=Triggers.phrases(language.uncertainty_after),
            pseudo=Triggers.phrases(language.pseudo_triggers),
            terminators=frozenset(w for p in language.terminators.all() for w in tokens(fold(p))),
            conjunctions=frozenset(w for p in language.conjunctions.all() for w in tokens(fold(p))))
        self.stopwords = {lang: frozenset(tokens(fold(" ".join(getattr(language.stopwords, lang)))))
                          for lang in LANGUAGES}
        self.conditions = ConditionMatcher(ontology, language, policy.min_fuzzy_length)
        self.action_order = list(self.rules.actions.actions)

    # -- reading ---------------------------------------------------------------------------------------------------
    def _read_text(self, text: str | None, source: str) -> list[Hit]:
        return read(text, source, self.matcher, self.triggers, self.policy.negation_window, self.stopwords)

    def read(self, report: Report, case: Case) -> Reading:
        ctx = case.context
        texts = {"site": ctx.body_site, "duration": ctx.duration, "history": ctx.history, "question": ctx.question,
                 "medications": ", ".join(ctx.medications)}
        case_hits = [hit for source, text in texts.items() for hit in self._read_text(text, source)]
        f = report.findings
        findings = [f.primary_morphology, f.colour, f.shape, f.border, f.distribution, f.size, *f.secondary_changes,
                    f.summary]
        finding_hits = [hit for text in findings for hit in self._read_text(text, "model findings")]
        items = [Item(report.diagnosis.condition, report.diagnosis.confidence, True,
                      self.conditions.match(report.diagnosis.condition))]
        items += [Item(d.condition, d.likelihood, False, self.conditions.match(d.condition))
                  for d in report.differential]
        all_text = list(texts.values())
        return Reading(
            context=ctx, case_hits=case_hits, finding_hits=finding_hits, items=items,
            age=ctx.age if ctx.age is not None else measures.age_years(ctx.history, ctx.question),
            duration_days=measures.duration_days(*all_text), size_mm=measures.size_mm(*all_text, f.size, f.summary),
            temperature_c=measures.temperature_c(*all_text))

    # -- signals and expressions -----------------------------------------------------------------------------------
    def signal(self, name: str, reading: Reading) -> list[Evidence]:
        spec = self.rules.signals[name]
        ctx = reading.context
        out = [Evidence(field.replace("_", " "), "answered yes") for field in spec.fields if getattr(ctx, field)]
        out += [Evidence("symptoms", symptom) for symptom in spec.symptoms if getattr(ctx.symptoms, symptom)]
        for concepts, hits in ((spec.concepts, reading.case_hits), (spec.findings, reading.finding_hits)):
            out += [Evidence(h.source, h.text, h.status == "uncertain") for h in hits
                    if h.concept in concepts and h.status != "negated"]
        for item in reading.items:
            if not (item.is_diagnosis or item.likelihood > 0):
                continue
            named = [cid for cid in item.match.ids if cid in spec.conditions
                     or any(getattr(self.ontology.get(cid), flag) for flag in spec.condition_flags)]
            if named:
                out.append(Evidence("model", item.label()))
        if spec.temperature_at_least is not None and (reading.temperature_c or 0) >= spec.temperature_at_least:
            out.append(Evidence("temperature", f"{reading.temperature_c} C"))
        if spec.size_mm_at_least is not None and (reading.size_mm or 0) >= spec.size_mm_at_least:
            out.append(Evidence("size", f"{reading.size_mm:g} mm"))
        return out

    def evaluate(self, expr: Expr, reading: Reading, cache: dict[str, list[Evidence]]) -> list[Evidence] | None:
        """The evidence that makes ``expr`` true, or None when it is false."""
        if isinstance(expr, str):
            if expr not in cache:
                cache[expr] = self.signal(expr, reading)
            return cache[expr] or None
        if isinstance(expr, AllOf):
            found: list[Evidence] = []
            for child in expr.all:
                evidence = self.evaluate(child, reading, cache)
                if evidence is None:
                    return None
                found += evidence
            return found
        if isinstance(expr, AnyOf):
            results = [e for e in (self.evaluate(child, reading, cache) for child in expr.any) if e is not None]
            return [ev for e in results for ev in e] if results else None
        if isinstance(expr, NotOf):
            return [] if self.evaluate(expr.not_, reading, cache) is None else None
        if isinstance(expr, AgeAtLeast):
            ok = reading.age is not None and reading.age >= expr.age_at_least
            return [Evidence("age", str(reading.age))] if ok else None
        if isinstance(expr, AgeBelow):
            ok = reading.age is not None and reading.age < expr.age_below
            return [Evidence("age", str(reading.age))] if ok else None
        if isinstance(expr, DurationAtLeast):
            days = reading.duration_days
            ok = days is not None and days >= expr.duration_days_at_least
            return [Evidence("duration", f"{days:g} days")] if ok else None
        if isinstance(expr, SizeAtLeast):
            size = reading.size_mm
            return [Evidence("size", f"{size:g} mm")] if size is not None and size >= expr.size_mm_at_least else None
        if isinstance(expr, ScoreAtLeast):
            return self._score(expr, reading, cache)
        raise TypeError(f"unknown rule expression {expr!r}")

    def _score(self, expr: ScoreAtLeast, reading: Reading, cache: dict[str, list[Evidence]]) -> list[Evidence] | None:
        total, found = 0.0, []
        for name, weight in self.rules.rules.scores[expr.score].weights.items():
            evidence = self.evaluate(name, reading, cache)
            if evidence:
                total += weight
                found += evidence
        if total < expr.at_least:
            return None
        return [*found, Evidence("score", f"{expr.score.replace('_', '-')} {total:g}")]

    # -- reasons ---------------------------------------------------------------------------------------------------
    def reasons(self, report: Report, case: Case) -> tuple[list[Reason], Reading]:
        reading = self.read(report, case)
        cache: dict[str, list[Evidence]] = {}
        found = []
        for rule in self.rules.rules.rules:
            evidence = self.evaluate(rule.when, reading, cache)
            if evidence is not None:
                found.append(Reason(rule.id, rule.level, rule.action, rule.reason, _unique(evidence)))
        found += self._condition_reasons(reading)
        found.sort(key=lambda r: (-_level(r.level), self.action_order.index(r.action)))
        return found, reading

    def condition_level(self, cond: Condition) -> Urgency:
        """How far naming this condition raises triage: its default; a malignancy at least to soon."""
        return cast(Urgency, urgency_at_least(cond.default_urgency, "soon") if cond.malignant else cond.default_urgency)

    def condition_action(self, cond: Condition) -> str:
        """The action naming ``cond`` calls for (only asked for conditions that raise triage above routine)."""
        table = self.rules.actions.condition_actions
        if cond.id in table.by_id:
            return table.by_id[cond.id]
        by_level = table.by_level[self.condition_level(cond)]
        key = "malignant" if cond.malignant else cond.category.value
        return by_level.get(key) or by_level["default"]

    def _condition_reasons(self, reading: Reading) -> list[Reason]:
        policy, texts = self.policy, self.rules.rules.condition_rules
        groups: dict[tuple[str, str, str], list[tuple[Item, str]]] = {}

        def add(rule: str, level: str, action: str, item: Item, name: str) -> None:
            groups.setdefault((rule, level, action), []).append((item, name))

        for item in reading.items:
            likely = item.is_diagnosis or item.likelihood >= policy.malignant_threshold
            conditions = [self.ontology.get(cid) for cid in item.match.ids]
            for cond in conditions:
                if cond.default_urgency == "emergency" and (item.is_diagnosis
                                                            or item.likelihood > policy.emergency_threshold):
                    add("emergency-condition", "emergency", self.condition_action(cond), item, cond.name)
                elif cond.malignant and likely:
                    add("suspected-malignancy", self.condition_level(cond), self.condition_action(cond), item,
                        cond.name)
                elif item.is_diagnosis and _level(cond.default_urgency) > 0 and not cond.malignant:
                    add("condition-default-urgency", cond.default_urgency, self.condition_action(cond), item,
                        cond.name)
            flagged = any(c.malignant or c.premalignant for c in conditions)
            if item.match.malignant_word and not flagged and likely:
                add("malignant-name", "urgent", "cancer_pathway", item, item.text)
            elif not conditions and not item.match.malignant_word and likely:
                add("unrecognised-condition", "soon", "review_soon", item, item.text)
        out = []
        for (rule, level, action), members in groups.items():
            names = ", ".join(dict.fromkeys(name for _, name in members))
            evidence = tuple(dict.fromkeys(f"model: {item.label()}" for item, _ in members))
            out.append(Reason(rule, cast(Urgency, level), action, texts[rule].reason.format(names=names), evidence))
        return out

    # -- contradictions --------------------------------------------------------------------------------------------
    def contradictions(self, reading: Reading) -> list[str]:
        """Inconsistencies in the model's own report, recorded as limitations (they never lower anything)."""
        out = []
        diagnosis, differential = reading.items[0], reading.items[1:]
        total = sum(i.likelihood for i in differential)
        if abs(total - 1.0) > self.policy.likelihood_sum_tolerance:
            out.append(f"The differential likelihoods sum to {total:.2f}, far from 1: treat them as rough rankings, "
                       "not probabilities.")
        ranked = sorted(differential, key=lambda i: -i.likelihood)
        ids = set(diagnosis.match.ids)
        rank = next((n for n, i in enumerate(ranked, start=1) if ids & set(i.match.ids)), None) if ids else None
        if ids and rank is None:
            out.append(f"The most likely diagnosis ({diagnosis.text}) is not in the model's own differential; the "
                       "report is internally inconsistent.")
        elif rank is not None and rank > self.policy.diagnosis_rank_limit:
            out.append(f"The most likely diagnosis ({diagnosis.text}) is only number {rank} in the model's own "
                       "differential; the report is internally inconsistent.")
        return out

    # -- applying --------------------------------------------------------------------------------------------------
    def is_reassurance(self, text: str) -> bool:
        return any(h.concept == "reassurance" and h.status != "negated" for h in self._read_text(text, "model"))

    def applied(self, report: Report, case: Case) -> Report:
        """A copy of ``report`` with the rules applied: triage never goes down; the disclaimer is always set."""
        reasons, reading = self.reasons(report, case)
        model_triage = report.model_triage or report.triage
        final: str = model_triage.urgency
        for reason in reasons:
            final = urgency_at_least(final, reason.level)
        triage, red_flags, recommendations = report.triage, list(report.red_flags), list(report.recommendations)
        superseded = list(report.superseded)
        if _level(final) > _level(model_triage.urgency):
            top = next(r for r in reasons if r.level == final)
            triage = Triage(urgency=cast(Urgency, final), action=self.rules.actions.actions[top.action].text)
            found = [SupersededItem(kind="action", text=model_triage.action)]
            found += [SupersededItem(kind="recommendation", text=t) for t in recommendations if self.is_reassurance(t)]
            found += [SupersededItem(kind="red_flag", text=t) for t in red_flags if self.is_reassurance(t)]
            superseded += [item for item in found if item not in superseded]
            dropped = {s.text for s in superseded}
            recommendations = [t for t in recommendations if t not in dropped]
            raising = [r.reason for r in reasons if _level(r.level) > _level(model_triage.urgency)]
            red_flags = [t for t in red_flags if t not in dropped] + [r for r in dict.fromkeys(raising)
                                                                      if r not in red_flags]
        limitations = [*report.limitations, *(c for c in self.contradictions(reading) if c not in report.limitations)]
        actions = [SafetyAction(rule=r.rule, level=r.level, action=r.action, reason=r.reason,
                                detail="; ".join(r.evidence)) for r in reasons]
        return report.model_copy(update={
            "disclaimer": DISCLAIMER, "triage": triage, "model_triage": model_triage, "red_flags": red_flags,
            "recommendations": recommendations, "superseded": superseded, "limitations": limitations,
            "safety": [*report.safety, *actions]})


def _unique(evidence: list[Evidence]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(e) for e in evidence))


@functools.lru_cache(maxsize=8)
def engine_for(ontology: Ontology, policy: SafetyPolicy) -> SafetyEngine:
    """One engine per ontology and policy (building the matchers is the expensive part)."""
    return SafetyEngine(ontology, policy)


def apply_safety(report: Report, case: Case, ontology: Ontology, policy: SafetyPolicy | None = None) -> Report:
    """Apply every safety rule to ``report`` for ``case`` (see the module docstring)."""
    return engine_for(ontology, policy or SafetyPolicy()).applied(report, case)
