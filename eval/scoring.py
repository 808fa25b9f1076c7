"""Turn cached model outputs into per-sample records, then records into metrics with CIs, groups and gaps.

Rules that matter for trust (see docs/eval.md):
* a failed sample is wrong, never dropped: it counts in accuracy with no prediction;
* an unmapped prediction is wrong (class ``other``), never a random pick;
* a label that does not map, or maps outside the task's label set, has no ground truth: the sample is left out of
  label metrics and the label is listed in the summary;
* empty groups are listed with n=0 and no value, and are ignored by gap statistics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from assistant.core.ontology import default_ontology
from assistant.core.skintone import FITZPATRICK, FITZPATRICK_GROUPS, MONK
from eval.datasets import Sample
from eval.metrics import calibration as cal
from eval.metrics import classification as clf
from eval.metrics import report as rep
from eval.metrics.bootstrap import bootstrap_ci
from eval.metrics.fairness import gap_summary
from eval.metrics.text import BleuStats, bleu_stats, corpus_bleu, rouge_l, token_f1
from eval.metrics.vqa import extract_answer, is_correct
from eval.results import (
    CalibrationBin,
    ClassResult,
    FairnessResult,
    GroupResult,
    MetricValue,
    SampleRecord,
)
from eval.task import TaskConfig

SCALE_GROUPS = {"fitzpatrick": FITZPATRICK, "fst_group": FITZPATRICK_GROUPS, "monk": MONK,
                "fitzpatrick_estimated": FITZPATRICK}
JUDGE_METRICS = ["judge_accuracy", "judge_unsure_rate"]  # present when the run used --judge-url
_LABEL_GROUP_METRICS = ["accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy", "judge_accuracy"]
GROUP_METRICS = {"classification": _LABEL_GROUP_METRICS, "report": _LABEL_GROUP_METRICS,
                 "closed_vqa": ["accuracy", "judge_accuracy"], "open_vqa": ["token_f1", "rouge_l", "judge_accuracy"]}
DEFAULT_HEADLINE = {"classification": ["accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy"],
                    "report": ["accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy", "schema_validity"],
                    "closed_vqa": ["accuracy"], "open_vqa": ["token_f1", "rouge_l", "bleu_4", "delta_bleu"]}


# ---------------------------------------------------------------- per-sample records


def _base_record(sample: Sample, entry: dict) -> SampleRecord:
    return SampleRecord(
        id=sample.id, status=entry["status"], error_kind=entry.get("error_kind"), error=entry.get("error"),
        cached=bool(entry.get("cached")), latency_ms=entry.get("latency_ms"), label=sample.label,
        label_id=sample.label_id, fitzpatrick=sample.fitzpatrick, fst_group=sample.fst_group, monk=sample.monk,
        fitzpatrick_estimated=entry.get("fitzpatrick_estimated"), ita=entry.get("ita"),
    )


ONTOLOGY = default_ontology()


def _cid(item: dict) -> str | None:
    return item.get("condition_id") or ONTOLOGY.normalize(item.get("condition"))


def matches(pred_id: str | None, label_id: str | None) -> bool:
    """The prediction is the label, or a condition under the label's umbrella group (e.g. SK counts for bkl)."""
    return pred_id is not None and label_id is not None and ONTOLOGY.matches(pred_id, label_id)


def is_malignant(condition_id: str | None) -> bool | None:
    """Malignant per the ontology; None when the id is missing or unknown."""
    return ONTOLOGY.is_malignant(condition_id) if condition_id in ONTOLOGY else None


