"""Request logs without PHI: ids, routes, status, timings, counts, image hashes and sizes — never image bytes,
URLs' query strings, message text or clinical context.

One JSON line per request on the ``dermassist.serving`` logger. Uvicorn's access log is switched off by
``dermassist serve`` so this is the only per-request record.
"""

from __future__ import annotations

import json
import logging
import traceback

logger = logging.getLogger("dermassist.serving")


def log_request(**fields) -> None:
    logger.info(json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True, default=str))


def log_internal_error(request_id: str, exc: BaseException) -> None:
    """A bug: the exception type and the code locations, but not its message (it may quote request data)."""
    frames = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)]
    logger.error(json.dumps({"event": "internal_error", "request_id": request_id, "type": type(exc).__name__,
                             "frames": frames[-8:]}))


def configure(level: str = "info") -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
