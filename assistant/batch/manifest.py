"""Manifests: what a batch is made of, read into cases with stable ids and per-case input hashes.

Accepted: a folder of images (one case per image at its top level, one case per sub-folder holding up to 4 images
of one problem), a CSV or a JSONL (image path(s) + clinical-context columns, renamed with ``--column
FIELD=COLUMN``), or any dataset format of the eval harness (``--format ham10000``, ``isic2019``, ``ddi``, …,
read by ``eval.datasets``).

A row that cannot run (missing image, a URL, a path outside the images root, a bad age) is not a reason to refuse
the manifest: it becomes a case with a ``problem``, recorded as that case's error, and the run goes on. What makes
a manifest unusable (unreadable file, duplicate ids, no cases) is a ``ManifestError``.

Every case carries ``input_sha256`` (id, image paths with size and mtime, context, modality): it is what a resumed
run compares to decide whether a finished case still belongs to this manifest. Images are only read from local
files under the images root (the manifest's folder unless ``--images-root``); nothing is fetched.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.core.case import MAX_IMAGES_PER_CASE, ClinicalContext, Modality, Symptoms
from assistant.core.errors import DermassistError, first_error

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
CONTEXT_FIELDS = tuple(ClinicalContext.model_fields)
FIELDS = ("id", "image", "images", "modality", *CONTEXT_FIELDS)
OWN_FORMATS = ("auto", "folder", "csv", "jsonl")


class ManifestError(DermassistError):
    """The manifest as a whole cannot be used (unreadable, duplicate ids, no cases, unknown format)."""

    kind = "invalid_manifest"


class BatchCase(BaseModel):
    """One case of a manifest, as plain data (it travels to Ray workers as is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    images: list[str] = Field(default_factory=list, description="resolved local paths")
    context: dict[str, Any] = Field(default_factory=dict, description="ClinicalContext fields (validated)")
    modality: Modality = Modality.clinical
    problem: str | None = Field(None, description="why this case cannot run; recorded as its error")
    input_sha256: str = ""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    kind: str
    cases: list[BatchCase]
    fingerprint: str


def parse_columns(items: list[str]) -> dict[str, str]:
    """``--column FIELD=COLUMN`` options as a mapping."""
    columns = {}
    for item in items:
        field, sep, column = (part.strip() for part in item.partition("="))
        if not sep or not field or not column:
            raise ManifestError(f"--column must be FIELD=COLUMN (e.g. image=filename), got {item!r}")
        columns[field] = column
    return columns


def read_manifest(path: Path, *, fmt: str = "auto", images_root: Path | None = None,
                  columns: dict[str, str] | None = None, modality: Modality = Modality.clinical) -> Manifest:
    """Read ``path`` (folder, CSV, JSONL or an eval dataset format) into cases."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    unknown = sorted(set(columns or {}) - set(FIELDS))
    if unknown:
        raise ManifestError(f"--column: unknown field(s) {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
    kind = _kind(path, fmt)
    root = Path(images_root) if images_root else (path if path.is_dir() else path.parent)
    reader = _Rows(root, dict(columns or {}), modality)
    if kind == "folder":
        cases = _folder(path, reader)
    elif kind == "csv":
        cases = [reader.case(row, i) for i, row in enumerate(_csv_rows(path))]
    elif kind == "jsonl":
        cases = [reader.case(row, i) for i, row in enumerate(_jsonl_rows(path))]
    else:
        cases = _adapter(kind, path, images_root, reader)
    if not cases:
        raise ManifestError(f"manifest {path} holds no cases")
    seen: dict[str, int] = {}
    for i, case in enumerate(cases):
        if case.id in seen:
            raise ManifestError(f"manifest {path}: case id {case.id!r} appears twice (entries {seen[case.id] + 1} "
                                f"and {i + 1}); ids must be unique for a resumable run")
        seen[case.id] = i
    digest = hashlib.sha256()
    for case in cases:
        digest.update(f"{case.id}\0{case.input_sha256}\n".encode())
    return Manifest(source=str(path), kind=kind, cases=cases, fingerprint="sha256:" + digest.hexdigest())


def _kind(path: Path, fmt: str) -> str:
    if fmt not in OWN_FORMATS:
        from eval.datasets import ADAPTERS

        if fmt not in ADAPTERS:
            raise ManifestError(f"unknown manifest format {fmt!r}; use folder, csv, jsonl or a dataset format: "
                                f"{', '.join(sorted(ADAPTERS))}")
        return fmt
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ManifestError(f"cannot tell the manifest format of {path.name}: use a folder, a .csv or a .jsonl file, "
                        "or pass --format")


class _Rows:
    """Turns manifest rows into cases: column mapping, image resolution under the root, context validation."""

    def __init__(self, root: Path, columns: dict[str, str], modality: Modality) -> None:
        self.root = root.resolve()
        self.columns = columns
        self.modality = modality

    def get(self, row: dict[str, Any], field: str) -> Any:
        value = row.get(self.columns.get(field, field))
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def case(self, row: dict[str, Any], index: int) -> BatchCase:
        case_id = str(self.get(row, "id") or f"row-{index + 1:06d}").strip()
        raw = self.get(row, "images") if self.get(row, "images") is not None else self.get(row, "image")
        names = raw if isinstance(raw, list) else [n.strip() for n in str(raw or "").split("|") if n.strip()]
        fields = dict(row.get("context") or {}) if isinstance(row.get("context"), dict) else {}
        fields.update({f: v for f in CONTEXT_FIELDS if (v := self.get(row, f)) is not None})
        return self.build(case_id, [str(n) for n in names], fields, self.get(row, "modality"), f"entry {index + 1}")

    def build(self, case_id: str, names: list[str], fields: dict[str, Any], modality: Any, where: str,
              problem: str | None = None) -> BatchCase:
        images: list[str] = []
        if problem is None and not names:
            problem = f"{where}: no image listed"
        if problem is None and len(names) > MAX_IMAGES_PER_CASE:
            problem = f"{where}: {len(names)} images; a case has at most {MAX_IMAGES_PER_CASE}"
        for name in names if problem is None else []:
            resolved, problem = self.image(name, where)
            if problem:
                break
            images.append(resolved)
        context: dict[str, Any] = {}
        if problem is None:
            context, problem = _context(fields, where)
        kind = Modality(self.modality)
        if problem is None and modality is not None:
            try:
                kind = Modality(str(modality).strip().lower())
            except ValueError:
                problem = f"{where}: modality must be clinical, dermoscopy or histopathology"
        return BatchCase(id=case_id, images=images, context=context, modality=kind, problem=problem,
                         input_sha256=_input_hash(case_id, images, context, kind, problem, self.root))

    def image(self, name: str, where: str) -> tuple[str, str | None]:
        if "://" in name or name.startswith("data:"):
            return "", f"{where}: image {name[:80]!r} is not a local file (batch reads files only, never URLs)"
        candidate = Path(name).expanduser()
        resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            return "", f"{where}: image {name[:80]!r} is outside the images root (set --images-root)"
        if not resolved.is_file():
            return "", f"{where}: image {name[:80]!r} not found"
        return str(resolved), None


def _context(fields: dict[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    fields = dict(fields)
    symptoms = fields.get("symptoms")
    try:
        if isinstance(symptoms, str):
            fields["symptoms"] = Symptoms.from_names(symptoms.replace("|", ",").split(","))
        elif isinstance(symptoms, list):
            fields["symptoms"] = Symptoms.from_names([str(s) for s in symptoms])
        context = ClinicalContext.model_validate(fields)
    except ValidationError as exc:
        return {}, f"{where}: {first_error(exc, root='context')}"
    except ValueError as exc:  # unknown symptom names
        return {}, f"{where}: {exc}"
    return context.model_dump(mode="json", exclude_defaults=True), None


def _input_hash(case_id: str, images: list[str], context: dict, modality: Modality, problem: str | None,
                root: Path) -> str:
    """What a finished case was computed from: a resumed run recomputes a case whose inputs changed."""
    stats = []
    for image in images:
        path = Path(image)
        stat = path.stat()
        stats.append([path.relative_to(root).as_posix() if root in path.parents else image, stat.st_size,
                      stat.st_mtime_ns])
    raw = json.dumps([case_id, stats, context, modality.value, problem], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _folder(path: Path, reader: _Rows) -> list[BatchCase]:
    """Top-level images are one case each (id: the file name); each sub-folder is one case (id: its name)."""
    cases = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            cases.append(reader.build(entry.name, [str(entry)], {}, None, entry.name))
        elif entry.is_dir():
            images = sorted(str(p) for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                            and not p.name.startswith("."))
            cases.append(reader.build(entry.name, images, {}, None, entry.name))
    return cases


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise ManifestError(f"CSV manifest {path.name} has no header row")
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except UnicodeDecodeError:
        raise ManifestError(f"CSV manifest {path.name} is not UTF-8 text") from None
    except csv.Error as exc:
        raise ManifestError(f"CSV manifest {path.name} could not be parsed: {exc}") from None


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ManifestError(f"JSONL manifest {path.name} is not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"JSONL manifest {path.name} line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ManifestError(f"JSONL manifest {path.name} line {number} is not a JSON object")
        rows.append(row)
    return rows


def _adapter(name: str, path: Path, images_root: Path | None, reader: _Rows) -> list[BatchCase]:
    """A dataset format of the eval harness: its reader finds the images and the context; labels are ignored."""
    from eval.datasets import load_dataset

    options = {f"{field}_column": column for field, column in reader.columns.items()}
    dataset = load_dataset(name, path, images_root, options)
    cases = []
    for sample in dataset.samples:
        fields = dict(sample.context)
        if sample.fitzpatrick:
            fields.setdefault("fitzpatrick", sample.fitzpatrick)
        if sample.question:
            fields.setdefault("question", sample.question)
        cases.append(reader.build(sample.id, [str(p) for p in sample.images[:MAX_IMAGES_PER_CASE]], fields, None,
                                  sample.id))
    for skipped in dataset.skipped:
        cases.append(reader.build(skipped.id, [], {}, None, skipped.id, problem=f"{skipped.id}: {skipped.reason}"))
    return cases
