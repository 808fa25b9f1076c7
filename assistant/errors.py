"""User-facing errors.

Every error a user can cause or fix (bad image, wrong path, backend down, model output that never validated)
is a ``DermassistError`` whose message is one clear sentence. Surfaces (CLI, HTTP, UI) print or return
``str(err)`` and never a traceback; anything that is *not* a ``DermassistError`` is a bug and is reported as an
internal error without internals.
"""

from __future__ import annotations


class DermassistError(Exception):
    """Base class: the message is safe to show to a user (no paths of ours, no library internals)."""

    kind = "error"


class IntakeError(DermassistError):
    """An input image or case could not be accepted."""

    kind = "invalid_image"


class CaseError(DermassistError):
    kind = "invalid_case"


class ConfigError(DermassistError):
    kind = "invalid_config"


class BackendError(DermassistError):
    """The model backend failed or is unreachable."""

    kind = "backend_unavailable"


class GenerationError(DermassistError):
    """The model's output did not validate against the report schema, even after the retry."""

    kind = "invalid_model_output"


class RetrievalError(DermassistError):
    kind = "retrieval_error"
