"""User-facing errors.

Every error a user can cause or fix (bad image, wrong path, backend down, model output that never validated)
is a ``DermassistError`` whose message is one clear sentence. Surfaces (CLI, HTTP, UI) print or return
``str(err)`` and never a traceback; anything that is *not* a ``DermassistError`` is a bug and is reported as an
internal error without internals.
"""

from __future__ import annotations

from pydantic import ValidationError


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


class ContextLengthError(DermassistError):
    """The prompt (conversation, clinical context, passages and images) does not fit in the model's context window.

    The caller's to fix (a shorter conversation, fewer images): a client error, never a sign that the engine is down.
    """

    kind = "context_length_exceeded"


class OutputTruncatedError(GenerationError):
    """The token budget ended the output before a report was complete: more tokens are needed, not a retry."""

    kind = "max_tokens_too_small"


class GenerationCancelled(DermassistError):
    """The caller withdrew the request (``GenerationRequest.cancel`` was set) before generation finished."""

    kind = "cancelled"


class RetrievalError(DermassistError):
    kind = "retrieval_error"


def first_error(exc: ValidationError, *, root: str = "input") -> str:
    """``"<field.path>: <message>"`` for the first problem pydantic found: one line a user can act on.

    It names the field, never the offending value (a value can be patient data).
    """
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return f"{root}: invalid"
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or root
    return f"{where}: {err.get('msg', 'invalid')}"
