"""One chunk of cases through the pipeline, on whichever engine runs it (a local thread or a Ray actor).

The result of each case is a ``CaseResult``: plain data that crosses a process boundary (Ray) as JSON plus the
thumbnail bytes. ``unavailable`` marks a case the backend could not serve (down, dead engine): it is not a result
to record but a signal to the runner to back off and retry.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict

from assistant.batch.manifest import BatchCase
from assistant.batch.store import thumbnail_jpeg
from assistant.core.case import Case, ClinicalContext
from assistant.core.errors import BackendError, CaseError, DermassistError, GenerationCancelled
from assistant.core.intake import IntakeImage, PixelBudget, load_image
from assistant.core.report import Report
from assistant.pipeline.pipeline import ReportPipeline

WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process made a result (a Ray actor's, in scale-out)


class CaseResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    input_sha256: str
    status: Literal["ok", "error", "unavailable"]
    report_json: str | None = None
    error_kind: str | None = None
    error: str | None = None
    thumbnail: bytes | None = None
    worker: str = ""

    @classmethod
    def failed(cls, case: BatchCase, exc: DermassistError, thumbnail: bytes | None = None) -> CaseResult:
        unavailable = isinstance(exc, GenerationCancelled) or (isinstance(exc, BackendError) and _transient(exc))
        return cls(id=case.id, input_sha256=case.input_sha256, status="unavailable" if unavailable else "error",
                   error_kind=exc.kind, error=str(exc), thumbnail=thumbnail, worker=WORKER)


class Prepared(BaseModel):
    """A case after intake: clean images (or the reason there are none) and its thumbnail."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    case: BatchCase
    images: list[IntakeImage] = []
    thumbnail: bytes | None = None
    error: DermassistError | None = None


def intake(case: BatchCase, budget: PixelBudget, sources: list | None = None) -> Prepared:
    """Read and clean a case's images (``sources``: bytes instead of its paths, e.g. already-clean PNGs)."""
    if case.problem:
        return Prepared(case=case, error=CaseError(case.problem))
    try:
        images = [load_image(source, label=f"image {i + 1}", budget=budget)
                  for i, source in enumerate(sources if sources is not None else case.images)]
    except DermassistError as exc:
        return Prepared(case=case, error=exc)
    return Prepared(case=case, images=images, thumbnail=thumbnail_jpeg(images[0].image))


def report_chunk(pipeline: ReportPipeline, prepared: list[Prepared], adapter: str | None) -> list[CaseResult]:
    """Reports for a chunk, the generation handed to the backend as one batch; every case gets a result."""
    results: dict[str, CaseResult] = {}
    runnable = []
    for item in prepared:
        if item.error is not None:
            results[item.case.id] = CaseResult.failed(item.case, item.error, item.thumbnail)
        else:
            runnable.append(item)
    cases = [Case(images=item.images, modality=item.case.modality, context=ClinicalContext(**item.case.context))
             for item in runnable]
    try:
        outcomes: list[Report | DermassistError] = pipeline.run_batch(cases, adapter=adapter) if cases else []
    except Exception as exc:  # a bug must not sink the batch: every case of the chunk records it
        outcomes = [_Internal(f"internal error ({type(exc).__name__})")] * len(cases)
    for item, outcome in zip(runnable, outcomes, strict=True):
        if isinstance(outcome, Report):
            results[item.case.id] = CaseResult(id=item.case.id, input_sha256=item.case.input_sha256, status="ok",
                                               report_json=outcome.model_dump_json(), thumbnail=item.thumbnail,
                                               worker=WORKER)
        else:
            results[item.case.id] = CaseResult.failed(item.case, outcome, item.thumbnail)
    return [results[item.case.id] for item in prepared]


def _transient(exc: BackendError) -> bool:
    """Down, dead, overloaded or timed out: worth a retry later. An upstream's 4xx about this one request (other
    than 408/429) is that case's error."""
    status = getattr(exc, "status_code", None)
    return status is None or status in (408, 429) or status >= 500


class _Internal(DermassistError):
    kind = "internal"
