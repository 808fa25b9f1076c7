"""Gaps between skin-tone groups."""

from __future__ import annotations


def gap_summary(values: dict[str, float | None]) -> dict:
    """Worst and best group, best-minus-worst gap and normalized range ((max - min) / mean) over groups with a value.

    Groups without samples (value None) are ignored; with fewer than two groups the gap and range are None."""
    present = {g: v for g, v in values.items() if v is not None}
    if not present:
        return {"worst_group": None, "worst": None, "best_group": None, "best": None, "gap": None,
                "normalized_range": None, "groups": 0}
    worst_group = min(present, key=lambda g: (present[g], g))
    best_group = max(present, key=lambda g: (present[g], g))
    lo, hi = present[worst_group], present[best_group]
    mean = sum(present.values()) / len(present)
    two = len(present) >= 2
    return {"worst_group": worst_group, "worst": lo, "best_group": best_group, "best": hi,
            "gap": hi - lo if two else None, "normalized_range": (hi - lo) / mean if two and mean > 0 else None,
            "groups": len(present)}