def report_record(sample: Sample, entry: dict) -> SampleRecord:
    r = _base_record(sample, entry)
    mal_label = sample.malignant if sample.malignant is not None else is_malignant(sample.label_id)
    r.label_malignant = mal_label
    if entry["status"] != "ok":
        r.schema_valid = False if entry.get("error_kind") == "invalid_model_output" else None
        r.correct = r.top3_correct = False if sample.label_id else None
        return r
    report = entry["output"]
    diag = report["diagnosis"]
    r.prediction, r.pred_id = diag["condition"], _cid(diag)
    diff = sorted(report["differential"], key=lambda d: -float(d["likelihood"]))
    r.top3_ids = [_cid(d) for d in diff[:3]]
    r.schema_valid, r.citation_valid = True, rep.citation_valid(report)
    r.cites, r.abstained, r.urgent = rep.cites_anything(report), rep.abstained(report), rep.urgent(report)
    if diff:
        r.confidence = float(diff[0]["likelihood"])
        mal = [float(d["likelihood"]) for d in diff if is_malignant(_cid(d))]
        r.malignancy_score = min(1.0, sum(mal))
    if sample.label_id:
        r.correct = matches(r.pred_id, sample.label_id)
        r.top3_correct = any(matches(c, sample.label_id) for c in r.top3_ids)
        r.scores["calibration_correct"] = float(bool(diff) and matches(_cid(diff[0]), sample.label_id))
    return r


def closed_vqa_record(sample: Sample, entry: dict) -> SampleRecord:
    r = _base_record(sample, entry)
    r.question, r.gold = sample.question, sample.answer
    if entry["status"] != "ok":
        r.correct = False
        return r
    r.prediction = entry["output"]["text"]
    r.extracted = extract_answer(r.prediction, sample.choices)
    r.correct = is_correct(r.extracted, sample.answer or "", sample.choices)
    return r


def open_vqa_record(sample: Sample, entry: dict, bert=None) -> SampleRecord:
    r = _base_record(sample, entry)
    r.question = sample.question
    refs = [x.text for x in sample.references]
    text = entry["output"]["text"] if entry["status"] == "ok" else ""
    r.prediction = text if entry["status"] == "ok" else None
    r.scores["token_f1"], r.scores["rouge_l"] = token_f1(text, refs), rouge_l(text, refs)
    r.bleu_stats = bleu_stats(text, refs).to_list()
    weights = [x.weight for x in sample.references]
    r.delta_bleu_stats = bleu_stats(text, refs, weights).to_list() if max(weights) > 0 else None
    if bert is not None:
        r.scores["bertscore"] = bert.score(text, refs) if text else 0.0
    return r


def make_record(task: TaskConfig, sample: Sample, entry: dict, bert=None) -> SampleRecord:
    if task.type in ("classification", "report"):
        return report_record(sample, entry)
    if task.type == "closed_vqa":
        return closed_vqa_record(sample, entry)
    return open_vqa_record(sample, entry, bert)


# ---------------------------------------------------------------- aggregation


def _arr(records, fn, dtype=float) -> np.ndarray:
    return np.array([fn(r) for r in records], dtype=dtype)


def _b(v) -> float:
    return np.nan if v is None else float(v)


def _rate(a: np.ndarray) -> Callable[[np.ndarray], float | None]:
    def f(idx):
        v = a[idx]
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else None
    return f


def _count(a: np.ndarray) -> Callable[[np.ndarray], int]:
    return lambda idx: int((~np.isnan(a[idx])).sum())


