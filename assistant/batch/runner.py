"""A batch run: decide what is left to do, feed it to an engine, record each result exactly once, and survive a
backend that goes away (back off, retry, then stop cleanly so the same command resumes later).

The runner is the only writer of the output folder. It records a case only when its result arrives, so a kill at
any moment leaves each case either recorded once or not at all; the next run does exactly the cases not recorded.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from assistant.batch.engines import Engine
from assistant.batch.manifest import BatchCase, Manifest
from assistant.batch.store import BatchRecord, ResultStore, now
from assistant.batch.work import CaseResult
from assistant.core.errors import DermassistError
from assistant.core.report import Report
from assistant.pipeline.render import report_markdown

OnChange = Literal["refuse", "update"]


class ManifestChanged(DermassistError):
    kind = "manifest_changed"


class BackendGone(DermassistError):
    """The backend stayed unavailable through every retry: the run stopped; rerunning the command resumes it."""

    kind = "backend_unavailable"


@dataclass
class Plan:
    """What this run does: the cases to compute, and what it found already done."""

    todo: list[BatchCase]
    done: int
    dropped_changed: int = 0
    retried_errors: int = 0


@dataclass
class Progress:
    computed: int = 0
    retries: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the run stopped early (backend gone, interrupted)


def plan(store: ResultStore, manifest: Manifest, previous_fingerprint: str | None, *, on_change: OnChange,
         retry_errors: bool) -> Plan:
    """Compare the folder with the manifest. A changed manifest is refused, or with ``update`` the finished cases
    whose inputs changed or that left the manifest are dropped (and the changed ones recomputed)."""
    by_id = {case.id: case for case in manifest.cases}
    stale = {rid for rid, rec in store.records.items()
             if rid not in by_id or rec.input_sha256 != by_id[rid].input_sha256}
    changed = previous_fingerprint is not None and previous_fingerprint != manifest.fingerprint
    if (changed or stale) and on_change == "refuse":
        raise ManifestChanged(
            f"the manifest changed since this output folder was started ({len(stale)} finished case(s) no longer "
            "match it); use a new --out, or --on-change update to keep the unchanged cases and redo the rest")
    store.drop(stale)
    errors = {rid for rid, rec in store.records.items() if rec.status == "error"} if retry_errors else set()
    store.drop(errors)  # dropped first: a kill from here on leaves them simply not done
    todo = [case for case in manifest.cases if case.id not in store.records]
    return Plan(todo=todo, done=len(manifest.cases) - len(todo), dropped_changed=len(stale),
                retried_errors=len(errors))


def record(store: ResultStore, result: CaseResult) -> BatchRecord:
    """Artifacts first (Markdown, thumbnail: temp file + rename), then the one fsync'd line that finishes the case."""
    thumbnail = store.write_thumbnail(result.id, result.thumbnail) if result.thumbnail else None
    report = markdown = None
    if result.status == "ok" and result.report_json is not None:
        parsed = Report.model_validate_json(result.report_json)
        markdown = store.write_markdown(result.id, report_markdown(parsed))
        report = parsed.model_dump(mode="json")
    entry = BatchRecord(id=result.id, status="ok" if report is not None else "error",
                        input_sha256=result.input_sha256, report=report, error_kind=result.error_kind,
                        error=result.error, markdown=markdown, thumbnail=thumbnail, worker=result.worker,
                        finished_at=now())
    store.append(entry)
    return entry


def run(engine: Engine, store: ResultStore, todo: list[BatchCase], *, total: int, max_retries: int,
        retry_wait_s: float, progress: bool, sleep: Callable[[float], None] = time.sleep) -> Progress:
    """Process ``todo`` in passes. A pass ends early when a case comes back ``unavailable``; the next pass starts
    after an exponential backoff. ``max_retries`` passes in a row without a recorded case stop the run."""
    from tqdm import tqdm

    state = Progress()
    pending = {case.id: case for case in todo}
    stalls = 0
    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=total - len(todo), unit="case", desc="reports", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        while pending:
            stop = threading.Event()
            progressed, problem = False, ""
            for result in engine.process(list(pending.values()), stop):
                if result.status == "unavailable":
                    problem = result.error or "the backend is unavailable"
                    stop.set()
                    continue
                if result.id in pending:
                    record(store, result)
                    del pending[result.id]
                    state.computed += 1
                    progressed = True
                    bar.update(1)
            if not pending:
                break
            stalls = 0 if progressed else stalls + 1
            if stalls > max_retries:
                state.stopped = problem
                break
            wait = retry_wait_s * 2 ** max(0, stalls - 1)
            state.retries += 1
            bar.write(f"dermassist batch: {problem}; {len(pending)} case(s) left, retrying in {wait:.1f} s "
                      f"(retry {stalls} of {max_retries} without progress)", file=sys.stderr)
            sleep(wait)
    finally:
        bar.close()
        state.seconds = time.perf_counter() - t0
    return state
