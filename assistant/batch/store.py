"""The output folder of a batch run, written so that a kill -9 at any moment loses nothing and duplicates nothing.

* ``reports.jsonl`` is append-only: one line per finished case (a report or an error), written with one
  ``write`` + ``fsync`` by the one writer (the driver process). A line cut short by a kill is cut off on the next
  open; a case whose line is not complete is simply not finished and runs again.
* A case's Markdown report and thumbnail are written (temp file + rename) *before* its line: a line never points
  at a missing file.
* Anything rewritten as a whole (dropping error lines for ``--retry-errors``, dropping cases of a changed manifest,
  the summaries) is written to a temp file, fsync'd and renamed over the old one: the file is always either the
  old or the new version, never half of each.

So at every moment each case id is in ``reports.jsonl`` at most once, and after a completed run exactly once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field

from assistant.core.errors import DermassistError

RECORDS = "reports.jsonl"
THUMB_SIDE = 256


class BatchRecord(BaseModel):
    """One line of ``reports.jsonl``: the outcome of one case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: Literal["ok", "error"]
    input_sha256: str
    report: dict[str, Any] | None = None
    error_kind: str | None = None
    error: str | None = None
    markdown: str | None = Field(None, description="path of the Markdown report, relative to the output folder")
    thumbnail: str | None = Field(None, description="path of the thumbnail, relative to the output folder")
    worker: str = Field("", description="host:pid of the process that ran the case (a Ray actor in scale-out)")
    finished_at: datetime


class StoreError(DermassistError):
    kind = "invalid_output_folder"


class ResultStore:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / RECORDS
        self._lock = threading.Lock()
        folders = (self.out, self.out / "reports", self.out / "thumbs")
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the output folder {self.out}: {exc.strerror}") from None
        # One writer per folder: a second run on the same folder would break the exactly-once rule. The OS drops
        # the lock when the process dies, kill -9 included.
        self._owner = FileLock(self.out / ".lock")
        try:
            self._owner.acquire(timeout=0)
        except Timeout:
            raise StoreError(f"another dermassist batch is writing to {self.out}") from None
        for folder in folders:  # temp files a kill left behind
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        self.records: dict[str, BatchRecord] = {}
        self._load()

    def close(self) -> None:
        self._owner.release()

    def _load(self) -> None:
        """Read finished cases; cut off a line a kill left half-written (that case simply runs again)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        duplicates = False
        for line in complete.splitlines():
            try:
                record = BatchRecord.model_validate_json(line)
            except ValueError:
                continue  # not ours, or damaged: that case is recomputed
            duplicates |= record.id in self.records
            self.records[record.id] = record
        if len(complete) != len(data):
            with self.path.open("rb+") as fh:
                fh.truncate(len(complete))
                fh.flush()
                os.fsync(fh.fileno())
        if duplicates:  # only possible if someone appended by hand: keep the last line per case
            self.rewrite(list(self.records.values()))

    def append(self, record: BatchRecord) -> None:
        line = (record.model_dump_json() + "\n").encode()
        with self._lock:
            with self.path.open("ab") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.records[record.id] = record

    def rewrite(self, records: list[BatchRecord]) -> None:
        """Replace ``reports.jsonl`` with ``records`` atomically."""
        with self._lock:
            atomic_write(self.path, "".join(r.model_dump_json() + "\n" for r in records).encode())
            self.records = {r.id: r for r in records}

    def drop(self, ids: set[str]) -> None:
        if ids & set(self.records):
            self.rewrite([r for r in self.records.values() if r.id not in ids])

    def write_markdown(self, case_id: str, text: str) -> str:
        rel = f"reports/{file_stem(case_id)}.md"
        atomic_write(self.out / rel, text.encode("utf-8"))
        return rel

    def write_thumbnail(self, case_id: str, jpeg: bytes) -> str:
        rel = f"thumbs/{file_stem(case_id)}.jpg"
        atomic_write(self.out / rel, jpeg)
        return rel


def thumbnail_jpeg(image) -> bytes:
    """A small JPEG re-encoded from clean pixels: a new image, so no EXIF, GPS, ICC or XMP can ride along."""
    from PIL import Image

    thumb = Image.new("RGB", image.size)
    thumb.paste(image.convert("RGB"))
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def file_stem(case_id: str) -> str:
    """A safe, unique file name for a case id (ids may hold slashes, spaces, anything)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._")[:60] or "case"
    return f"{slug}-{hashlib.sha256(case_id.encode()).hexdigest()[:8]}"


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename over ``path``, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened for fsync
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def now() -> datetime:
    return datetime.now(UTC)


def dumps(data: Any) -> bytes:
    return (json.dumps(data, indent=2, default=str) + "\n").encode()