class Scorer:
    """Metric functions over index arrays (so the same code serves overall, groups and bootstrap resamples)."""

    def __init__(self, task: TaskConfig, records: list[SampleRecord], labels: list[str]):
        self.task, self.records, self.labels = task, records, labels
        self.fns: dict[str, Callable[[np.ndarray], float | None]] = {}
        self.counts: dict[str, Callable[[np.ndarray], int]] = {}
        getattr(self, f"_{'classification' if task.type == 'report' else task.type}")()
        self._judge()
        wanted = set(task.metrics) | set(JUDGE_METRICS)
        self.fns = {k: v for k, v in self.fns.items() if k in wanted}

    def _classification(self):
        recs, k = self.records, len(self.labels)
        index = {c: i for i, c in enumerate(self.labels)}
        self.t = _arr(recs, lambda r: index.get(r.label_id, -1), int)

        def pclass(r):
            if r.pred_id is None:
                return -1
            if r.pred_id in index:
                return index[r.pred_id]
            return next((i for i, c in enumerate(self.labels) if matches(r.pred_id, c)), -1)

        self.p = _arr(recs, pclass, int)
        scored = self.t >= 0
        hit3 = _arr(recs, lambda r: _b(r.top3_correct) if r.label_id in index else np.nan)

        def on_scored(metric):
            def f(idx):
                i = idx[scored[idx]]
                return metric(i) if i.size else None
            return f

        def cm(i):
            return clf.confusion(self.t[i], self.p[i], k)

        self.fns["accuracy"] = on_scored(lambda i: clf.accuracy(self.t[i], self.p[i]))
        self.fns["balanced_accuracy"] = on_scored(lambda i: clf.balanced_accuracy(cm(i)))
        self.fns["macro_f1"] = on_scored(lambda i: clf.macro_f1(cm(i)))
        self.fns["top3_accuracy"] = _rate(hit3)
        def n_scored(idx):
            return int(scored[idx].sum())

        for name in ("accuracy", "balanced_accuracy", "macro_f1"):
            self.counts[name] = n_scored
        self.counts["top3_accuracy"] = _count(hit3)
        conf = _arr(recs, lambda r: _b(r.confidence) if r.label_id in index else np.nan)
        cal_ok = _arr(recs, lambda r: r.scores.get("calibration_correct", np.nan))
        has_cal = ~np.isnan(conf) & ~np.isnan(cal_ok)

        def ece(idx):
            i = idx[has_cal[idx]]
            return cal.ece(conf[i], cal_ok[i]) if i.size else None

        self.fns["ece"], self.counts["ece"] = ece, lambda idx: int(has_cal[idx].sum())
        self.conf, self.cal_ok, self.has_cal = conf, cal_ok, has_cal
        mscore = _arr(recs, lambda r: _b(r.malignancy_score))
        mlabel = _arr(recs, lambda r: _b(r.label_malignant))
        has_m = ~np.isnan(mscore) & ~np.isnan(mlabel)

        def auc(idx):
            i = idx[has_m[idx]]
            return clf.auroc(mscore[i], mlabel[i] == 1) if i.size else None

        self.fns["auroc_malignant"], self.counts["auroc_malignant"] = auc, lambda idx: int(has_m[idx].sum())
        for name, fn in (("schema_validity", lambda r: _b(r.schema_valid)),
                         ("citation_validity", lambda r: _b(r.citation_valid)),
                         ("abstention_rate", lambda r: _b(r.abstained)),
                         ("triage_agreement", lambda r: _b(r.urgent) if r.label_malignant else np.nan)):
            a = _arr(recs, fn)
            self.fns[name], self.counts[name] = _rate(a), _count(a)

    def _judge(self):
        """judge_accuracy: share judged correct (failed samples wrong, unsure not correct); only with a judge."""
        ok = _arr(self.records, lambda r: _b(r.judge_correct))
        if np.isnan(ok).all():
            return
        self.fns["judge_accuracy"], self.counts["judge_accuracy"] = _rate(ok), _count(ok)
        unsure = _arr(self.records, lambda r: float(r.judge_verdict == "unsure") if r.judge_verdict else np.nan)
        self.fns["judge_unsure_rate"], self.counts["judge_unsure_rate"] = _rate(unsure), _count(unsure)

    def _closed_vqa(self):
        ok = _arr(self.records, lambda r: _b(r.correct))
        self.fns["accuracy"], self.counts["accuracy"] = _rate(ok), _count(ok)
        unparsed = _arr(self.records, lambda r: float(r.extracted is None) if r.status == "ok" else np.nan)
        self.fns["unparsed_rate"], self.counts["unparsed_rate"] = _rate(unparsed), _count(unparsed)

    def _open_vqa(self):
        for name in ("token_f1", "rouge_l", "bertscore"):
            a = _arr(self.records, lambda r, n=name: r.scores.get(n, np.nan))
            if not np.isnan(a).all():
                self.fns[name], self.counts[name] = _rate(a), _count(a)
        stats = np.array([r.bleu_stats for r in self.records], dtype=float)
        for n in range(1, 5):
            self.fns[f"bleu_{n}"] = lambda idx, n=n: corpus_bleu(BleuStats.from_list(stats[idx].sum(0)), n)
            self.counts[f"bleu_{n}"] = lambda idx: int(idx.size)
        if all(r.delta_bleu_stats is not None for r in self.records):
            d = np.array([r.delta_bleu_stats for r in self.records], dtype=float)
            self.fns["delta_bleu"] = lambda idx: corpus_bleu(BleuStats.from_list(d[idx].sum(0)), 4)
            self.counts["delta_bleu"] = lambda idx: int(idx.size)

    def value(self, name: str, idx: np.ndarray, n_boot: int, seed: int, with_ci: bool) -> MetricValue:
        fn = self.fns[name]
        v = fn(idx) if idx.size else None
        ci = bootstrap_ci(lambda r: fn(idx[r]), int(idx.size), n_boot, seed) if with_ci and v is not None else None
        return MetricValue(value=v, ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
                           n=self.counts[name](idx) if idx.size else 0)


