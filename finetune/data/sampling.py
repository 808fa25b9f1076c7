"""Sampling options for the training split: as is, class-balanced, or balanced over class x skin-tone group.

Public dermatology sets are skewed twice: HAM10000 is two-thirds naevi, and most sets have few images of
Fitzpatrick V-VI skin. Balancing draws the training split again, with replacement, so that each class (or each
class x Fitzpatrick-group cell, unknown tone being its own group) carries the same total weight; the epoch keeps
its size. Only report samples are re-drawn; VQA samples keep their natural frequency. Validation and test splits
are never re-sampled, so metrics stay honest.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np

from finetune.data.records import SftRecord

Balance = Literal["none", "class", "class_skin_tone"]


def cell(record: SftRecord, mode: Balance) -> tuple[str, ...]:
    label = record.label_id or "unknown"
    return (label,) if mode == "class" else (label, record.fst_group or "unknown")


def rebalance(records: list[SftRecord], mode: Balance, seed: int = 0) -> list[SftRecord]:
    """The training records drawn again so every cell weighs the same (``none``: unchanged)."""
    if mode == "none":
        return list(records)
    reports = [r for r in records if r.kind == "report"]
    others = [r for r in records if r.kind != "report"]
    if not reports:
        return list(records)
    counts = Counter(cell(r, mode) for r in reports)
    weights = np.array([1.0 / counts[cell(r, mode)] for r in reports])
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(reports), size=len(reports), replace=True, p=weights / weights.sum())
    return [reports[i] for i in sorted(picks)] + others
