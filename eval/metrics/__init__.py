"""Metrics: small pure functions (classification, calibration, text, VQA, report) and, on top, one spec per metric
in the generic ``Registry`` — name, aggregation, higher_is_better, needs, definition (lm-evaluation-harness
style). Task files name metrics from this registry; the scorer computes whatever a task asks for from the specs.
The table is data (lazy ``module:attr`` targets), so nothing registers itself by import side effect.
"""

from __future__ import annotations

from assistant.core.registry import Registry
from eval.metrics.spec import Computed, MetricSpec

_SPECS = "eval.metrics.specs"
METRICS: Registry[MetricSpec] = Registry("metric", {
    name: f"{_SPECS}:{name.upper()}" for name in (
        "accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy", "auroc_malignant", "ece",
        "schema_validity", "citation_validity", "abstention_rate", "triage_agreement",
        "unparsed_rate",
        "token_f1", "rouge_l", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "delta_bleu", "bertscore",
        "judge_accuracy", "judge_unsure_rate",
    )
})

__all__ = ["METRICS", "Computed", "MetricSpec", "metrics_for"]


def metrics_for(task_type: str) -> list[str]:
    """The metric names a task of this type may ask for, in registry order."""
    return [name for name in METRICS if task_type in METRICS.get(name).task_types]
