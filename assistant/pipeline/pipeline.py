"""The report pipeline: one case in, one validated, grounded, safety-checked report out.

Every surface (CLI, HTTP endpoint, UI, batch, eval) calls ``ReportPipeline.run``. Steps: image intake →
retrieval → prompt rendering → constrained generation → parse/validate (one retry, then fail closed) → citation
grounding → ontology normalisation → deterministic safety layer → provenance.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import prompts
from assistant import __version__
from assistant.backends.base import Backend, GenerationRequest
from assistant.core.case import Case, ClinicalContext, ImageSource
from assistant.core.errors import (
    CaseError,
    GenerationCancelled,
    GenerationError,
    OutputTruncatedError,
    first_error,
)
from assistant.core.intake import IntakeImage, PixelBudget, load_images
from assistant.core.messages import ChatMessage, chat_messages, report_messages, report_retry_message
from assistant.core.ontology import Ontology, default_ontology
from assistant.core.report import (
    DISCLAIMER,
    Citation,
    Diagnosis,
    Provenance,
    Report,
    ReportDraft,
    Timings,
    Usage,
    draft_json_schema,
)
from assistant.core.retrieval import NullRetriever, Retriever
from assistant.pipeline.grounding import cited_ids_in_text, ground_citations
from assistant.pipeline.safety import SafetyPolicy, apply_safety


class GenerationSettings(BaseModel):
    """How the model is asked to write: the ``generation:`` section of a run config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(1536, ge=16, le=32768, description="token budget of a report")
    chat_max_new_tokens: int = Field(512, ge=1, le=32768, description="token budget of a chat or VQA answer")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy (reproducible reports)")
    seed: int = Field(0, description="sampling seed (used when temperature > 0)")
    constrained_decoding: bool = Field(
        True, description="off only for servers without structured outputs; the output is validated either way")


@dataclass(frozen=True)
class PipelineSettings:
    pixel_budget: PixelBudget = field(default_factory=PixelBudget)
    retrieval_k: int = 6
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)