def group_key(record: SampleRecord, scale: str) -> str | None:
    v = getattr(record, scale)
    return None if v is None else str(v)


def aggregate(task: TaskConfig, records: list[SampleRecord], labels: list[str],
              samples: list[Sample] | None = None) -> dict:
    """Metrics (with CIs on headline metrics), per-class results, confusion, calibration, groups and gaps."""
    scorer = Scorer(task, records, labels)
    headline = set(task.headline or DEFAULT_HEADLINE[task.type]) | {"judge_accuracy"}
    all_idx = np.arange(len(records))
    metrics = {name: scorer.value(name, all_idx, task.bootstrap, task.seed, name in headline)
               for name in scorer.fns}
    out: dict = {"metrics": metrics, "groups": [], "fairness": []}
    scales = list(task.skin_tone.scales) + (["fitzpatrick_estimated"] if task.skin_tone.estimate else [])
    group_metrics = [m for m in GROUP_METRICS[task.type] if m in scorer.fns]
    for scale in scales:
        keys = [group_key(r, scale) for r in records]
        if all(k is None for k in keys):
            continue
        estimated = scale == "fitzpatrick_estimated"
        values: dict[str, dict[str, float | None]] = {m: {} for m in group_metrics}
        for g in SCALE_GROUPS[scale]:
            idx = np.array([i for i, k in enumerate(keys) if k == g], dtype=int)
            gm = {m: scorer.value(m, idx, task.bootstrap, task.seed, m in headline) for m in group_metrics}
            out["groups"].append(GroupResult(scale=scale, group=g, n=int(idx.size), estimated=estimated,
                                             metrics=gm))
            for m in group_metrics:
                values[m][g] = gm[m].value
        for m in group_metrics:
            out["fairness"].append(FairnessResult(scale=scale, metric=m, estimated=estimated,
                                                  **gap_summary(values[m])))
    if task.type in ("classification", "report"):
        k = len(labels)
        scored = scorer.t >= 0
        cm = clf.confusion(scorer.t[scored], scorer.p[scored], k)
        pc = clf.per_class(cm)
        out["confusion"] = cm.tolist()
        out["per_class"] = {c: ClassResult(precision=float(pc["precision"][i]),
                                           recall=None if np.isnan(pc["recall"][i]) else float(pc["recall"][i]),
                                           f1=float(pc["f1"][i]), support=int(pc["support"][i]))
                            for i, c in enumerate(labels)}
        out["baselines"] = {name: {m: (None if v is None else float(v)) for m, v in vals.items()}
                            for name, vals in clf.baselines(scorer.t[scored], k).items()}
        h = scorer.has_cal
        out["calibration"] = [CalibrationBin(**b) for b in cal.reliability_bins(scorer.conf[h], scorer.cal_ok[h])]
    elif task.type == "closed_vqa":
        golds = [r.gold for r in records if r.gold]
        if golds:
            _top, count = Counter(x.strip().lower() for x in golds).most_common(1)[0]
            base = {"majority": {"accuracy": count / len(golds)}}
            if samples:
                base["chance"] = {"accuracy": float(np.mean([1 / (len(s.choices) or 2) for s in samples]))}
            out["baselines"] = base
    return out
