"""What every dataset adapter returns, and the helpers adapters share (CSV with required columns, image lookup)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.core.errors import DermassistError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class DatasetError(DermassistError):
    """The dataset files could not be read as the task says (missing file or column, no usable samples)."""

    kind = "invalid_dataset"


@dataclass
class Reference:
    """One reference answer for open VQA; ``weight`` feeds deltaBLEU (1.0 when the dataset has no ratings)."""

    text: str
    weight: float = 1.0


@dataclass
class Sample:
    id: str
    images: list[Path]
    label: str | None = None  # the dataset's own label text / code
    label_id: str | None = None  # filled by the loader (label_map, then the ontology)
    question: str | None = None
    choices: list[str] = field(default_factory=list)  # closed VQA options ([] = yes/no when answer is yes/no)
    answer: str | None = None  # closed VQA gold answer (an option text, or yes/no)
    references: list[Reference] = field(default_factory=list)  # open VQA
    context: dict[str, Any] = field(default_factory=dict)  # ClinicalContext fields
    fitzpatrick: str | None = None  # I..VI
    fst_group: str | None = None  # 12 | 34 | 56
    monk: int | None = None  # 1..10
    malignant: bool | None = None  # from the dataset when it says so
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skipped:
    id: str
    reason: str


@dataclass
class LoadedDataset:
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # metadata files read (for the fingerprint)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    return path


def read_csv(path: Path, required: list[str], what: str) -> list[dict[str, str]]:
    """Rows of a CSV as dicts; a missing column names the column and the file."""
    require_file(path, what)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetError(
                f"{what} {path} is missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
                f" (found: {', '.join(header) or 'no header'})"
            )
        return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def read_json(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{what} {path} is not valid JSON (line {err.lineno}: {err.msg})") from None


def read_jsonl(path: Path, what: str) -> list[dict]:
    require_file(path, what)
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DatasetError(f"{what} {path} line {i} is not valid JSON ({err.msg})") from None
    return rows


def require_keys(obj: dict, keys: list[str], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DatasetError(f"{where} is missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")


class ImageIndex:
    """Resolves image names against an images root: exact relative path, name + known extension, or by file name /
    stem anywhere below the root (HAM10000 ships two part folders)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._by_name: dict[str, Path] | None = None

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            if self.root.is_dir():
                for p in sorted(self.root.rglob("*")):
                    if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                        self._by_name.setdefault(p.name, p)
                        self._by_name.setdefault(p.stem, p)
        return self._by_name

    def resolve(self, name: str) -> Path | None:
        if not name:
            return None
        rel = Path(name)
        candidates = [rel] if rel.is_absolute() else [self.root / rel]
        if not rel.suffix:
            candidates += [self.root / f"{name}{ext}" for ext in IMAGE_EXTS]
        for c in candidates:
            if c.is_file():
                return c
        index = self._index()
        return index.get(rel.name) or index.get(rel.stem if rel.suffix.lower() in IMAGE_EXTS else rel.name)


def resolve_images(index: ImageIndex, names: list[str], sample_id: str, skipped: list[Skipped]) -> list[Path] | None:
    """All images of a sample, or None (and a skip record) when any is missing."""
    paths = []
    for name in names:
        p = index.resolve(name)
        if p is None:
            skipped.append(Skipped(sample_id, f"image not found: {name}"))
            return None
        paths.append(p)
    if not paths:
        skipped.append(Skipped(sample_id, "no image listed"))
        return None
    return paths


def bool_from(value: Any) -> bool | None:
    text = str(value).strip().lower()
    if text in {"true", "1", "1.0", "yes", "y", "t"}:
        return True
    if text in {"false", "0", "0.0", "no", "n", "f"}:
        return False
    return None


def age_from(value: Any) -> int | None:
    try:
        age = int(float(str(value).strip()))
    except (TypeError, ValueError):
        return None
    return age if 0 <= age <= 120 else None


def sex_from(value: Any) -> str | None:
    text = str(value).strip().lower()
    return {"male": "male", "m": "male", "female": "female", "f": "female"}.get(text)
