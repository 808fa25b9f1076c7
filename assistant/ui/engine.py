"""Where the UI's reports and answers come from: the pipeline in this process, or a running ``dermassist serve``.

Both engines take the same case and give the same ``Report`` / ``ChatAnswer`` objects, so the UI renders them one
way. A follow-up question carries the report as the assistant's earlier turn (``assistant.core.messages.
report_turn``): in-process through ``ReportPipeline.answer(report=...)``, over HTTP as an assistant message — the
model sees the same conversation either way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Protocol

from assistant.core.case import Case
from assistant.core.errors import BackendError, CaseError, DermassistError, GenerationError
from assistant.core.intake import IntakeImage
from assistant.core.messages import report_turn
from assistant.core.report import Report
from assistant.pipeline.pipeline import ChatAnswer, Progress, ReportPipeline

REPORT_MODEL = "dermassist-report"  # the model ids `dermassist serve` documents (docs/serving.md)
CHAT_MODEL = "dermassist-chat"


class CaseEngine(Protocol):
    description: str  # where reports come from, shown in the page footer

    def report(self, case: Case, progress: Progress) -> Report: ...

    def answer(self, question: str, case: Case, report: Report, history: list[tuple[str, str]]) -> ChatAnswer: ...

    def close(self) -> None: ...


class LocalEngine:
    """The report pipeline in this process (any backend, built by ``assistant.app.build.build_pipeline``)."""

    def __init__(self, pipeline: ReportPipeline, adapter: str | None = None) -> None:
        self.pipeline = pipeline
        self.adapter = adapter
        config = pipeline.backend.config
        self.description = f"{config.display_name} via {pipeline.backend.name}, in this process"

    def report(self, case: Case, progress: Progress) -> Report:
        return self.pipeline.run(case, adapter=self.adapter, progress=progress)

    def answer(self, question: str, case: Case, report: Report, history: list[tuple[str, str]]) -> ChatAnswer:
        return self.pipeline.answer(question, images=list(case.images), context=case.context, history=history,
                                    adapter=self.adapter, report=report)

    def close(self) -> None:
        self.pipeline.close()


class EndpointEngine:
    """A thin client of ``dermassist serve`` through the openai SDK: reports from ``dermassist-report``, answers
    from ``dermassist-chat``, the clinical context in the documented ``metadata`` field."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 600.0,
                 client: Any | None = None) -> None:
        import openai

        self.base_url = base_url.rstrip("/")
        self.client = client or openai.OpenAI(base_url=self.base_url, api_key=api_key or "none",
                                              timeout=timeout_s, max_retries=0)
        self.description = f"dermassist serve at {self.base_url}"

    def report(self, case: Case, progress: Progress) -> Report:
        progress("generation")  # intake, retrieval, generation, validation and safety all happen on the server
        response = self._call(lambda: self.client.chat.completions.create(
            model=REPORT_MODEL, messages=[_images_turn(case)], metadata=_metadata(case)))
        progress("validation")
        try:
            return Report.model_validate_json(response.choices[0].message.content or "")
        except ValueError:
            raise GenerationError("the dermassist server returned something that is not a valid report") from None

    def answer(self, question: str, case: Case, report: Report, history: list[tuple[str, str]]) -> ChatAnswer:
        messages = [_images_turn(case), {"role": "assistant", "content": report_turn(report)},
                    *({"role": role, "content": text} for role, text in history),
                    {"role": "user", "content": question}]
        response = self._call(lambda: self.client.chat.completions.create(
            model=CHAT_MODEL, messages=messages, metadata=_metadata(case)))
        extras = dict((response.model_extra or {}).get("dermassist") or {})
        content = response.choices[0].message.content or ""
        try:
            return ChatAnswer.model_validate({**extras, "text": answer_text(content, extras)})
        except ValueError:
            raise GenerationError("the dermassist server returned an answer without its citations") from None

    def _call(self, fn: Callable[[], Any]) -> Any:
        """One request; errors become one sentence (the server's own message for a bad case)."""
        import openai

        try:
            return fn()
        except openai.APITimeoutError:
            raise BackendError(f"the dermassist server at {self.base_url} did not answer in time") from None
        except openai.APIConnectionError:
            raise BackendError(f"cannot reach the dermassist server at {self.base_url}") from None
        except openai.AuthenticationError:
            raise BackendError("the dermassist server refused the API key (set --api-key or "
                               "DERMASSIST_API_KEY)") from None
        except openai.APIStatusError as exc:
            message = _server_message(exc)
            if exc.status_code == 400:
                raise CaseError(message) from None
            raise DermassistError(f"the dermassist server could not answer ({exc.status_code}): {message}") from None

    def close(self) -> None:
        self.client.close()


def answer_text(content: str, extras: dict) -> str:
    """The answer alone: the server appends safety notes, sources and the disclaimer to the content (for plain
    chat clients; docs/serving.md), which the UI shows from the structured extras instead."""
    tail = []
    if extras.get("safety_notes"):
        tail.append("Safety notes:\n" + "\n".join(f"- {note}" for note in extras["safety_notes"]))
    if extras.get("citations"):
        tail.append("Sources:\n" + "\n".join(f"[{c['id']}] {c['title']}" for c in extras["citations"]))
    if extras.get("disclaimer"):
        tail.append(extras["disclaimer"])
    suffix = "\n\n".join(tail)
    if suffix and content.endswith(suffix):
        return content[: -len(suffix)].rstrip()
    return content


def _images_turn(case: Case) -> dict:
    """The case's photos as a user turn without text: the question travels in the context (``metadata``), so the
    server renders the same prompt as the in-process pipeline, and a follow-up keeps looking at these photos."""
    parts = [{"type": "image_url", "image_url": {"url": _data_url(image)}} for image in case.images]
    return {"role": "user", "content": parts}


def _data_url(image: IntakeImage) -> str:
    return "data:image/png;base64," + base64.b64encode(image.png_bytes()).decode("ascii")


def _metadata(case: Case) -> dict[str, str]:
    """OpenAI's ``metadata`` is string → string: the context travels as one JSON string (docs/serving.md)."""
    context = case.context.model_dump(mode="json", exclude_none=True)
    return {"clinical_context": json.dumps(context), "modality": case.modality.value}


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = error.get("message") if isinstance(error, dict) else None
        if message:
            return str(message)[:300]
    return "no details"
