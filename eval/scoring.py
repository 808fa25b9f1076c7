"""Records into metrics: the specs a task asks for (``eval.metrics.METRICS``) over the run, every skin-tone group and
bootstrap resamples, plus the confusion matrix, per-class results, baselines and calibration bins.

Rules that matter for trust (docs/eval.md): a failed sample is wrong, never dropped — where a metric needs a score
a failed sample does not have (AUROC, ECE, report-level rates), the number of such samples is reported next to it
as ``n_excluded``; an unmapped prediction is wrong (class ``unmapped``), never a random pick; a label that does not
map into the label set has no ground truth and is counted in the run's headline label counts; empty groups are
listed with n=0 and no value and are ignored by gap statistics.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from assistant.core.skintone import FITZPATRICK, FITZPATRICK_GROUPS, MONK
from eval.datasets import Sample
from eval.metrics import METRICS, MetricSpec
from eval.metrics import calibration as cal
from eval.metrics import classification as clf
from eval.metrics.bootstrap import bootstrap_ci
from eval.metrics.columns import FAILED, UNMAPPED, build_columns
from eval.metrics.fairness import gap_summary
from eval.results import CalibrationBin, ClassResult, FairnessResult, GroupResult, MetricValue, SampleRecord
from eval.task import TaskConfig

SCALE_GROUPS = {"fitzpatrick": FITZPATRICK, "fst_group": FITZPATRICK_GROUPS, "monk": MONK,
                "fitzpatrick_estimated": FITZPATRICK}
JUDGE_METRICS = ["judge_accuracy", "judge_unsure_rate"]  # added whenever the run used --judge-url
CONFUSION_EXTRA = ["other", "unmapped", "failed"]


class Scorer:
    """The metrics a task asks for (and the judge's, when there are verdicts) whose needs the records meet."""

    def __init__(self, task_type: str, metrics: list[str], records: list[SampleRecord], labels: list[str]):
        self.task_type, self.records, self.labels = task_type, records, list(labels)
        self.cols = build_columns(task_type, records, self.labels)
        wanted = list(dict.fromkeys([*metrics, *JUDGE_METRICS]))
        self.specs: dict[str, MetricSpec] = {}
        for name in wanted:
            spec = METRICS.get(name)
            if task_type in spec.task_types and spec.needs <= self.cols.available:
                self.specs[name] = spec

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    def compute(self, name: str, idx: np.ndarray):
        return self.specs[name].compute(self.cols, idx)

    def point(self, name: str, idx: np.ndarray) -> float | None:
        """The metric's value on the samples ``idx`` (used by bootstrap resamples and ``eval compare``)."""
        return self.compute(name, idx).value if idx.size else None

    def value(self, name: str, idx: np.ndarray, n_boot: int, seed: int, with_ci: bool) -> MetricValue:
        if not idx.size:
            return MetricValue(value=None, n=0)
        got = self.compute(name, idx)
        ci = (bootstrap_ci(lambda r: self.point(name, idx[r]), int(idx.size), n_boot, seed)
              if with_ci and got.value is not None else None)
        return MetricValue(value=got.value, ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, n=got.n,
                           n_excluded=got.n_excluded)

    def headline(self, task: TaskConfig) -> set[str]:
        chosen = task.headline or [n for n, s in self.specs.items() if self.task_type in s.headline_for]
        return set(chosen) | {"judge_accuracy"}

    def group_metrics(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.per_group]


def group_key(record: SampleRecord, scale: str) -> str | None:
    v = getattr(record, scale)
    return None if v is None else str(v)


def _groups(task: TaskConfig, scorer: Scorer, records: list[SampleRecord], headline: set[str]) -> dict:
    out: dict = {"groups": [], "fairness": []}
    scales = list(task.skin_tone.scales) + (["fitzpatrick_estimated"] if task.skin_tone.estimate else [])
    metrics = scorer.group_metrics()
    for scale in scales:
        keys = [group_key(r, scale) for r in records]
        if all(k is None for k in keys):
            continue
        estimated = scale == "fitzpatrick_estimated"
        values: dict[str, dict[str, float | None]] = {m: {} for m in metrics}
        for g in SCALE_GROUPS[scale]:
            idx = np.array([i for i, k in enumerate(keys) if k == g], dtype=int)
            gm = {m: scorer.value(m, idx, task.bootstrap, task.seed, m in headline) for m in metrics}
            out["groups"].append(GroupResult(scale=scale, group=g, n=int(idx.size), estimated=estimated, metrics=gm))
            for m in metrics:
                values[m][g] = gm[m].value
        for m in metrics:
            out["fairness"].append(FairnessResult(scale=scale, metric=m, estimated=estimated,
                                                  **gap_summary(values[m])))
    return out


def _classification_extras(scorer: Scorer) -> dict:
    cols, k = scorer.cols, len(scorer.labels)
    scored = cols.y_true >= 0
    full = clf.confusion(cols.y_true[scored], cols.y_pred[scored], len(cols.classes))
    outside = [i for i, c in enumerate(cols.classes) if i >= k and c not in (UNMAPPED, FAILED)]
    cm = np.column_stack([full[:k, :k], full[:k, outside].sum(axis=1),
                          full[:k, cols.classes.index(UNMAPPED)], full[:k, cols.classes.index(FAILED)]])
    pc = clf.per_class(full)
    per_class = {c: ClassResult(precision=float(pc["precision"][i]),
                                recall=None if np.isnan(pc["recall"][i]) else float(pc["recall"][i]),
                                f1=float(pc["f1"][i]), support=int(pc["support"][i]))
                 for i, c in enumerate(scorer.labels)}
    conf, ok = cols.col("confidence"), cols.col("calibration_correct")
    has = ~np.isnan(conf) & ~np.isnan(ok)
    for r, hit in zip(scorer.records, cols.col("top3"), strict=True):
        r.top3_correct = None if np.isnan(hit) else bool(hit)
    return {
        "confusion": cm.astype(int).tolist(), "confusion_columns": [*scorer.labels, *CONFUSION_EXTRA],
        "per_class": per_class,
        "baselines": {b: {m: v for m, v in vals.items() if m in scorer}
                      for b, vals in clf.baselines(cols.y_true[scored], k).items()},
        "calibration": [CalibrationBin(**b) for b in cal.reliability_bins(conf[has], ok[has])],
    }


def _closed_vqa_baselines(records: list[SampleRecord], samples: list[Sample] | None) -> dict:
    golds = [r.gold for r in records if r.gold]
    if not golds:
        return {}
    _top, count = Counter(x.strip().lower() for x in golds).most_common(1)[0]
    base = {"majority": {"accuracy": count / len(golds)}}
    if samples:
        base["chance"] = {"accuracy": float(np.mean([1 / (len(s.choices) or 2) for s in samples]))}
    return {"baselines": base}


def aggregate(task: TaskConfig, records: list[SampleRecord], labels: list[str],
              samples: list[Sample] | None = None) -> dict:
    """Metrics (with CIs on headline metrics), definitions, groups and gaps, and the per-type extras."""
    scorer = Scorer(task.type, task.metrics, records, labels)
    headline = scorer.headline(task)
    all_idx = np.arange(len(records))
    out: dict = {
        "metrics": {n: scorer.value(n, all_idx, task.bootstrap, task.seed, n in headline) for n in scorer.specs},
        "metric_definitions": {n: s.definition for n, s in scorer.specs.items()},
        **_groups(task, scorer, records, headline),
    }
    if task.type in ("classification", "report"):
        out.update(_classification_extras(scorer))
    elif task.type == "closed_vqa":
        out.update(_closed_vqa_baselines(records, samples))
    return out
