"""The summaries of a batch folder, rebuilt from ``reports.jsonl`` after every run (each written atomically):
``reports.csv`` (one flat row per case), ``index.html`` (a gallery: thumbnail, diagnosis, triage badge, link to
the Markdown report) and ``run.json`` (what ran: model, adapter, prompt and knowledge-base versions, counts,
timings, and the manifest fingerprint a resumed run checks)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.batch.manifest import Manifest
from assistant.batch.store import BatchRecord, ResultStore, atomic_write
from assistant.core.report import DISCLAIMER

RUN_FILE = "run.json"
CSV_COLUMNS = ("id", "status", "diagnosis", "diagnosis_id", "triage", "top3", "red_flags", "error_kind", "error",
               "markdown")


class Counts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int
    ok: int
    error: int
    pending: int
    errors_by_kind: dict[str, int] = Field(default_factory=dict)


class Invocation(BaseModel):
    """One run of the command on this folder (a resumed job has several)."""

    model_config = ConfigDict(extra="forbid")

    started_at: datetime
    finished_at: datetime | None = None
    engine: str
    computed: int = 0
    seconds: float = 0.0
    cases_per_s: float | None = None
    retries: int = 0
    status: Literal["running", "complete", "stopped", "interrupted"] = "running"
    stop_reason: str | None = None


class RunInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dermassist_version: str
    manifest: str
    manifest_kind: str
    manifest_fingerprint: str
    model: str
    backend: str
    adapter: str | None
    prompt_version: str
    kb_version: str | None
    batch_size: int
    status: Literal["running", "complete", "stopped", "interrupted"]
    counts: Counts
    runs: list[Invocation] = Field(default_factory=list)

    def identity(self) -> dict[str, str | None]:
        """What the reports in a folder depend on; a resumed run must match it."""
        return {"model": self.model, "backend": self.backend, "adapter": self.adapter,
                "prompt_version": self.prompt_version, "kb_version": self.kb_version}


def read_run_info(out: Path) -> RunInfo | None:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return RunInfo.model_validate_json(path.read_bytes())
    except ValidationError:
        return None  # unreadable: treated as a folder without a run record (the records still decide)


def write_run_info(out: Path, info: RunInfo) -> None:
    atomic_write(Path(out) / RUN_FILE, (info.model_dump_json(indent=2) + "\n").encode())


def counts(store: ResultStore, manifest: Manifest) -> Counts:
    records = [store.records[c.id] for c in manifest.cases if c.id in store.records]
    kinds = Counter(r.error_kind or "error" for r in records if r.status == "error")
    ok = sum(r.status == "ok" for r in records)
    return Counts(total=len(manifest.cases), ok=ok, error=len(records) - ok, pending=len(manifest.cases) - len(records),
                  errors_by_kind=dict(kinds.most_common()))


def write_summaries(store: ResultStore, manifest: Manifest, info: RunInfo) -> None:
    records = [store.records[c.id] for c in manifest.cases if c.id in store.records]
    atomic_write(store.out / "reports.csv", summary_csv(records).encode("utf-8"))
    atomic_write(store.out / "index.html", gallery_html(records, info).encode("utf-8"))
    write_run_info(store.out, info)


def summary_row(record: BatchRecord) -> dict[str, str]:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(id=record.id, status=record.status, error_kind=record.error_kind or "", error=record.error or "",
               markdown=record.markdown or "")
    report = record.report
    if report is not None:
        ranked = sorted(report["differential"], key=lambda d: -d["likelihood"])[:3]
        row.update(diagnosis=report["diagnosis"]["condition"], diagnosis_id=report["diagnosis"].get("condition_id")
                   or "", triage=report["triage"]["urgency"],
                   top3="; ".join(f"{d['condition']} ({d['likelihood']:.2f})" for d in ranked),
                   red_flags="; ".join(report.get("red_flags", [])))
    return {key: _cell(value) for key, value in row.items()}


def summary_csv(records: list[BatchRecord]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_row(r) for r in records)
    return buf.getvalue()


def _cell(value: str) -> str:
    """Model text and case ids must not become spreadsheet formulas (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def gallery_html(records: list[BatchRecord], info: RunInfo) -> str:
    items = []
    for r in records:
        items.append({"id": r.id, "status": r.status, "thumbnail": r.thumbnail, "markdown": r.markdown,
                      "diagnosis": r.report["diagnosis"]["condition"] if r.report else "",
                      "triage": r.report["triage"]["urgency"] if r.report else "",
                      "error_kind": r.error_kind, "error": r.error})
    return _template().render(items=items, run=info, disclaimer=DISCLAIMER)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("assistant.batch", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("index.html.j2")
