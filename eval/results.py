"""The typed results schema (``results.json``): enough to replay, compare and audit a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RESULTS_SCHEMA_VERSION = "1.2"  # 1.1: replay and judge; 1.2: label counts, exclusions, definitions (older read)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricValue(_Model):
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(0, description="samples the metric was computed on")
    n_excluded: int = Field(0, description="samples of the metric's population left out because they failed "
                                           "(no score to rank or bin); accuracy-type metrics count them wrong")


class GroupResult(_Model):
    scale: str = Field(description="fitzpatrick | fst_group | monk | fitzpatrick_estimated")
    group: str
    n: int = Field(description="samples in the group; each metric's own n is the samples it used")
    estimated: bool = False
    metrics: dict[str, MetricValue] = Field(default_factory=dict)


class FairnessResult(_Model):
    scale: str
    metric: str
    estimated: bool = False
    groups: int
    worst_group: str | None
    worst: float | None
    best_group: str | None
    best: float | None
    gap: float | None = Field(description="best minus worst group")
    normalized_range: float | None = Field(description="(max - min) / mean over groups")


class ClassResult(_Model):
    precision: float
    recall: float | None
    f1: float
    support: int


class CalibrationBin(_Model):
    lo: float
    hi: float
    n: int
    confidence: float | None
    accuracy: float | None


class SampleRecord(_Model):
    id: str
    status: Literal["ok", "error"]
    error_kind: str | None = None
    error: str | None = None
    cached: bool = False
    latency_ms: float | None = None
    label: str | None = None
    label_id: str | None = None
    fitzpatrick: str | None = None
    fst_group: str | None = None
    monk: int | None = None
    fitzpatrick_estimated: str | None = None
    ita: float | None = None
    prediction: str | None = Field(None, description="diagnosis text (reports) or answer text (VQA)")
    pred_id: str | None = None
    noncanonical_ids: list[str] = Field(default_factory=list, description="'raw -> mapped id' for condition_ids in "
                                        "the output that were not canonical ids")
    differential_ids: list[str | None] = Field(default_factory=list, description="ranked by likelihood")
    top3_ids: list[str | None] = Field(default_factory=list)
    correct: bool | None = None
    top3_correct: bool | None = None
    confidence: float | None = None
    malignancy_score: float | None = None
    label_malignant: bool | None = None
    schema_valid: bool | None = None
    citation_valid: bool | None = None
    cites: bool | None = None
    abstained: bool | None = None
    urgent: bool | None = None
    question: str | None = None
    extracted: str | None = None
    gold: str | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="per-sample text scores")
    bleu_stats: list[float] | None = None
    delta_bleu_stats: list[float] | None = None
    judge_verdict: Literal["correct", "incorrect", "unsure"] | None = None
    judge_correct: bool | None = Field(None, description="judged correct; failed samples False; None: not judged")
    judge_rationale: str | None = None
    judge_error: str | None = None


class JudgeInfo(_Model):
    url: str
    model: str
    prompt_version: str
    n_judged: int = Field(description="samples with a verdict (failed samples count wrong without a call)")
    n_called: int = Field(description="verdicts asked of the judge in this invocation")
    n_cached: int = Field(description="verdicts taken from judge_cache.jsonl")
    n_unsure: int
    n_errors: int = Field(description="verdicts that never validated (counted unsure)")


class RunInfo(_Model):
    task: str
    task_version: str
    task_type: str
    dataset_adapter: str
    dataset_path: str
    images_root: str
    dataset_fingerprint: str
    model: str
    adapter: str | None = None
    backend: str
    prompt_version: str
    retrieval: bool = True
    git_commit: str | None = None
    dermassist_version: str
    seed: int
    bootstrap: int
    limit: int | None = None
    sample: Literal["stratified", "first"] | None = Field(None, description="how --limit chose the samples")
    concurrency: int = 1
    n_samples: int
    n_skipped: int
    n_labelled: int | None = Field(None, description="samples whose label maps into the label set (scored)")
    n_label_unmapped: int = Field(0, description="samples whose label maps to no condition (not scored)")
    n_label_outside: int = Field(0, description="samples whose label maps outside the task's label set")
    n_label_unscored: int = Field(0, description="samples whose label the task leaves out on purpose")
    n_computed: int = Field(description="samples run through the model in this invocation")
    n_cached: int = Field(description="samples taken from the per-sample cache")
    n_errors: int
    ontology: str = Field(description="assistant.core.ontology, or the built-in fallback")
    replay_file: str | None = Field(None, description="--replay: the file the outputs were read from")
    replay_fingerprint: str | None = Field(None, description="sha256 of the replay file")
    judge: JudgeInfo | None = None
    started_at: datetime
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class EvalResults(_Model):
    schema_version: Literal["1.0", "1.1", "1.2"] = RESULTS_SCHEMA_VERSION
    run: RunInfo
    labels: list[str] = Field(default_factory=list)
    metrics: dict[str, MetricValue]
    baselines: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    per_class: dict[str, ClassResult] = Field(default_factory=dict)
    confusion: list[list[int]] | None = Field(None, description="rows: labels; columns: confusion_columns")
    confusion_columns: list[str] = Field(default_factory=list, description="labels + other / unmapped / failed")
    calibration: list[CalibrationBin] = Field(default_factory=list)
    groups: list[GroupResult] = Field(default_factory=list)
    fairness: list[FairnessResult] = Field(default_factory=list)
    metric_definitions: dict[str, str] = Field(default_factory=dict, description="name -> definition / reference")
    unknown_labels: dict[str, int] = Field(default_factory=dict)
    outside_label_set: dict[str, int] = Field(default_factory=dict)
    unscored_labels: dict[str, int] = Field(default_factory=dict)
    noncanonical_ids: dict[str, int] = Field(default_factory=dict, description="'raw -> mapped id' in outputs")
    skipped: list[dict[str, str]] = Field(default_factory=list)
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    records: list[SampleRecord] = Field(default_factory=list)

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> EvalResults:
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
