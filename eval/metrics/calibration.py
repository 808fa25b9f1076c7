"""Expected calibration error with equal-width bins, and the reliability-diagram data."""

from __future__ import annotations

import numpy as np


def reliability_bins(confidence, correct, n_bins: int = 10) -> list[dict]:
    """Bins (lo, hi]; a confidence of exactly 0 falls in the first bin."""
    c = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    y = np.asarray(correct, dtype=float)
    idx = np.clip(np.ceil(np.round(c * n_bins, 9)).astype(int) - 1, 0, n_bins - 1)  # 0.7*10 = 7.000000000000001
    bins = []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        bins.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": n,
                     "confidence": float(c[m].mean()) if n else None,
                     "accuracy": float(y[m].mean()) if n else None})
    return bins


def ece(confidence, correct, n_bins: int = 10) -> float | None:
    """ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|; None for no samples."""
    n = len(confidence)
    if n == 0:
        return None
    return float(sum(b["n"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(confidence, correct, n_bins) if b["n"]))
