"""Per-sample output cache: one JSON line per finished sample, appended and fsync'd, so a killed run resumes.

The key is task@version + sample id + model + adapter + prompt version: changing any of them recomputes. Raw
model outputs are cached (not scores), so scoring changes never need a rerun. Failures that may be transient
(backend unavailable, internal errors) are not cached and are retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

RETRY_KINDS = {"backend_unavailable", "internal"}


def cache_key(task: str, sample_id: str, model: str, adapter: str | None, prompt_version: str) -> str:
    raw = json.dumps([task, sample_id, model, adapter or "", prompt_version])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class SampleCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a kill: that sample is recomputed
                    if isinstance(entry, dict) and "key" in entry:
                        self._entries[entry["key"]] = entry
            with self.path.open("rb+") as fh:  # terminate a half-written last line before appending
                fh.seek(0, os.SEEK_END)
                if fh.tell():
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        fh.write(b"\n")

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict | None:
        return self._entries.get(key)

    def put(self, entry: dict) -> None:
        if entry.get("error_kind") in RETRY_KINDS:
            return
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._entries[entry["key"]] = entry
