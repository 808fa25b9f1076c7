"""Which samples ``--limit N`` evaluates: a seeded sample stratified by label (default), or the first N rows.

Published metadata files are often ordered by diagnosis (HAM10000's first rows are all ``bkl``), so the first N rows
can miss whole classes. The stratified sample gives every label (stratum) one sample when N allows, shares the rest
in proportion to the strata's sizes (largest remainder, ties to the larger stratum, then label order), draws within
each stratum with ``numpy.random.default_rng(seed)`` and keeps the dataset's order. The same dataset, N and seed
give the same samples, and a run resumed without ``--limit`` keeps them (they are a subset of all samples).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np

from eval.datasets import Sample

SampleMode = Literal["stratified", "first"]


def _stratum(s: Sample) -> str:
    return s.label_id or (f"raw:{s.label}" if s.label is not None else "")


def _quotas(sizes: dict[str, int], limit: int) -> dict[str, int]:
    keys = sorted(sizes, key=lambda k: (-sizes[k], k))
    quota = dict.fromkeys(keys, 0)
    if limit >= len(keys):  # one each first, so no label is missing when N allows
        quota = dict.fromkeys(keys, 1)
    left = limit - sum(quota.values())
    room = {k: sizes[k] - quota[k] for k in keys}
    total = sum(room.values())
    if left <= 0 or total == 0:
        return quota
    exact = {k: left * room[k] / total for k in keys}
    for k in keys:
        quota[k] += int(exact[k])
    rest = left - sum(int(exact[k]) for k in keys)
    for k in sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), -sizes[k], k))[:rest]:
        quota[k] += 1
    return quota


def select_samples(samples: list[Sample], limit: int | None, mode: SampleMode = "stratified",
                   seed: int = 0) -> list[Sample]:
    if not limit or limit >= len(samples):
        return list(samples)
    if mode == "first":
        return list(samples[:limit])
    strata: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        strata[_stratum(s)].append(i)
    quota = _quotas({k: len(v) for k, v in strata.items()}, limit)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for key in sorted(strata):
        if quota[key]:
            chosen += rng.choice(strata[key], size=quota[key], replace=False).tolist()
    return [samples[i] for i in sorted(chosen)]
