"""Where the chunks run. An engine takes the cases still to do and yields one ``CaseResult`` per case, in any order;
the runner (the one writer) records them. ``stop`` asks it to start no new work and finish what is in flight.

``local``: this process, one pipeline (one model engine). Two chunks are in flight at once, so while one chunk is
generating the next one's images are read and its passages retrieved, and an engine that batches (vLLM) always has
the next requests queued instead of draining between chunks. ``ray`` lives in ``assistant.batch.ray_engine``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

from assistant.batch.manifest import BatchCase
from assistant.batch.work import CaseResult, intake, report_chunk
from assistant.pipeline.pipeline import ReportPipeline

CHUNKS_IN_FLIGHT = 2


class Engine(Protocol):
    name: str

    def process(self, cases: Sequence[BatchCase], stop: threading.Event) -> Iterator[CaseResult]: ...

    def close(self) -> None: ...


class LocalEngine:
    name = "local"

    def __init__(self, pipeline: ReportPipeline, adapter: str | None, batch_size: int) -> None:
        self.pipeline = pipeline
        self.adapter = adapter
        self.batch_size = batch_size

    def _chunk(self, cases: Sequence[BatchCase]) -> list[CaseResult]:
        budget = self.pipeline.settings.pixel_budget
        return report_chunk(self.pipeline, [intake(case, budget) for case in cases], self.adapter)

    def process(self, cases: Sequence[BatchCase], stop: threading.Event) -> Iterator[CaseResult]:
        chunks = iter([cases[i:i + self.batch_size] for i in range(0, len(cases), self.batch_size)])
        running: deque[Future[list[CaseResult]]] = deque()
        with ThreadPoolExecutor(CHUNKS_IN_FLIGHT, thread_name_prefix="dermassist-batch") as pool:

            def submit_next() -> None:
                chunk = None if stop.is_set() else next(chunks, None)
                if chunk:
                    running.append(pool.submit(self._chunk, chunk))

            for _ in range(CHUNKS_IN_FLIGHT):
                submit_next()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.remove(future)
                    submit_next()
                    yield from future.result()

    def close(self) -> None:
        self.pipeline.close()
