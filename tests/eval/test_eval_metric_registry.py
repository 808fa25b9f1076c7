"""Metrics are specs in the one generic Registry (name, aggregation, higher_is_better, needs, definition), task files
name them, and the scorer computes what a task asks for; the premalignant flag counts the same in every dataset."""

from __future__ import annotations

import pytest

from assistant.core.registry import Registry
from eval.metrics import METRICS, MetricSpec, metrics_for
from eval.metrics.spec import TASK_TYPES
from eval.replay import ReplayPipeline
from eval.runner import EvalSettings, run_eval
from eval.task import load_task, task_files
from support.evalkit import manifest, report, task_file, write_jsonl

AGGREGATIONS = {"mean", "confusion", "top_k", "roc_auc", "binned", "corpus_bleu"}


def test_every_registered_metric_is_a_complete_spec():
    assert isinstance(METRICS, Registry) and len(METRICS.names()) >= 20
    for name in METRICS:
        spec = METRICS.get(name)
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert spec.aggregation in AGGREGATIONS and isinstance(spec.higher_is_better, bool)
        assert spec.task_types and spec.task_types <= set(TASK_TYPES)
        assert len(spec.definition) > 30 and callable(spec.compute)
    assert METRICS.get("ece").higher_is_better is False and METRICS.get("macro_f1").higher_is_better is True
    assert "sklearn" in METRICS.get("macro_f1").definition and "sacrebleu" in METRICS.get("bleu_4").definition


@pytest.mark.parametrize("path", task_files(), ids=lambda p: p.stem)
def test_every_task_metric_is_registered_for_its_type(path):
    task = load_task(path)
    assert set(task.metrics) <= set(metrics_for(task.type))


def test_premalignant_counts_alike_whatever_the_dataset_calls_it(tmp_path):
    """ISIC 'AK' (actinic_keratosis, premalignant) and HAM 'akiec' (an umbrella flagged malignant or premalignant)
    are both positive for auroc_malignant and triage_agreement, and actinic keratosis in a differential adds to the
    malignancy score."""
    rows = [{"id": "ak", "label": "actinic_keratosis"},
            {"id": "akiec", "label": "actinic_keratosis_intraepithelial_carcinoma"},
            {"id": "nevus", "label": "melanocytic_nevus"}]
    lines = [{"sample_id": "ak", "report": report([("actinic_keratosis", 0.6), ("melanocytic_nevus", 0.4)],
                                                  urgency="urgent")},
             {"sample_id": "akiec", "report": report([("actinic_keratosis", 0.7), ("melanocytic_nevus", 0.3)])},
             {"sample_id": "nevus", "report": report([("melanocytic_nevus", 0.9), ("actinic_keratosis", 0.1)])}]
    task = load_task(task_file(tmp_path, metrics=["accuracy", "auroc_malignant", "triage_agreement"]))
    settings = EvalSettings(task=task, out_dir=tmp_path / "out", model="m", backend="replay",
                            data=manifest(tmp_path / "data", rows), progress=False)
    res = run_eval(settings, ReplayPipeline(write_jsonl(tmp_path / "r.jsonl", lines)))
    recs = {r.id: r for r in res.records}
    assert recs["ak"].label_malignant is True and recs["akiec"].label_malignant is True
    assert recs["nevus"].label_malignant is False
    assert (recs["ak"].malignancy_score, recs["akiec"].malignancy_score) == pytest.approx((0.6, 0.7))
    assert res.metrics["auroc_malignant"].value == 1.0 and res.metrics["auroc_malignant"].n == 3
    assert res.metrics["triage_agreement"].value == 0.5 and res.metrics["triage_agreement"].n == 2
