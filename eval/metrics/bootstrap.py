"""Percentile bootstrap confidence intervals over samples, with a fixed seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(stat: Callable[[np.ndarray], float | None], n: int, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float] | None:
    """95% interval of ``stat(indices)`` over ``n_boot`` resamples of ``range(n)`` with replacement.

    Resamples where the statistic is undefined (None / nan) are dropped; None when fewer than half are defined
    or there is nothing to resample."""
    if n == 0 or n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        v = stat(rng.integers(0, n, size=n))
        if v is not None and not np.isnan(v):
            values.append(v)
    if len(values) < n_boot / 2:
        return None
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)
