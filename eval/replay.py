"""Replay scoring: score outputs produced elsewhere (a batch run, another deployment, an earlier run).

``dermassist eval --task T --replay FILE`` reads a JSONL file with one line per sample::

    {"sample_id": "ISIC_0024306", "report": {...a Report as dermassist writes it...}}
    {"sample_id": "q7", "answer": "The answer is B"}
    {"sample_id": "ISIC_0024307", "error": "the model timed out", "error_kind": "backend_unavailable"}

An earlier run's ``cache.jsonl`` is a valid replay file too (its lines carry ``sample_id``, ``status`` and
``output``). ``ReplayPipeline`` plays the pipeline's part in the runner: the runner binds it to each sample with
``for_sample(sample_id)`` and calls ``run`` / ``answer`` as it would on the real pipeline. Every report is
validated with the real ``Report`` model; a report that does not validate is that sample's
``invalid_model_output`` error (naming the file line), and a sample with no line is a ``missing_output`` error —
never a crash. A line that is not JSON, has no sample id, or repeats a sample id makes the whole file invalid.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant import __version__
from assistant.core.errors import ConfigError, DermassistError, GenerationError, first_error
from assistant.core.report import Provenance, Report
from assistant.pipeline.pipeline import ChatAnswer

KINDS = ("report", "answer", "error")


class MissingOutput(DermassistError):
    kind = "missing_output"


class ReplayedError(DermassistError):
    """A failure recorded by the run that produced the file (its kind is kept when the line gives one)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or "replayed_error"


def _first_error(err: ValidationError) -> str:
    return first_error(err, root="report")[:200]


class ReplayPipeline:
    """Serves saved outputs by sample id; ``prompt_version`` is ``replay-<sha256 prefix>`` of the file, so a
    changed file is rescored and the same file is read from the run's cache."""

    backend_name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"replay file not found: {self.path}")
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.fingerprint = f"sha256:{self.sha256}"
        self._lines: dict[str, tuple[int, dict[str, Any]]] = {}
        for n, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if not raw.strip():
                continue
            self._add(n, raw)
        if not self._lines:
            raise ConfigError(f"replay file {self.path} has no records")

    def _add(self, n: int, raw: str) -> None:
        where = f"replay file {self.path} line {n}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{where} is not JSON ({err.msg}); fix or delete the line") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("sample_id"), str | int):
            raise ConfigError(f"{where} has no sample_id")
        record = _normalise(obj)
        if record is None:
            raise ConfigError(f"{where} needs exactly one of {', '.join(KINDS)} (or an earlier run's "
                              "status/output)")
        sid = str(obj["sample_id"])
        if sid in self._lines:
            raise ConfigError(f"{where} repeats sample {sid!r} (first on line {self._lines[sid][0]})")
        self._lines[sid] = (n, record)

    # -- the pipeline interface used by the runner ----------------------------------------------------------------
    @property
    def prompt_version(self) -> str:
        return f"replay-{self.sha256[:12]}"

    @property
    def sample_ids(self) -> list[str]:
        return list(self._lines)

    def model_name(self) -> str:
        """The model named by the replayed reports when they agree, else ``replay``."""
        models = {rec["report"].get("provenance", {}).get("model") for _, rec in self._lines.values()
                  if isinstance(rec.get("report"), dict) and isinstance(rec["report"].get("provenance"), dict)}
        models.discard(None)
        return str(models.pop()) if len(models) == 1 else "replay"

    def for_sample(self, sample_id: str) -> _ReplayedSample:
        return _ReplayedSample(self, sample_id)

    def run(self, case, adapter: str | None = None) -> Report:
        raise ConfigError("a replay pipeline answers per sample: call for_sample(sample_id).run(...)")

    def answer(self, question, images=None, context=None, history=None, adapter=None) -> ChatAnswer:
        raise ConfigError("a replay pipeline answers per sample: call for_sample(sample_id).answer(...)")

    def close(self) -> None:
        pass

    # -- lookups -----------------------------------------------------------------------------------------------
    def _record(self, sample_id: str, wanted: str) -> tuple[int, Any]:
        if sample_id not in self._lines:
            raise MissingOutput(f"no replayed output for sample {sample_id} in {self.path.name}")
        n, record = self._lines[sample_id]
        if "error" in record:
            raise ReplayedError(f"replayed error (line {n}): {record['error']}"[:300], record.get("error_kind"))
        if wanted not in record:
            have = "a report" if "report" in record else "a text answer"
            need = "a report" if wanted == "report" else "a text answer"
            raise GenerationError(f"replay line {n} (sample {sample_id}) holds {have}, but this task needs {need}")
        return n, record[wanted]

    def replay_report(self, sample_id: str) -> Report:
        n, obj = self._record(sample_id, "report")
        try:
            return Report.model_validate(obj)
        except ValidationError as err:
            raise GenerationError(
                f"replay line {n} (sample {sample_id}) is not a valid report: {_first_error(err)}") from None

    def replay_answer(self, sample_id: str) -> ChatAnswer:
        n, text = self._record(sample_id, "answer")
        if not isinstance(text, str):
            raise GenerationError(f"replay line {n} (sample {sample_id}): the answer is not a string")
        return ChatAnswer(text=text, provenance=Provenance(model=self.model_name(), backend=self.backend_name,
                                                           prompt_version=self.prompt_version,
                                                           dermassist_version=__version__))


class _ReplayedSample:
    """The replay pipeline bound to one sample: the same ``run`` / ``answer`` calls as the real pipeline."""

    def __init__(self, replay: ReplayPipeline, sample_id: str) -> None:
        self._replay, self.sample_id = replay, sample_id

    def run(self, case, adapter: str | None = None) -> Report:
        return self._replay.replay_report(self.sample_id)

    def answer(self, question, images=None, context=None, history=None, adapter=None) -> ChatAnswer:
        return self._replay.replay_answer(self.sample_id)


def _normalise(obj: dict) -> dict | None:
    """To ``{"report"}``, ``{"answer"}`` or ``{"error", "error_kind"}``; an earlier run's cache line maps too."""
    given = [k for k in KINDS if k in obj]
    if len(given) == 1:
        key = given[0]
        if key == "error":
            return {"error": str(obj["error"]), "error_kind": obj.get("error_kind")}
        return {key: obj[key]}
    if given or "status" not in obj:
        return None
    if obj["status"] == "error":  # cache.jsonl of an earlier run
        return {"error": str(obj.get("error") or "error"), "error_kind": obj.get("error_kind")}
    output = obj.get("output")
    if obj["status"] == "ok" and isinstance(output, dict):
        if set(output) == {"text"}:
            return {"answer": output["text"]}
        return {"report": output}
    return None
