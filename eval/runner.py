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
from eval.replay import ReplayPipeline
from eval.results import EvalResults, RunInfo
from eval.scoring import aggregate, make_record
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
    path = data or (Path(task.dataset.data) if task.dataset.data else None)
    if path is None:
        raise ConfigError(f"task {task.name} has no default data path; pass --data")
    root = images_root or (Path(task.dataset.images_root) if task.dataset.images_root else None)
    return path, root


def load_task_dataset(task: TaskConfig, data: Path | None, images_root: Path | None) -> tuple[Dataset, Path, Path]:
    path, root = resolve_paths(task, data, images_root)
    ds = load_dataset(task.dataset.adapter, path, root, task.dataset.options, task.dataset.label_map,
                      task.dataset.labels_required)
    return ds, path, root or (path if path.is_dir() else path.parent)


def render_prompt(task: TaskConfig, sample: Sample) -> str:
    template = task.prompt or "{question}"
    choices = format_choices(sample.choices) if sample.choices else ""
    return template.format(question=sample.question or "", choices=choices).strip()


def _context(task: TaskConfig, sample: Sample, question: str | None) -> ClinicalContext:
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
                        context=_context(task, sample, task.prompt))
            entry["output"] = pipeline.run(case, adapter=adapter_name).model_dump(mode="json")
        else:
            answer = pipeline.answer(render_prompt(task, sample), list(sample.images[:MAX_IMAGES_PER_CASE]),
                                     _context(task, sample, None), adapter=adapter_name)
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
    samples = dataset.samples[: settings.limit] if settings.limit else dataset.samples
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
    outside = Counter(s.label for s in samples if s.label_id and task.labels and s.label_id not in task.labels)
    agg = aggregate(task, records, labels, samples)
    errors = Counter(r.error_kind or "error" for r in records if r.status == "error")
    run = RunInfo(
        task=task.name, task_version=task.version, task_type=task.type, dataset_adapter=task.dataset.adapter,
        dataset_path=str(data_path), images_root=str(root), dataset_fingerprint=dataset.fingerprint,
        model=settings.model, adapter=settings.adapter, prompt_version=prompt_version,
        backend="replay" if isinstance(pipeline, ReplayPipeline) else settings.backend,
        retrieval=settings.retrieval, git_commit=git_commit(), dermassist_version=assistant.__version__,
        seed=task.seed, bootstrap=task.bootstrap, limit=settings.limit, concurrency=settings.concurrency,
        n_samples=len(samples), n_skipped=len(dataset.skipped), n_computed=computed,
        n_cached=len(samples) - len(fresh), n_errors=sum(errors.values()),
        ontology="assistant.core.ontology", started_at=started,
        replay_file=str(pipeline.path) if isinstance(pipeline, ReplayPipeline) else None,
        replay_fingerprint=pipeline.fingerprint if isinstance(pipeline, ReplayPipeline) else None,
        judge=judge_info,
    )
    results = EvalResults(
        run=run, labels=labels if task.type in ("classification", "report") else [], metrics=agg["metrics"],
        baselines=agg.get("baselines", {}), per_class=agg.get("per_class", {}), confusion=agg.get("confusion"),
        calibration=agg.get("calibration", []), groups=agg["groups"], fairness=agg["fairness"],
        unknown_labels=dataset.unknown_labels, outside_label_set=dict(outside.most_common()),
        skipped=[{"id": sk.id, "reason": sk.reason} for sk in dataset.skipped], errors_by_kind=dict(errors),
        records=records,
    )
    from eval.outputs import write_outputs

    write_outputs(results, out)
    return results
