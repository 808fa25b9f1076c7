"""The dataset card written next to the SFT data: what went in, per split, per class and per skin-tone group.

A fine-tuned model inherits its data's gaps; the card makes them visible before training (e.g. no Fitzpatrick V-VI
images of melanoma) and records how the data was built, so a run can be traced to its inputs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.skintone import FITZPATRICK, FITZPATRICK_GROUPS
from finetune.data.records import SftRecord


class DatasetCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fingerprint: str = Field(description="hash of the build settings and the source datasets")
    settings: dict[str, Any]
    sources: dict[str, dict[str, Any]] = Field(description="task -> adapter, data path, dataset fingerprint, counts")
    counts: dict[str, int] = Field(description="split -> samples (train after re-sampling)")
    groups: dict[str, int] = Field(description="split -> leakage groups (patients / lesions / images)")
    per_class: dict[str, dict[str, int]] = Field(description="split -> condition id -> samples")
    per_fitzpatrick: dict[str, dict[str, int]]
    per_fst_group: dict[str, dict[str, int]]
    per_kind: dict[str, dict[str, int]]
    skipped: dict[str, int] = Field(default_factory=dict, description="reason -> samples left out")


def _count(rows: list[SftRecord], key, order: tuple[str, ...] = ()) -> dict[str, int]:
    counts = Counter(key(r) or "unknown" for r in rows)
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    return {k: counts[k] for k in keys}


def make_card(fingerprint: str, settings: dict[str, Any], sources: dict[str, dict[str, Any]],
              splits: dict[str, list[SftRecord]], skipped: Counter[str]) -> DatasetCard:
    return DatasetCard(
        fingerprint=fingerprint, settings=settings, sources=sources,
        counts={name: len(rows) for name, rows in splits.items()},
        groups={name: len({r.group for r in rows}) for name, rows in splits.items()},
        per_class={name: _count(rows, lambda r: r.label_id) for name, rows in splits.items()},
        per_fitzpatrick={name: _count(rows, lambda r: r.fitzpatrick, FITZPATRICK) for name, rows in splits.items()},
        per_fst_group={name: _count(rows, lambda r: r.fst_group, FITZPATRICK_GROUPS) for name, rows in splits.items()},
        per_kind={name: _count(rows, lambda r: f"{r.kind}:{r.source}") for name, rows in splits.items()},
        skipped=dict(skipped.most_common()))


def _table(title: str, table: dict[str, dict[str, int]]) -> list[str]:
    splits = list(table)
    keys = list(dict.fromkeys(k for split in splits for k in table[split]))
    if not keys:
        return []
    lines = [f"## {title}", "", "| | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    lines += [f"| {k} | " + " | ".join(str(table[s].get(k, 0)) for s in splits) + " |" for k in keys]
    return [*lines, ""]


def card_markdown(card: DatasetCard) -> str:
    lines = ["# Dataset card (dermassist fine-tuning data)", "",
             f"Fingerprint `{card.fingerprint}`. Splits by patient / lesion / image (no identity is in two splits);"
             " the training split is re-sampled only when `balance` is set; validation and test never are.", "",
             "## Sources", "", "| task | adapter | data | dataset fingerprint | samples |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {s['adapter']} | `{s['data']}` | `{s['fingerprint']}` | {s['samples']} |"
              for name, s in card.sources.items()]
    lines += ["", "## Samples", "", "| split | samples | leakage groups |", "|---|---|---|"]
    lines += [f"| {split} | {n} | {card.groups.get(split, 0)} |" for split, n in card.counts.items()]
    lines.append("")
    lines += _table("Per class", card.per_class)
    lines += _table("Per Fitzpatrick skin type", card.per_fitzpatrick)
    lines += _table("Per Fitzpatrick group (I-II, III-IV, V-VI)", card.per_fst_group)
    lines += _table("Per kind and source", card.per_kind)
    if card.skipped:
        lines += ["## Left out", "", *[f"- {reason}: {n}" for reason, n in card.skipped.items()], ""]
    lines += ["## Settings", "", "```", *[f"{k}: {v}" for k, v in card.settings.items()], "```", ""]
    return "\n".join(lines)
