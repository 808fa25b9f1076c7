"""The concurrency limit: ``max_concurrency`` requests run, ``max_queue`` wait, the rest get 429 at once.

Pipeline calls are synchronous and the backends serialise generation, so an unbounded number of waiting
requests would only grow memory and latency until clients time out; a bounded queue answers early instead.
While shutting down, new requests get 503.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from assistant.serving.errors import ServingError


class ConcurrencyLimiter:
    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.running = 0
        self.waiting = 0
        self.closing = False

    @asynccontextmanager
    async def slot(self):
        if self.closing:
            raise ServingError("the server is shutting down; retry on another instance", "shutting_down")
        if self._semaphore.locked() and self.waiting >= self.max_queue:
            raise ServingError(f"the server is busy ({self.running} running, {self.waiting} queued); "
                               "retry shortly", "rate_limited")
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        if self.closing:
            self._semaphore.release()
            raise ServingError("the server is shutting down; retry on another instance", "shutting_down")
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._semaphore.release()
