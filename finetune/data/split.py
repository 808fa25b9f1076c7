"""Train / validation / test splits by patient, lesion and image, never by row.

HAM10000 has several images of one lesion (``lesion_id``), PAD-UFES-20 several lesions of one patient
(``patient_id``), MM-Skin several questions about one image; SCIN cases and DermaVQA encounters are one sample each.
Samples that share any of these identities are joined into one group (union-find over ``SftRecord.leakage_keys``),
and whole groups are assigned to splits, stratified by label: within each label the groups are ordered by a seeded
hash and the held-out splits take their (rounded) share from the front, so class proportions are kept in every
split and the result depends only on the group ids and the seed.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable

from finetune.data.records import SftRecord

SPLITS = ("train", "val", "test")


class LeakageError(ValueError):
    """A patient, lesion or image appears in more than one split."""


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, keys: Iterable[str]) -> None:
        roots = sorted({self.find(k) for k in keys})
        for other in roots[1:]:
            self.parent[other] = roots[0]


def assign_groups(records: list[SftRecord]) -> None:
    """Set ``record.group``: records linked by any shared identity get the same (smallest) key."""
    uf = _UnionFind()
    for record in records:
        uf.union([f"record:{record.id}", *record.leakage_keys])
    for record in records:
        record.group = uf.find(f"record:{record.id}")


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def split_records(records: list[SftRecord], val_fraction: float, test_fraction: float,
                  seed: int = 0) -> dict[str, list[SftRecord]]:
    """Whole groups to splits, per stratum (the group's most common label, or its source for VQA samples)."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and leave samples for training")
    assign_groups(records)
    members: dict[str, list[SftRecord]] = defaultdict(list)
    for record in records:
        members[record.group].append(record)
    strata: dict[str, list[str]] = defaultdict(list)
    for group, rows in members.items():
        labels = Counter(r.label_id or f"{r.kind}:{r.source}" for r in rows)
        strata[min(labels, key=lambda label: (-labels[label], label))].append(group)
    out: dict[str, list[SftRecord]] = {name: [] for name in SPLITS}
    for groups in strata.values():
        ordered = sorted(groups, key=lambda g: _rank(seed, g))
        n_test = round(test_fraction * len(ordered))
        n_val = min(round(val_fraction * len(ordered)), max(len(ordered) - n_test - 1, 0))
        for i, group in enumerate(ordered):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            for record in members[group]:
                record.split = split
                out[split].append(record)
    for rows in out.values():
        rows.sort(key=lambda r: r.id)
    check_no_leakage(out)
    return out


def check_no_leakage(splits: dict[str, list[SftRecord]]) -> None:
    """Raise ``LeakageError`` when any identity (patient, lesion, image, sample) is in two splits."""
    seen: dict[str, str] = {}
    for split, rows in splits.items():
        for record in rows:
            for key in [f"record:{record.id}", *record.leakage_keys]:
                other = seen.setdefault(key, split)
                if other != split:
                    raise LeakageError(f"{key.split(':', 1)[0]} {key.split(':', 1)[1]!r} is in both the {other} "
                                       f"and the {split} split")
