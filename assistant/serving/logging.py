"""Request logs without PHI: ids, routes, status, timings, counts, image hashes and sizes — never image bytes,
URLs' query strings, message text or clinical context.

One JSON line per request on the ``dermassist.serving`` logger. Uvicorn's access log is switched off by
``dermassist serve`` so this is the only per-request record.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import assistant

logger = logging.getLogger("dermassist.serving")
PROJECT_ROOT = Path(assistant.__file__).resolve().parent.parent  # assistant/, rag/, prompts/, eval/ live here


def log_request(**fields) -> None:
    logger.info(json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True, default=str))


def log_internal_error(request_id: str, exc: BaseException) -> None:
    """A bug: the exception type and the code locations, but not its message (it may quote request data).

    The project's own frames come first (where in dermassist it went wrong), then the innermost library frames
    (what failed); a library's deep stack alone says little.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    own = [_where(f) for f in frames if _is_own(f.filename)]
    library = [_where(f) for f in frames if not _is_own(f.filename)]
    logger.error(json.dumps({"event": "internal_error", "request_id": request_id, "type": type(exc).__name__,
                             "frames": own[-12:], "library_frames": library[-4:]}))


def log_backend_error(request_id: str, exc: BaseException) -> None:
    """An engine fault: the client hears only that the backend failed; the operator reads why here — our wording
    plus the first line of the engine's message (shapes, limits, addresses; cut at 300 characters)."""
    logger.warning(json.dumps({"event": "backend_error", "request_id": request_id, "type": type(exc).__name__,
                               "reason": str(exc)[:300]}))


def _where(frame: traceback.FrameSummary) -> str:
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}"


def _is_own(filename: str) -> bool:
    path = Path(filename).resolve()
    return path.is_relative_to(PROJECT_ROOT) and "site-packages" not in path.parts and ".venv" not in path.parts


def configure(level: str = "info") -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
