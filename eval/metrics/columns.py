"""Per-sample columns built once from a run's records, so every metric is a cheap function of index arrays.

Classification classes (the encoding ``eval.metrics.classification`` expects): the task's labels first, then one
class per condition id predicted outside the label set, then ``<unmapped>`` (a prediction that maps to no
condition) and ``<failed>`` (no output). A prediction under a label's umbrella group takes that label's class
(seborrhoeic keratosis is ``benign_keratosis`` on HAM10000).

Top-3 is over classes: the differential ranked by likelihood (ties keep the report's order), each item mapped to
its class, repeats of a class dropped, an item that maps to no condition holding a place of its own; the sample is
a hit when its label is among the first three classes — ``sklearn.metrics.top_k_accuracy_score(k=3)`` with those
ranks as scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eval.conditions import matches
from eval.results import SampleRecord

UNMAPPED, FAILED = "<unmapped>", "<failed>"
NAN = np.nan


def _f(v) -> float:
    return NAN if v is None else float(v)


def _arr(records: list[SampleRecord], fn) -> np.ndarray:
    return np.array([fn(r) for r in records], dtype=float)


@dataclass
class Columns:
    n: int
    available: set[str]
    labels: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    y_true: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    y_pred: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample floats, nan = not applicable
    bleu: np.ndarray | None = None  # (n, 10) sufficient statistics
    delta_bleu: np.ndarray | None = None

    def col(self, name: str) -> np.ndarray:
        return self.values[name]

    @property
    def k(self) -> int:
        return len(self.labels)


class _ClassIndex:
    """Maps condition ids to class indices, growing the outside-the-label-set classes as it meets them."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.index = {c: i for i, c in enumerate(labels)}
        self.outside: dict[str, int] = {}

    def of(self, cid: str | None) -> int | str:
        if cid is None:
            return UNMAPPED
        if cid in self.index:
            return self.index[cid]
        hit = next((i for i, c in enumerate(self.labels) if matches(cid, c)), None)
        return hit if hit is not None else cid

    def encode(self, cls: int | str, extra: dict[str, int]) -> int:
        return cls if isinstance(cls, int) else extra[cls]


def _top3_hit(ranked: list[int | str | None], truth: int) -> bool:
    seen: list[object] = []
    for i, cls in enumerate(ranked):
        key = ("unmapped", i) if cls == UNMAPPED else cls
        if key not in seen:
            seen.append(key)
        if len(seen) == 3:
            break
    return truth in seen


def _classification(records: list[SampleRecord], labels: list[str], cols: Columns) -> None:
    idx = _ClassIndex(labels)
    t = np.array([idx.index.get(r.label_id, -1) if r.label_id else -1 for r in records], dtype=np.int64)
    raw_pred = [FAILED if r.status != "ok" else idx.of(r.pred_id) for r in records]
    ranked = [[idx.of(c) for c in (r.differential_ids or r.top3_ids)] if r.status == "ok" else [] for r in records]
    outside = sorted({c for c in raw_pred if isinstance(c, str) and c not in (UNMAPPED, FAILED)})
    classes = [*labels, *outside, UNMAPPED, FAILED]
    extra = {c: i for i, c in enumerate(classes) if i >= len(labels)}
    p = np.array([idx.encode(c, extra) for c in raw_pred], dtype=np.int64)
    scored = t >= 0
    cols.classes, cols.y_true, cols.y_pred = classes, t, p
    v = cols.values
    v["correct"] = np.where(scored, (t == p).astype(float), NAN)
    v["top3"] = np.array([float(_top3_hit(rk, int(ti))) if ti >= 0 else NAN for rk, ti in zip(ranked, t, strict=True)])
    v["labelled"] = np.where(scored, 1.0, NAN)
    v["confidence"] = np.where(scored, _arr(records, lambda r: _f(r.confidence)), NAN)
    v["calibration_correct"] = np.where(scored, _arr(records, lambda r: r.scores.get("calibration_correct", NAN)),
                                        NAN)
    v["malignancy_score"] = _arr(records, lambda r: _f(r.malignancy_score))
    v["label_malignant"] = _arr(records, lambda r: _f(r.label_malignant))
    v["schema_valid"] = _arr(records, lambda r: _f(r.schema_valid))
    v["all"] = np.ones(len(records))
    v["ok"] = _arr(records, lambda r: 1.0 if r.status == "ok" else NAN)
    for name in ("citation_valid", "abstained", "urgent"):
        v[name] = _arr(records, lambda r, n=name: _f(getattr(r, n)))
    v["at_risk"] = np.where(v["label_malignant"] == 1, 1.0, NAN)
    v["urgent_at_risk"] = np.where(v["at_risk"] == 1, v["urgent"], NAN)
    cols.available |= {"label", "report", "malignancy"}


def _closed_vqa(records: list[SampleRecord], cols: Columns) -> None:
    v = cols.values
    v["correct"] = _arr(records, lambda r: _f(r.correct))
    v["unparsed"] = _arr(records, lambda r: float(r.extracted is None) if r.status == "ok" else NAN)
    v["all"] = np.ones(len(records))
    cols.available |= {"answer"}


def _open_vqa(records: list[SampleRecord], cols: Columns) -> None:
    for name in ("token_f1", "rouge_l", "bertscore"):
        a = _arr(records, lambda r, n=name: r.scores.get(n, NAN))
        if not np.isnan(a).all():
            cols.values[name] = a
    if "bertscore" in cols.values:
        cols.available.add("bertscore")
    cols.bleu = np.array([r.bleu_stats or [0.0] * 10 for r in records], dtype=float).reshape(len(records), 10)
    cols.available.add("references")
    if records and all(r.delta_bleu_stats is not None for r in records):
        cols.delta_bleu = np.array([r.delta_bleu_stats for r in records], dtype=float)
        cols.available.add("delta_weights")


def _judge(records: list[SampleRecord], cols: Columns) -> None:
    ok = _arr(records, lambda r: _f(r.judge_correct))
    if np.isnan(ok).all():
        return
    cols.values["judge_correct"] = ok
    cols.values["judge_unsure"] = _arr(records, lambda r: float(r.judge_verdict == "unsure") if r.judge_verdict
                                       else NAN)
    cols.available.add("judge")


def build_columns(task_type: str, records: list[SampleRecord], labels: list[str]) -> Columns:
    cols = Columns(n=len(records), available=set(), labels=list(labels))
    if task_type in ("classification", "report"):
        _classification(records, list(labels), cols)
    elif task_type == "closed_vqa":
        _closed_vqa(records, cols)
    else:
        _open_vqa(records, cols)
    _judge(records, cols)
    return cols
