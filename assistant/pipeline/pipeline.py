"""The report pipeline: one case in, one validated, grounded, safety-checked report out.

Every surface (CLI, HTTP endpoint, UI, batch, eval) calls ``ReportPipeline.run``. Steps: image intake (+ the
image-quality gate, whose findings become limitations) → retrieval → prompt rendering → constrained generation →
parse/validate (one retry, then fail closed) → citation grounding → ontology normalisation → deterministic safety
layer → provenance. An optional ``progress`` callback hears each step as it starts (the UI streams them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import prompts
from assistant import __version__
from assistant.backends.base import Backend, GenerationRequest, GenerationResult, WarmsUp
from assistant.core.case import Case, ClinicalContext, ImageSource
from assistant.core.errors import (
    CaseError,
    DermassistError,
    GenerationCancelled,
    GenerationError,
    OutputTruncatedError,
    first_error,
)
from assistant.core.intake import IntakeImage, PixelBudget, load_images
from assistant.core.messages import ChatMessage, chat_messages, report_messages, report_retry_message, report_turn
from assistant.core.ontology import Ontology, default_ontology
from assistant.core.quality import assess_images
from assistant.core.report import (
    DISCLAIMER,
    Citation,
    Diagnosis,
    Provenance,
    Report,
    ReportContext,
    ReportDraft,
    Timings,
    Usage,
    draft_json_schema,
)
from assistant.core.retrieval import NullRetriever, Passage, Retriever
from assistant.pipeline.grounding import as_citation, cited_ids_in_text, ground_citations
from assistant.pipeline.safety import SafetyPolicy, apply_safety

WARM_UP_CITATION = "warm-up#placeholder"

STEPS = ("intake", "retrieval", "generation", "validation", "safety")
"""The steps ``ReportPipeline.run`` announces to its ``progress`` callback, in order ("generation" and "validation"
come again when an invalid output is retried)."""

Progress = Callable[[str], None]


def _silent(step: str) -> None:
    """The default progress callback: nobody listening."""


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
    citations: list[Citation] = Field(default_factory=list, description="the retrieved passages the answer cites")
    consulted: list[Citation] = Field(
        default_factory=list, description="every passage retrieved for the answer (the model was shown them), so a "
                                          "reader can check the grounding even where the text cites none")
    flagged_conditions: list[str] = Field(default_factory=list, description="malignant/emergency conditions named")
    safety_notes: list[str] = Field(default_factory=list)
    disclaimer: str = DISCLAIMER
    finish_reason: str = Field("stop", description="'length' when the token budget cut the answer short")
    provenance: Provenance


@dataclass
class _ReportJob:
    """One case on its way through the pipeline: the prompt, the attempts so far and, once valid, the draft."""

    case: Case
    adapter: str | None
    images: list[IntakeImage]
    passages: list[Passage]
    messages: tuple[ChatMessage, ...]
    schema: dict | None
    max_new_tokens: int
    temperature: float
    seed: int
    t0: float
    t1: float
    t2: float
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    quality_limits: list[str] = field(default_factory=list)
    cancel: threading.Event | None = None
    cut_off: bool = False  # the last invalid output ended at the token limit
    draft: ReportDraft | None = None

    def request(self) -> GenerationRequest:
        return GenerationRequest(messages=self.messages, json_schema=self.schema, adapter=self.adapter,
                                 max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed,
                                 cancel=self.cancel)

    def take(self, result: GenerationResult) -> str:
        """Count the attempt; keep the draft if it validates, else extend the conversation for the retry (it shows
        the model its own output and what was wrong with it) and return the problem."""
        self.attempts += 1
        self.usage.prompt_tokens += result.prompt_tokens
        self.usage.completion_tokens += result.completion_tokens
        try:
            self.draft = ReportDraft.model_validate_json(result.text)
            return ""
        except ValidationError as exc:
            problem, self.cut_off = _describe(exc, result.finish_reason), result.finish_reason == "length"
        self.messages = (*self.messages, ChatMessage.text("assistant", result.text[:4000]),
                         report_retry_message(problem))
        return problem

    def failure(self, problem: str) -> GenerationError:
        """The error after the last attempt: when the token limit cut the output, the caller's budget failed, not
        the model (a distinct error, a client error over HTTP)."""
        message = f"the model did not produce a valid report after 2 attempts ({problem})"
        if self.cut_off:
            return OutputTruncatedError(f"{message[:-1]} of {self.max_new_tokens} new tokens; allow more tokens)")
        return GenerationError(message)


class ReportPipeline:
    def __init__(self, backend: Backend, retriever: Retriever | None = None, *,
                 settings: PipelineSettings | None = None, ontology: Ontology | None = None) -> None:
        self.backend = backend
        self.retriever: Retriever = retriever or NullRetriever()
        self.settings = settings or PipelineSettings()
        self.ontology = ontology or default_ontology()
        self._closed = threading.Event()
        if self.settings.generation.constrained_decoding and isinstance(backend, WarmsUp):
            # the first report then finds the grammar compiler warm (the citation ids are placeholders here)
            backend.warm_up(draft_json_schema([WARM_UP_CITATION]))

    @property
    def prompt_version(self) -> str:
        return prompts.PROMPT_VERSION

    # -- reports ------------------------------------------------------------------------------------------------
    def run(self, case: Case, adapter: str | None = None, *, max_new_tokens: int | None = None,
            progress: Progress | None = None, cancel: threading.Event | None = None) -> Report:
        """``max_new_tokens`` overrides the settings for this call (e.g. an API client's max_tokens); ``progress``
        is called with each of ``STEPS`` as it starts (it must be quick; an exception in it aborts the run); setting
        ``cancel`` (an HTTP client left) stops the work with ``GenerationCancelled``."""
        step = progress or _silent
        job = self._prepare(case, adapter, max_new_tokens, step, cancel)
        problem = ""
        for _attempt in (1, 2):
            _check_cancel(cancel)
            step("generation")
            result = self.backend.generate(job.request())
            step("validation")
            problem = job.take(result)
            if job.draft is not None:
                return self._finish(job, step)
        raise job.failure(problem)

    def run_batch(self, cases: Sequence[Case], adapter: str | None = None, *,
                  max_new_tokens: int | None = None) -> list[Report | DermassistError]:
        """Many cases at once: the same steps as ``run`` per case, with each generation round handed to the backend
        as one batch (``Backend.generate_batch``). One outcome per case, in order: a case that fails (bad image,
        invalid output after the retry, backend error) is its ``DermassistError``, never the batch's. Under greedy
        decoding a case gets the same report here as from ``run``."""
        outcomes: list[Report | DermassistError | None] = [None] * len(cases)
        jobs: dict[int, _ReportJob] = {}
        for i, case in enumerate(cases):
            try:
                jobs[i] = self._prepare(case, adapter, max_new_tokens)
            except DermassistError as exc:
                outcomes[i] = exc
        problems: dict[int, str] = {}
        for _attempt in (1, 2):
            pending = [i for i in jobs if outcomes[i] is None]
            if not pending:
                break
            results = self.backend.generate_batch([jobs[i].request() for i in pending])
            for i, result in zip(pending, results, strict=True):
                if isinstance(result, DermassistError):
                    outcomes[i] = result
                    continue
                problems[i] = jobs[i].take(result)
                if jobs[i].draft is not None:
                    outcomes[i] = self._finish_safely(jobs[i])
        for i in jobs:
            if outcomes[i] is None:
                outcomes[i] = jobs[i].failure(problems.get(i, ""))
        return [o for o in outcomes if o is not None]

    def _prepare(self, case: Case, adapter: str | None, max_new_tokens: int | None,
                 step: Progress = _silent, cancel: threading.Event | None = None) -> _ReportJob:
        """Intake, retrieval and the prompt: everything before the model."""
        t0 = time.perf_counter()
        step("intake")
        images = self.intake(case.images)
        quality_limits = [finding.message for finding in assess_images(images, case.modality)]
        t1 = time.perf_counter()
        step("retrieval")
        passages = self.retriever.retrieve(case, self.settings.retrieval_k)
        t2 = time.perf_counter()
        messages = report_messages(case.context, case.modality, images, passages)
        schema = draft_json_schema([p.id for p in passages]) if self.settings.generation.constrained_decoding else None
        generation = self.settings.generation
        return _ReportJob(case=case, adapter=adapter, images=images, passages=passages, messages=messages,
                          schema=schema, max_new_tokens=max_new_tokens or generation.max_new_tokens,
                          temperature=generation.temperature, seed=generation.seed, t0=t0, t1=t1, t2=t2,
                          quality_limits=quality_limits, cancel=cancel)

    def _finish_safely(self, job: _ReportJob) -> Report | DermassistError:
        try:
            return self._finish(job)
        except DermassistError as exc:
            return exc

    def _finish(self, job: _ReportJob, step: Progress = _silent) -> Report:
        """Grounding, normalisation, safety and provenance of a validated draft."""
        draft = job.draft
        assert draft is not None, "finish needs a validated draft"
        t3 = time.perf_counter()
        items, citations, grounding, grounding_limits = ground_citations(draft, job.passages)
        for item in items:
            item.condition_id = self.ontology.normalize(item.condition)
        diagnosis = Diagnosis(**draft.diagnosis.model_dump(),
                              condition_id=self.ontology.normalize(draft.diagnosis.condition))
        provenance = Provenance(
            model=self.backend.config.display_name, adapter=job.adapter, backend=self.backend.name,
            prompt_version=self.prompt_version, retrieval_store_version=self.retriever.version,
            dermassist_version=__version__, attempts=job.attempts, created_at=datetime.now(UTC),
            timings=Timings(intake_ms=_ms(job.t0, job.t1), retrieval_ms=_ms(job.t1, job.t2),
                            generation_ms=_ms(job.t2, t3)),
            usage=job.usage, image_sha256=[img.sha256 for img in job.images],
        )
        report = Report(
            findings=draft.findings, differential=items, diagnosis=diagnosis, triage=draft.triage,
            red_flags=draft.red_flags, recommendations=draft.recommendations, citations=citations,
            limitations=[*job.quality_limits, *draft.limitations, *grounding_limits], grounding=grounding,
            provenance=provenance, context=ReportContext.from_case(job.case),
        )
        step("safety")
        report = apply_safety(report, job.case, self.ontology, self.settings.safety)
        report.provenance.timings.total_ms = _ms(job.t0, time.perf_counter())
        return report

    def intake(self, sources: list[ImageSource]) -> list[IntakeImage]:
        return load_images(sources, self.settings.pixel_budget)

    # -- free-text answers (chat, VQA) --------------------------------------------------------------------------
    def answer(self, question: str, images: list[ImageSource] | None = None, context: ClinicalContext | None = None,
               history: list[tuple[str, str]] | None = None, adapter: str | None = None, *,
               max_new_tokens: int | None = None, report: Report | None = None,
               cancel: threading.Event | None = None) -> ChatAnswer:
        """A grounded free-text answer; ``history`` is earlier (role, text) turns of the conversation. With
        ``report`` (a follow-up about a case already reported) the report comes first, as the assistant's turn;
        ``cancel`` as in ``run``."""
        if not question.strip():
            raise CaseError("the question is empty")
        if report is not None:
            history = [("assistant", report_turn(report)), *(history or [])]
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
        return ChatAnswer(text=result.text, citations=citations, consulted=[as_citation(p) for p in passages],
                          flagged_conditions=flagged, safety_notes=notes, finish_reason=result.finish_reason,
                          provenance=provenance)

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