class ChatAnswer(BaseModel):
    """A free-text, grounded answer (chat turns, VQA)."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    flagged_conditions: list[str] = Field(default_factory=list, description="malignant/emergency conditions named")
    safety_notes: list[str] = Field(default_factory=list)
    disclaimer: str = DISCLAIMER
    finish_reason: str = Field("stop", description="'length' when the token budget cut the answer short")
    provenance: Provenance


class ReportPipeline:
    def __init__(self, backend: Backend, retriever: Retriever | None = None, *,
                 settings: PipelineSettings | None = None, ontology: Ontology | None = None) -> None:
        self.backend = backend
        self.retriever: Retriever = retriever or NullRetriever()
        self.settings = settings or PipelineSettings()
        self.ontology = ontology or default_ontology()
        self._closed = threading.Event()

    @property
    def prompt_version(self) -> str:
        return prompts.PROMPT_VERSION

    # -- reports ------------------------------------------------------------------------------------------------
    def run(self, case: Case, adapter: str | None = None, *, max_new_tokens: int | None = None,
            cancel: threading.Event | None = None) -> Report:
        """``max_new_tokens`` overrides the settings for this call (e.g. an API client's max_tokens); setting
        ``cancel`` (an HTTP client left) stops the work with ``GenerationCancelled``."""
        t0 = time.perf_counter()
        images = self.intake(case.images)
        t1 = time.perf_counter()
        passages = self.retriever.retrieve(case, self.settings.retrieval_k)
        t2 = time.perf_counter()
        messages = report_messages(case.context, case.modality, images, passages)
        schema = draft_json_schema([p.id for p in passages]) if self.settings.generation.constrained_decoding else None
        draft, attempts, usage = self._generate_draft(messages, schema, adapter,
                                                      max_new_tokens or self.settings.generation.max_new_tokens,
                                                      cancel)
        t3 = time.perf_counter()
        items, citations, grounding, grounding_limits = ground_citations(draft, passages)
        for item in items:
            item.condition_id = self.ontology.normalize(item.condition)
        diagnosis = Diagnosis(**draft.diagnosis.model_dump(),
                              condition_id=self.ontology.normalize(draft.diagnosis.condition))
        provenance = Provenance(
            model=self.backend.config.display_name, adapter=adapter, backend=self.backend.name,
            prompt_version=self.prompt_version, retrieval_store_version=self.retriever.version,
            dermassist_version=__version__, attempts=attempts, created_at=datetime.now(UTC),
            timings=Timings(intake_ms=_ms(t0, t1), retrieval_ms=_ms(t1, t2), generation_ms=_ms(t2, t3)),
            usage=usage, image_sha256=[img.sha256 for img in images],
        )
        report = Report(
            findings=draft.findings, differential=items, diagnosis=diagnosis, triage=draft.triage,
            red_flags=draft.red_flags, recommendations=draft.recommendations, citations=citations,
            limitations=[*draft.limitations, *grounding_limits], grounding=grounding, provenance=provenance,
        )
        report = apply_safety(report, case, self.ontology, self.settings.safety)
        report.provenance.timings.total_ms = _ms(t0, time.perf_counter())
        return report

    def intake(self, sources: list[ImageSource]) -> list[IntakeImage]:
        return load_images(sources, self.settings.pixel_budget)

    def _generate_draft(self, messages: tuple[ChatMessage, ...], schema: dict | None, adapter: str | None,
                        max_new_tokens: int, cancel: threading.Event | None) -> tuple[ReportDraft, int, Usage]:
        problem, cut_off = "", False
        usage = Usage()
        generation = self.settings.generation
        for attempt in (1, 2):
            _check_cancel(cancel)
            request = GenerationRequest(messages=messages, json_schema=schema, adapter=adapter,
                                        max_new_tokens=max_new_tokens, temperature=generation.temperature,
                                        seed=generation.seed, cancel=cancel)
            result = self.backend.generate(request)
            usage.prompt_tokens += result.prompt_tokens
            usage.completion_tokens += result.completion_tokens
            try:
                return ReportDraft.model_validate_json(result.text), attempt, usage
            except ValidationError as exc:
                problem, cut_off = _describe(exc, result.finish_reason), result.finish_reason == "length"
            # The retry shows the model its own output and what was wrong with it.
            messages = (*messages, ChatMessage.text("assistant", result.text[:4000]), report_retry_message(problem))
        message = f"the model did not produce a valid report after 2 attempts ({problem})"
        if cut_off:  # the caller's budget, not the model, is what failed: a distinct error (a client error over HTTP)
            raise OutputTruncatedError(f"{message[:-1]} of {max_new_tokens} new tokens; allow more tokens)")
        raise GenerationError(message)

    # -- free-text answers (chat, VQA) --------------------------------------------------------------------------
    def answer(self, question: str, images: list[ImageSource] | None = None, context: ClinicalContext | None = None,
               history: list[tuple[str, str]] | None = None, adapter: str | None = None, *,
               max_new_tokens: int | None = None, cancel: threading.Event | None = None) -> ChatAnswer:
        """A grounded free-text answer; ``history`` is earlier (role, text) turns of the conversation; ``cancel``
        as in ``run``."""
        if not question.strip():
            raise CaseError("the question is empty")
        t0 = time.perf_counter()
        clean = self.intake(images or [])
        t1 = time.perf_counter()
        retrieval_query = " ".join([question, *(text for role, text in (history or []) if role == "user")][-3:])
        passages = self.retriever.search(retrieval_query, self.settings.retrieval_k)
        t2 = time.perf_counter()
        messages = chat_messages(question, images=clean, context=context, passages=passages, history=history or ())
        _check_cancel(cancel)
        result = self.backend.generate(GenerationRequest(
            messages=messages, adapter=adapter,
            max_new_tokens=max_new_tokens or self.settings.generation.chat_max_new_tokens,
            temperature=self.settings.generation.temperature, seed=self.settings.generation.seed, cancel=cancel))
        t3 = time.perf_counter()
        citations, unknown = cited_ids_in_text(result.text, passages)
        flagged = self._flagged_mentions(result.text)
        notes = [f"Mentions {self.ontology.get(c).name}: possible malignancy or emergency — seek urgent clinical "
                 "assessment." for c in flagged]
        if unknown:
            notes.append(f"The answer cited {len(unknown)} source(s) that were not retrieved; they are not verified.")
        provenance = Provenance(
            model=self.backend.config.display_name, adapter=adapter, backend=self.backend.name,
            prompt_version=self.prompt_version, retrieval_store_version=self.retriever.version,
            dermassist_version=__version__, timings=Timings(intake_ms=_ms(t0, t1), retrieval_ms=_ms(t1, t2),
                                                            generation_ms=_ms(t2, t3), total_ms=_ms(t0, t3)),
            usage=Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens),
            image_sha256=[img.sha256 for img in clean])
        return ChatAnswer(text=result.text, citations=citations, flagged_conditions=flagged, safety_notes=notes,
                          finish_reason=result.finish_reason, provenance=provenance)

    def _flagged_mentions(self, text: str) -> list[str]:
        """Malignant or emergency conditions named anywhere in free text (exact ontology names/synonyms)."""
        words = text.split()
        found: set[str] = set()
        for n in range(1, 6):
            for i in range(len(words) - n + 1):
                cid = self.ontology.normalize(" ".join(words[i:i + n]))
                if cid and (self.ontology.is_malignant(cid) or self.ontology.get(cid).default_urgency == "emergency"):
                    found.add(cid)
        return sorted(found)

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self.backend.close()


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled("the request was cancelled before generation")


def _describe(exc: ValidationError, finish_reason: str) -> str:
    if finish_reason == "length":
        return "the output was cut off at the token limit"
    return first_error(exc, root="output")[:200]


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
