"""Dataset adapters, registered by name (imported lazily, no import side effects), and the loader that turns an
adapter's raw labels into condition ids."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.ontology import default_ontology
from assistant.core.registry import Registry
from eval.datasets.base import DatasetError, LoadedDataset, Sample, Skipped

ADAPTERS: Registry[Callable[..., LoadedDataset]] = Registry("dataset adapter", {
    "ham10000": "eval.datasets.classification:ham10000",
    "isic2019": "eval.datasets.classification:isic2019",
    "pad_ufes20": "eval.datasets.classification:pad_ufes20",
    "fitzpatrick17k": "eval.datasets.classification:fitzpatrick17k",
    "ddi": "eval.datasets.classification:ddi",
    "scin": "eval.datasets.classification:scin",
    "image_folder": "eval.datasets.classification:image_folder",
    "mmskin_vqa": "eval.datasets.vqa:mmskin_vqa",
    "mediqa_m3g": "eval.datasets.vqa:mediqa_m3g",
    "skincap": "eval.datasets.vqa:skincap",
    "csv_manifest": "eval.datasets.vqa:csv_manifest",
    "jsonl_manifest": "eval.datasets.vqa:jsonl_manifest",
}, error=DatasetError)

__all__ = ["ADAPTERS", "Dataset", "DatasetError", "Sample", "Skipped", "load_dataset", "map_label"]


@dataclass
class Dataset:
    samples: list[Sample]
    skipped: list[Skipped]
    unknown_labels: dict[str, int] = field(default_factory=dict)  # raw label -> count, labels that did not map
    fingerprint: str = ""
    unscored_labels: dict[str, int] = field(default_factory=dict)  # raw label -> count, left out on purpose


def _fingerprint(loaded: LoadedDataset, images_root: Path) -> str:
    h = hashlib.sha256()
    for f in loaded.files:
        if Path(f).is_file():
            h.update(Path(f).read_bytes())
    for s in loaded.samples:
        rel = []
        for p in s.images:
            try:
                rel.append([p.relative_to(images_root).as_posix(), p.stat().st_size])
            except ValueError:
                rel.append([p.name, p.stat().st_size])
        h.update(json.dumps([s.id, s.label, s.answer, rel], sort_keys=True).encode())
    return "sha256:" + h.hexdigest()[:16]


def map_label(label: str, label_map: dict[str, str] | None = None) -> str | None:
    """A dataset label's condition id: the task's ``label_map`` (exact, then case-insensitive), then the ontology
    (ids, names and synonyms after ``normalize_key``); None when nothing maps."""
    lmap = {str(k): v for k, v in (label_map or {}).items()}
    if label in lmap:
        return lmap[label]
    lower = {k.strip().lower(): v for k, v in lmap.items()}
    mapped = lower.get(label.strip().lower())
    return mapped if mapped is not None else default_ontology().normalize(label)


def load_dataset(adapter: str, data: Path, images_root: Path | None = None, options: dict | None = None,
                 label_map: dict[str, str] | None = None, labels_required: bool = False,
                 unscored_labels: Iterable[str] = ()) -> Dataset:
    """Load, map labels (``map_label``) and fingerprint.

    A sample whose label does not map stays in the dataset with ``label_id=None`` (it is left out of label metrics
    and counted in the run's headline label counts); ``labels_required`` drops it instead (listed as skipped).
    A label in ``unscored_labels`` (e.g. ISIC 2019 ``UNK``, "none of the others") gets no condition id on purpose
    and is counted apart from the labels that failed to map.
    An empty result is an error naming where images were looked up, never a 0% score."""
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"dataset file not found: {data}")
    root = Path(images_root) if images_root else (data if data.is_dir() else data.parent)
    loaded = ADAPTERS.get(adapter)(data, root, **(options or {}))
    unknown: Counter[str] = Counter()
    unscored: Counter[str] = Counter()
    skip = set(unscored_labels)
    kept: list[Sample] = []
    for s in loaded.samples:
        if s.label is not None:
            s.label_id = None if s.label in skip else map_label(s.label, label_map)
            if s.label_id is None:
                (unscored if s.label in skip else unknown)[s.label] += 1
                if labels_required:
                    why = "unscored" if s.label in skip else "unknown"
                    loaded.skipped.append(Skipped(s.id, f"{why} label: {s.label}"))
                    continue
        kept.append(s)
    loaded.samples = kept
    if not kept:
        reasons = Counter(sk.reason.split(":")[0] for sk in loaded.skipped)
        detail = "; ".join(f"{n} {r}" for r, n in reasons.most_common(3))
        where = f"images looked up under {root}"
        raise DatasetError(f"dataset {data} has no usable samples ({detail + '; ' if detail else ''}{where})")
    return Dataset(kept, loaded.skipped, dict(unknown.most_common()), _fingerprint(loaded, root),
                   dict(unscored.most_common()))
