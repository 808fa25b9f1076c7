"""Run a task through a pipeline: load the dataset, run each sample (threads, cached, errors recorded), score,
and write every output file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

import assistant
from assistant.core.case import MAX_IMAGES_PER_CASE, Case, ClinicalContext
from assistant.core.errors import ConfigError, DermassistError
from eval.cache import SampleCache, cache_key
from eval.datasets import Dataset, Sample, load_dataset
from eval.metrics.vqa import format_choices
from eval.records import make_record
from eval.replay import ReplayPipeline
from eval.results import EvalResults, RunInfo, SampleRecord
from eval.sampling import SampleMode, select_samples
from eval.scoring import aggregate
from eval.skintone import estimate_fitzpatrick
from eval.task import TaskConfig


@dataclass
class EvalSettings:
    task: TaskConfig
    out_dir: Path
    model: str
    backend: str
    adapter: str | None = None  # what the user passed (path or served name)
    adapter_name: str | None = None  # the name the pipeline knows it by
    data: Path | None = None
    images_root: Path | None = None
    retrieval: bool = True
    limit: int | None = None
    sample: SampleMode = "stratified"  # how --limit chooses: seeded and stratified by label, or the first N rows
    concurrency: int = 1
    progress: bool = True


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, text=True,
                             capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def resolve_paths(task: TaskConfig, data: Path | None, images_root: Path | None) -> tuple[Path, Path | None]:
    """The metadata file and the images root: ``--images-root``, else next to ``--data`` when it is given (its
    folder, searched recursively), else the task's defaults."""
    path = data or (Path(task.dataset.data) if task.dataset.data else None)
    if path is None:
        raise ConfigError(f"task {task.name} has no default data path; pass --data")
    if images_root is not None:
        return path, images_root
    if data is not None:
        return path, data if data.is_dir() else data.parent
    return path, Path(task.dataset.images_root) if task.dataset.images_root else None


def load_task_dataset(task: TaskConfig, data: Path | None, images_root: Path | None) -> tuple[Dataset, Path, Path]:
    path, root = resolve_paths(task, data, images_root)
    ds = load_dataset(task.dataset.adapter, path, root, task.dataset.options, task.dataset.label_map,
                      task.dataset.labels_required, task.dataset.unscored_labels)
    return ds, path, root or (path if path.is_dir() else path.parent)


def render_prompt(task: TaskConfig, sample: Sample) -> str:
    template = task.prompt or "{question}"
    choices = format_choices(sample.choices) if sample.choices else ""
    return template.format(question=sample.question or "", choices=choices).strip()


def case_context(sample: Sample, question: str | None) -> ClinicalContext:
    """The clinical context the pipeline gets for ``sample`` (fine-tuning builds its prompts with the same one)."""
    fields: dict[str, Any] = dict(sample.context)
    if sample.fitzpatrick:
        fields["fitzpatrick"] = sample.fitzpatrick
    if question:
        fields["question"] = question
    try:
        return ClinicalContext(**fields)
    except ValueError:
        return ClinicalContext(question=question) if question else ClinicalContext()


