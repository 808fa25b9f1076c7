"""The safety rules are data: every packaged file validates, cross-references resolve, emergency and malignancy
words exist in all five languages, every action text is a valid report line, and a broken file is a clear error."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from assistant.pipeline.safety.schema import (
    LANGUAGES,
    default_rule_set,
    main,
    parse_rule_set,
    read_rule_files,
)
from support.paths import REPO

RULES = default_rule_set()
RULE_DIR = REPO / "assistant" / "pipeline" / "safety" / "rules"


def test_the_packaged_rules_validate(capsys):
    assert main() == 0
    assert capsys.readouterr().out.startswith(f"OK: {len(RULES.lexicon.concepts)} concepts")


def test_each_rule_file_starts_with_how_it_is_validated():
    for path in sorted(RULE_DIR.glob("*.yaml")):
        head = path.read_text(encoding="utf-8").split("\n", 8)
        assert any("assistant.pipeline.safety.schema" in line for line in head), path.name


def test_emergency_and_malignancy_words_exist_in_every_language():
    for rule in RULES.rules.rules:
        if rule.level not in ("emergency", "urgent"):
            continue
        for name in RULES.concepts_used_by(rule.when):
            concept = RULES.lexicon.concepts[name]
            assert concept.kind in ("emergency", "malignancy"), f"{rule.id} reads {name} ({concept.kind})"
            assert concept.any_language or all(getattr(concept, lang) for lang in LANGUAGES), name


def test_the_condition_rules_have_reasons_and_the_cancer_pathway_is_for_malignancy_only():
    assert set(RULES.rules.condition_rules) == {"emergency-condition", "suspected-malignancy", "malignant-name",
                                                "condition-default-urgency", "unrecognised-condition"}
    cancer = {r.id for r in RULES.rules.rules if r.action == "cancer_pathway"}
    assert cancer == {"melanoma-signs", "nail-band", "non-healing-lesion", "immunosuppressed-growing-lesion",
                      "premalignant-invasion-signs", "bcc-high-risk", "mycosis-fungoides-advanced"}


def _broken(edit) -> str:
    data = copy.deepcopy(read_rule_files())
    edit(data)
    with pytest.raises(ValidationError) as info:
        parse_rule_set(data)
    return str(info.value)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["rules"]["rules"][0]["when"]["any"].append("no_such_signal"), "unknown signal no_such_signal"),
    (lambda d: d["rules"]["rules"][0].update(action="teleport"), "unknown action teleport"),
    (lambda d: d["rules"]["rules"][0].update(action="review_soon"), "action review_soon is for soon"),
    (lambda d: d["lexicon"]["concepts"]["fever"].pop("de"), "needs words in every language; missing ['de']"),
    (lambda d: d["signals"]["signals"]["fever"].update(concepts=["fevre"]), "unknown concept fevre"),
    (lambda d: d["signals"]["signals"]["zoster"].update(conditions=["shingles_x"]), "unknown condition shingles_x"),
    (lambda d: d["actions"]["actions"]["review_soon"].update(text='Say "hi"'), "String should match pattern"),
    (lambda d: d["actions"]["condition_actions"]["by_id"].update(melanoma="cancer_pathwy"), "unknown action"),
    (lambda d: d["rules"]["rules"].append(dict(d["rules"]["rules"][0])), "duplicate id"),
    (lambda d: d["language"]["negation_before"].pop("pt"), "missing ['pt']"),
])
def test_a_broken_rule_file_is_a_clear_error(edit, message):
    assert message in _broken(edit)


def test_docs_list_every_rule_and_action():
    text = (REPO / "docs" / "safety.md").read_text(encoding="utf-8")
    names = [r.id for r in RULES.rules.rules] + list(RULES.rules.condition_rules) + list(RULES.actions.actions)
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/safety.md does not mention {missing}"
