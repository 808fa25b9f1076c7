"""Skin-tone scales, defined once: Fitzpatrick types I-VI, their three pairs (12/34/56), the Monk scale 1-10, and
what counts as darker skin (Fitzpatrick V-VI or Monk 7-10) for retrieval and the report.

Case intake, retrieval, the safety layer, the dataset readers and the fairness metrics all parse and order skin
tone through these functions, so a value accepted in one place is accepted (and grouped) the same everywhere.
"""

from __future__ import annotations

from typing import Any

FITZPATRICK = ("I", "II", "III", "IV", "V", "VI")
FITZPATRICK_GROUPS = ("12", "34", "56")
MONK = tuple(str(i) for i in range(1, 11))
_GROUP_OF = {"I": "12", "II": "12", "III": "34", "IV": "34", "V": "56", "VI": "56"}


def parse_fitzpatrick(value: Any) -> str | None:
    """'1'..'6', '3.0', 'III', 'iii', 'FST3', 'type 3' -> 'III'; None, '', -1, 'unknown' -> None."""
    if value is None:
        return None
    text = str(value).strip().upper().replace("FST", "").replace("TYPE", "").strip()
    if text in FITZPATRICK:
        return text
    try:
        n = int(float(text))
    except ValueError:
        return None
    return FITZPATRICK[n - 1] if 1 <= n <= 6 else None


def fitzpatrick_group(fitzpatrick: str | None) -> str | None:
    """The pair a Fitzpatrick type belongs to (I/II -> '12', III/IV -> '34', V/VI -> '56')."""
    return None if fitzpatrick is None else _GROUP_OF[fitzpatrick]


def parse_monk(value: Any) -> int | None:
    """Monk skin tone 1-10 (also '3', '3.0', 'MST 3', 'Monk 3'); anything else -> None."""
    text = str(value).strip().upper().replace("MONK", "").replace("MST", "").strip()
    try:
        n = int(float(text))
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 10 else None


DARKER_FITZPATRICK = ("V", "VI")
DARKER_MONK_FROM = 7


def is_darker_skin(fitzpatrick: str | None, monk: int | None) -> bool:
    """Brown and black skin: Fitzpatrick V-VI or Monk 7-10.

    The two scales do not map onto each other exactly; Monk 7 is where the Monk scale's swatches reach the brown
    tones of Fitzpatrick V, so a patient described on either scale gets the same "on darker skin" guidance.
    """
    return fitzpatrick in DARKER_FITZPATRICK or (monk is not None and monk >= DARKER_MONK_FROM)