def run_sample(pipeline, task: TaskConfig, sample: Sample, adapter_name: str | None) -> dict:
    """One sample through the pipeline; any failure becomes an error entry (the run goes on).

    A pipeline that serves outputs by sample id (``eval.replay.ReplayPipeline``) is bound to the sample first.
    """
    t0 = time.perf_counter()
    entry: dict[str, Any] = {"sample_id": sample.id, "status": "ok"}
    try:
        if hasattr(pipeline, "for_sample"):
            pipeline = pipeline.for_sample(sample.id)
        if task.type in ("classification", "report"):
            case = Case(images=list(sample.images[:MAX_IMAGES_PER_CASE]), modality=task.modality,
                        context=case_context(sample, task.prompt))
            entry["output"] = pipeline.run(case, adapter=adapter_name).model_dump(mode="json")
        else:
            answer = pipeline.answer(render_prompt(task, sample), list(sample.images[:MAX_IMAGES_PER_CASE]),
                                     case_context(sample, None), adapter=adapter_name)
            entry["output"] = {"text": answer.text}
    except DermassistError as err:
        entry.update(status="error", error_kind=err.kind, error=str(err))
    except Exception as err:
        entry.update(status="error", error_kind="internal", error=f"{type(err).__name__}: {err}")
    entry["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return entry


def run_eval(settings: EvalSettings, pipeline, bert=None, judge=None) -> EvalResults:
    """Run (or replay) every sample, score, optionally judge (``eval.judge.Judge``), and write the outputs."""
    started = datetime.now(UTC)
    task = settings.task
    dataset, data_path, root = load_task_dataset(task, settings.data, settings.images_root)
    samples = select_samples(dataset.samples, settings.limit, settings.sample, task.seed)
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = SampleCache(out / "cache.jsonl")
    prompt_version = pipeline.prompt_version
    task_id = f"{task.name}@{task.version}"
    keys = {s.id: cache_key(task_id, s.id, settings.model, settings.adapter, prompt_version) for s in samples}
    todo = [s for s in samples if cache.get(keys[s.id]) is None]
    computed = 0
    fresh_entries: dict[str, dict] = {}
    bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=task.name, unit="sample",
               disable=not settings.progress, file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
        futures = {pool.submit(run_sample, pipeline, task, s, settings.adapter_name): s for s in todo}
        for fut in as_completed(futures):
            s = futures[fut]
            entry = fut.result()
            entry.update(key=keys[s.id], task=task_id, model=settings.model, adapter=settings.adapter,
                         prompt_version=prompt_version)
            cache.put(entry)
            fresh_entries[s.id] = entry
            computed += 1
            bar.update(1)
    bar.close()
    fresh = {s.id for s in todo}
    records, entries = [], []
    for s in samples:
        entry = dict(fresh_entries.get(s.id) or cache.get(keys[s.id]) or {}, cached=s.id not in fresh)
        if task.skin_tone.estimate:
            entry["fitzpatrick_estimated"], entry["ita"] = estimate_fitzpatrick(s.images[0])
        entries.append(entry)
        records.append(make_record(task, s, entry, bert))
    labels = task.labels or sorted({s.label_id for s in samples if s.label_id})
    judge_info = None
    if judge is not None:
        from eval.judge import judge_records

        judge_info = judge_records(judge, task, samples, entries, records, labels, out, settings.concurrency)
    results = _results(settings, pipeline, dataset, samples, records, labels, data_path, root, computed,
                       len(samples) - len(fresh), started, judge_info)
    from eval.outputs import write_outputs

    write_outputs(results, out)
    return results


def _label_counts(task: TaskConfig, samples: list[Sample], labels: list[str]) -> dict[str, Counter]:
    """Where each sample's label went: scored, unmapped (no condition), outside the label set, unscored on purpose."""
    counts: dict[str, Counter] = {k: Counter() for k in ("unmapped", "outside", "unscored")}
    for s in samples:
        if s.label is None:
            continue
        if s.label in task.dataset.unscored_labels:
            counts["unscored"][s.label] += 1
        elif s.label_id is None:
            counts["unmapped"][s.label] += 1
        elif s.label_id not in labels:
            counts["outside"][s.label] += 1
    return counts


def _noncanonical(records: list[SampleRecord]) -> dict[str, int]:
    found = Counter(pair for r in records for pair in r.noncanonical_ids)
    return dict(found.most_common())


def _results(settings: EvalSettings, pipeline, dataset: Dataset, samples: list[Sample], records: list[SampleRecord],
             labels: list[str], data_path: Path, root: Path, computed: int, cached: int, started: datetime,
             judge_info) -> EvalResults:
    task = settings.task
    agg = aggregate(task, records, labels, samples)
    errors = Counter(r.error_kind or "error" for r in records if r.status == "error")
    label_task = task.type in ("classification", "report")
    counts = _label_counts(task, samples, labels) if label_task else None
    replay = pipeline if isinstance(pipeline, ReplayPipeline) else None
    run = RunInfo(
        task=task.name, task_version=task.version, task_type=task.type, dataset_adapter=task.dataset.adapter,
        dataset_path=str(data_path), images_root=str(root), dataset_fingerprint=dataset.fingerprint,
        model=settings.model, adapter=settings.adapter, prompt_version=pipeline.prompt_version,
        backend="replay" if replay else settings.backend, retrieval=settings.retrieval, git_commit=git_commit(),
        dermassist_version=assistant.__version__, seed=task.seed, bootstrap=task.bootstrap, limit=settings.limit,
        sample=settings.sample if settings.limit else None, concurrency=settings.concurrency,
        n_samples=len(samples), n_skipped=len(dataset.skipped), n_computed=computed, n_cached=cached,
        n_errors=sum(errors.values()), ontology="assistant.core.ontology", started_at=started,
        n_labelled=sum(s.label_id in labels for s in samples if s.label_id) if label_task else None,
        n_label_unmapped=sum(counts["unmapped"].values()) if counts else 0,
        n_label_outside=sum(counts["outside"].values()) if counts else 0,
        n_label_unscored=sum(counts["unscored"].values()) if counts else 0,
        replay_file=str(replay.path) if replay else None, replay_fingerprint=replay.fingerprint if replay else None,
        judge=judge_info,
    )
    return EvalResults(
        run=run, labels=labels if label_task else [], metrics=agg["metrics"],
        metric_definitions=agg["metric_definitions"], baselines=agg.get("baselines", {}),
        per_class=agg.get("per_class", {}), confusion=agg.get("confusion"),
        confusion_columns=agg.get("confusion_columns", []), calibration=agg.get("calibration", []),
        groups=agg["groups"], fairness=agg["fairness"], unknown_labels=dataset.unknown_labels,
        outside_label_set=dict(counts["outside"].most_common()) if counts else {},
        unscored_labels=dict(counts["unscored"].most_common()) if counts else {},
        noncanonical_ids=_noncanonical(records),
        skipped=[{"id": sk.id, "reason": sk.reason} for sk in dataset.skipped], errors_by_kind=dict(errors),
        records=records,
    )
