"""Build the SFT data of a run: eval datasets in, ``train/val/test.jsonl`` + dataset card + held-out eval tasks out.

The datasets are read by the eval harness's own adapters (``eval.datasets``), through the eval task files that
already name each dataset's adapter, label map and modality: one reader per published format, shared by eval,
batch and fine-tuning. The build is cached by a fingerprint of its settings, the datasets, the prompts, the report
targets and the retrieval store, so a resumed run reuses it and a changed input rebuilds it.

Next to the data, ``val_task.yaml`` and ``test_task.yaml`` are eval tasks over the held-out patients (JSONL
manifests), so ``dermassist eval --task <data>/test_task.yaml`` scores any model on exactly the unseen cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

import assistant
import prompts
from assistant.core.errors import ConfigError, DermassistError
from assistant.core.retrieval import NullRetriever, Retriever
from eval.datasets import Dataset, Sample
from eval.runner import load_task_dataset
from eval.task import TaskConfig, load_task
from finetune.config import FinetuneArguments
from finetune.data.card import DatasetCard, card_markdown, make_card
from finetune.data.records import SftRecord, record_for
from finetune.data.retrieval import MemoRetriever
from finetune.data.sampling import rebalance
from finetune.data.split import split_records
from finetune.data.targets import load_targets

FILES = ("train.jsonl", "val.jsonl", "test.jsonl")
FORMAT_VERSION = "1"  # bump when records, splits or sampling change: cached data is rebuilt
SETTINGS = ("task", "data", "images_root", "mix_tasks", "max_samples", "synthetic_n", "synthetic_seed",
            "val_fraction", "test_fraction", "split_seed", "balance", "retrieval", "retrieval_k", "run_config")


@dataclass(frozen=True)
class BuiltData:
    dir: Path
    card: DatasetCard
    task: TaskConfig  # the primary task (its held-out splits are eval tasks)

    def records(self, split: str) -> list[SftRecord]:
        lines = (self.dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        return [SftRecord.model_validate_json(line) for line in lines if line.strip()]

    def eval_task(self, split: str) -> Path:
        return self.dir / f"{split}_task.yaml"


@dataclass(frozen=True)
class _Source:
    task: TaskConfig
    data: Path | None
    images_root: Path | None


def _source(task: str, data: str | None, images_root: str | None) -> _Source:
    """A task with optional data / images overrides; overridden data without an images root finds its images
    below the data's own folder (not below the task's default images folder)."""
    path = Path(data) if data else None
    root = Path(images_root) if images_root else (path if path and path.is_dir() else path.parent if path else None)
    return _Source(load_task(task), path, root)


def _sources(ft: FinetuneArguments) -> list[_Source]:
    if not ft.task:
        raise ConfigError("no training data: set `task` (an eval task name or task YAML) in the config")
    mixed = []
    for item in ft.mix_tasks:
        name, _, data = item.partition("=")
        mixed.append(_source(name.strip(), data.strip() or None, None))
    return [_source(ft.task, ft.data, ft.images_root), *mixed]


def _ensure_synthetic(ft: FinetuneArguments, source: _Source) -> None:
    """The synthetic benchmark is made on first use, so the tiny recipe runs from a fresh clone."""
    path = source.data or (Path(source.task.dataset.data) if source.task.dataset.data else None)
    if ft.synthetic_n <= 0 or path is None or path.exists():
        return
    from eval.synthetic import make_synthetic

    print(f"dermassist: writing the synthetic benchmark ({ft.synthetic_n} images) to {path.parent}", file=sys.stderr)
    made = make_synthetic(path.parent, n=ft.synthetic_n, seed=ft.synthetic_seed)
    if made != path:
        raise ConfigError(f"synthetic data is written as {made.name}; point `data` at {made}")


def _retrieval_config(ft: FinetuneArguments):
    from assistant.app.config import load_app_config

    config = load_app_config(ft.run_config).retrieval
    update: dict[str, Any] = {"enabled": ft.retrieval}
    if ft.retrieval_k is not None:
        update["k"] = ft.retrieval_k
    return config.model_copy(update=update)


def _fingerprint(ft: FinetuneArguments, loaded: list[tuple[_Source, Dataset]], store_version: str | None) -> str:
    settings = {key: getattr(ft, key) for key in SETTINGS}
    blob = json.dumps({"format": FORMAT_VERSION, "settings": settings, "datasets": [d.fingerprint for _, d in loaded],
                       "prompts": prompts.PROMPT_VERSION, "targets": load_targets().version, "store": store_version,
                       "dermassist": assistant.__version__}, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_data(ft: FinetuneArguments, out_dir: Path, *, progress: bool = True) -> BuiltData:
    """The run's SFT data in ``out_dir``: reused when its fingerprint matches, else built (atomically)."""
    sources = _sources(ft)
    _ensure_synthetic(ft, sources[0])
    loaded = [(s, load_task_dataset(s.task, s.data, s.images_root)[0]) for s in sources]
    retrieval = _retrieval_config(ft)
    retriever: Retriever = NullRetriever()
    if retrieval.enabled:
        from assistant.app.build import build_retriever

        retriever = MemoRetriever(build_retriever(retrieval))
    fingerprint = _fingerprint(ft, loaded, retriever.version)
    card_file = out_dir / "card.json"
    if card_file.is_file() and all((out_dir / f).is_file() for f in FILES):
        card = DatasetCard.model_validate_json(card_file.read_text(encoding="utf-8"))
        if card.fingerprint == fingerprint:
            return BuiltData(out_dir, card, sources[0].task)
    records, by_id, skipped = _records(loaded, retriever, retrieval.k, ft.max_samples, progress)
    splits = split_records(records, ft.val_fraction, ft.test_fraction, ft.split_seed)
    splits["train"] = rebalance(splits["train"], ft.balance, ft.split_seed)
    source_info = {s.task.name: {"adapter": s.task.dataset.adapter, "data": str(s.data or s.task.dataset.data),
                                 "fingerprint": d.fingerprint, "samples": len(d.samples), "type": s.task.type}
                   for s, d in loaded}
    settings = {key: getattr(ft, key) for key in SETTINGS} | {"retrieval_k_used": retrieval.k,
                                                              "store_version": retriever.version}
    card = make_card(fingerprint, settings, source_info, splits, skipped)
    _write(out_dir, splits, card, sources[0].task, by_id)
    return BuiltData(out_dir, card, sources[0].task)


