"""How the harness reads condition ids from model outputs and labels, through the one ontology.

A report's ``condition_id`` is any string as far as the report schema goes, so what a model (or a replayed file)
writes there is never trusted as an id: a canonical id is taken as it is, anything else ("melanoma_in_situ",
"Melanoma", "nevus") goes through ``Ontology.normalize`` like free text, then the item's ``condition`` text does.
What maps to nothing is ``None`` — an unmapped prediction, scored wrong — never a crash.

"Malignant or premalignant" is the ontology's ``malignant`` or ``premalignant`` flag (``Condition.premalignant`` is
the one definition the safety layer uses too), so actinic keratosis counts the same whether a dataset calls it
HAM10000 ``akiec`` (an umbrella flagged malignant or premalignant) or ISIC 2019 ``AK``.
"""

from __future__ import annotations

from typing import Any

from assistant.core.ontology import default_ontology

ONTOLOGY = default_ontology()


def canonical_id(item: Any) -> tuple[str | None, str | None]:
    """(canonical id or None, the raw ``condition_id`` when it was not a canonical id) for a differential item
    or diagnosis dict; never raises on odd values."""
    if not isinstance(item, dict):
        return None, None
    raw = item.get("condition_id")
    if isinstance(raw, str) and raw in ONTOLOGY:
        return raw, None
    for text in (raw, item.get("condition")):
        if isinstance(text, str) and (cid := ONTOLOGY.normalize(text)) is not None:
            return cid, raw if isinstance(raw, str) and raw else None
    return None, raw if isinstance(raw, str) and raw else None


def matches(pred_id: str | None, label_id: str | None) -> bool:
    """The prediction is the label, or a condition under the label's umbrella group (e.g. SK counts for bkl)."""
    if pred_id is None or label_id is None or pred_id not in ONTOLOGY or label_id not in ONTOLOGY:
        return False
    return ONTOLOGY.matches(pred_id, label_id)


def at_risk(condition_id: str | None) -> bool | None:
    """Malignant or premalignant per the ontology; None when the id is missing or unknown."""
    if condition_id is None or condition_id not in ONTOLOGY:
        return None
    cond = ONTOLOGY.get(condition_id)
    return cond.malignant or cond.premalignant