def _records(loaded: list[tuple[_Source, Dataset]], retriever: Retriever, k: int, max_samples: int | None,
             progress: bool) -> tuple[list[SftRecord], dict[str, Sample], Counter[str]]:
    records: list[SftRecord] = []
    by_id: dict[str, Sample] = {}
    skipped: Counter[str] = Counter()
    for source, dataset in loaded:
        for sk in dataset.skipped:
            skipped[f"{source.task.name}: {sk.reason.split(':')[0]}"] += 1
        samples = dataset.samples[:max_samples] if max_samples else dataset.samples
        for sample in tqdm(samples, desc=f"SFT data {source.task.name}", unit="sample", disable=not progress,
                           file=sys.stderr):
            try:
                record = record_for(source.task, sample, retriever, k)
            except (DermassistError, ValueError) as err:
                skipped[f"{source.task.name}: {str(err).split(':')[0][:80]}"] += 1
                continue
            records.append(record)
            by_id[record.id] = sample
    if not records:
        raise ConfigError("no usable training samples (see the dataset card's left-out reasons)")
    return records, by_id, skipped


def _manifest_row(record: SftRecord, sample: Sample) -> dict[str, Any]:
    """A sample as the eval harness's ``jsonl_manifest`` adapter reads it (absolute image paths)."""
    row: dict[str, Any] = {"id": sample.id, "images": [str(Path(p).resolve()) for p in record.images],
                           "label": sample.label_id or sample.label, "question": sample.question,
                           "choices": sample.choices, "answer": sample.answer,
                           "references": [asdict(r) for r in sample.references], "fitzpatrick": sample.fitzpatrick,
                           "fst_group": sample.fst_group, "monk": sample.monk, "context": sample.context}
    return {k: v for k, v in row.items() if v not in (None, [], {})}


def _eval_task(task: TaskConfig, split: str, manifest: Path, where: Path) -> str:
    data = task.model_dump(mode="json")
    data.update(name=f"{task.name}_{split}", description=f"{task.name}: the fine-tuning run's held-out {split} "
                "split (patients / lesions never trained on).",
                dataset={"adapter": "jsonl_manifest", "data": str(manifest.resolve()),
                         "labels_required": task.dataset.labels_required})
    if split == "val":
        data["bootstrap"] = 0  # fast: evaluated during training; the test split keeps the task's CIs
    TaskConfig.model_validate(data)
    header = (f"# Run: dermassist eval --task {where / f'{split}_task.yaml'} --model MODEL [--adapter ADAPTER]\n"
              f"# Written by dermassist finetune: the held-out {split} split of {task.name}.\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


def _write(out_dir: Path, splits: dict[str, list[SftRecord]], card: DatasetCard, task: TaskConfig,
           by_id: dict[str, Sample]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for split, rows in splits.items():
            (tmp / f"{split}.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
            if split == "train":
                continue
            primary = [r for r in rows if r.source == task.name]
            if primary:
                manifest = tmp / f"{split}_manifest.jsonl"
                manifest.write_text("".join(json.dumps(_manifest_row(r, by_id[r.id])) + "\n" for r in primary),
                                    encoding="utf-8")
                (tmp / f"{split}_task.yaml").write_text(_eval_task(task, split, out_dir / manifest.name, out_dir),
                                                         encoding="utf-8")
        (tmp / "card.json").write_text(card.model_dump_json(indent=2), encoding="utf-8")
        (tmp / "DATASET_CARD.md").write_text(card_markdown(card), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
