"""The report pipeline: one case in, one validated, grounded, safety-checked report out.

Every surface (CLI, HTTP endpoint, UI, batch, eval) calls ``ReportPipeline.run``. Steps: image intake →
retrieval → prompt rendering → constrained generation → parse/validate (one retry, then fail closed) → citation
grounding → ontology normalisation → deterministic safety layer → provenance.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import BaseModel, Field, ValidationError

import prompts
from assistant import __version__
from assistant.backends.base import Backend, ChatMessage, GenerationRequest, ImagePart, TextPart
from assistant.case import Case, ClinicalContext, ImageSource
from assistant.errors import CaseError, GenerationError
from assistant.grounding import cited_ids_in_text, ground_citations
from assistant.intake import IntakeImage, PixelBudget, load_image
from assistant.report import (
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
from assistant.retrieval import NullRetriever, Passage, Retriever
from assistant.safety import SafetyPolicy, apply_safety
from rag.ontology import Ontology, default_ontology

MODALITY_PHRASES = {
    "clinical": "clinical photographs of the skin",
    "dermoscopy": "dermoscopic images of a skin lesion",
    "histopathology": "histopathology images of a skin biopsy",
}


@dataclass(frozen=True)
class PipelineSettings:
    pixel_budget: PixelBudget = PixelBudget()
    retrieval_k: int = 6
    max_new_tokens: int = 1536
    temperature: float = 0.0
    seed: int = 0
    constrained_decoding: bool = True  # off only for servers without structured outputs; output is still validated
    chat_max_new_tokens: int = 512
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)


class ChatAnswer(BaseModel):
    """A free-text, grounded answer (chat turns, VQA)."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    flagged_conditions: list[str] = Field(default_factory=list, description="malignant/emergency conditions named")
    safety_notes: list[str] = Field(default_factory=list)
    disclaimer: str = DISCLAIMER
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
    def run(self, case: Case, adapter: str | None = None, *, max_new_tokens: int | None = None) -> Report:
        """``max_new_tokens`` overrides the settings for this call (e.g. an API client's max_tokens)."""
        t0 = time.perf_counter()
        images = self.intake(case.images)
        t1 = time.perf_counter()
        passages = self.retriever.retrieve(case, self.settings.retrieval_k)
        t2 = time.perf_counter()
        messages = self._report_messages(case, images, passages)
        schema = draft_json_schema([p.id for p in passages]) if self.settings.constrained_decoding else None
        draft, attempts, usage = self._generate_draft(messages, schema, adapter,
                                                      max_new_tokens or self.settings.max_new_tokens)
        t3 = time.perf_counter()
        items, citations, grounding, grounding_limits = ground_citations(draft, passages)
        for item in items:
            item.condition_id = self.ontology.normalize(item.condition)
        diagnosis = Diagnosis(**draft.diagnosis.model_dump(),
                              condition_id=self.ontology.normalize(draft.diagnosis.condition))
        provenance = Provenance(
            model=self.backend.config.display_name, adapter=adapter, backend=self.backend.name,
            prompt_version=self.prompt_version, retrieval_store_version=self.retriever.version,
            dermassist_version=__version__, attempts=attempts, created_at=datetime.now(timezone.utc),
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
        return [load_image(src, label=f"image {i + 1}", budget=self.settings.pixel_budget)
                for i, src in enumerate(sources)]

    def _report_messages(self, case: Case, images: list[IntakeImage],
                         passages: list[Passage]) -> tuple[ChatMessage, ...]:
        system = prompts.render("report/system.j2", modality_phrase=MODALITY_PHRASES[case.modality.value])
        user = prompts.render("report/instruction.j2", context=case.context, passages=passages,
                              symptoms=", ".join(case.context.symptoms.present()))
        parts = (*(ImagePart(img) for img in images), TextPart(user))
        return ChatMessage.text("system", system), ChatMessage("user", parts)

    def _generate_draft(self, messages: tuple[ChatMessage, ...], schema: dict | None, adapter: str | None,
                        max_new_tokens: int) -> tuple[ReportDraft, int, Usage]:
        problem = ""
        usage = Usage()
        for attempt in (1, 2):
            request = GenerationRequest(messages=messages, json_schema=schema, adapter=adapter,
                                        max_new_tokens=max_new_tokens,
                                        temperature=self.settings.temperature, seed=self.settings.seed)
            result = self.backend.generate(request)
            usage.prompt_tokens += result.prompt_tokens
            usage.completion_tokens += result.completion_tokens
            try:
                return ReportDraft.model_validate_json(result.text), attempt, usage
            except ValidationError as exc:
                problem = _describe(exc, result.finish_reason)
            # The retry shows the model its own output and what was wrong with it.
            messages = (*messages, ChatMessage.text("assistant", result.text[:4000]),
                        ChatMessage.text("user", prompts.render("report/retry.j2", problem=problem)))
        raise GenerationError(f"the model did not produce a valid report after 2 attempts ({problem})")

    # -- free-text answers (chat, VQA) --------------------------------------------------------------------------
    def answer(self, question: str, images: list[ImageSource] | None = None, context: ClinicalContext | None = None,
               history: list[tuple[str, str]] | None = None, adapter: str | None = None, *,
               max_new_tokens: int | None = None) -> ChatAnswer:
        """A grounded free-text answer; ``history`` is earlier (role, text) turns of the conversation."""
        if not question.strip():
            raise CaseError("the question is empty")
        t0 = time.perf_counter()
        clean = self.intake(images or [])
        t1 = time.perf_counter()
        retrieval_query = " ".join([question, *(text for role, text in (history or []) if role == "user")][-3:])
        passages = self.retriever.search(retrieval_query, self.settings.retrieval_k)
        t2 = time.perf_counter()
        messages = [ChatMessage.text("system", prompts.render("chat/system.j2", passages=passages))]
        for role, text in history or []:
            messages.append(ChatMessage.text("assistant" if role == "assistant" else "user", text))
        user = prompts.render("chat/user.j2", question=question, context=context,
                              symptoms=", ".join(context.symptoms.present()) if context else "")
        messages.append(ChatMessage("user", (*(ImagePart(img) for img in clean), TextPart(user))))
        result = self.backend.generate(GenerationRequest(
            messages=tuple(messages), adapter=adapter,
            max_new_tokens=max_new_tokens or self.settings.chat_max_new_tokens,
            temperature=self.settings.temperature, seed=self.settings.seed))
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


def _describe(exc: ValidationError, finish_reason: str) -> str:
    if finish_reason == "length":
        return "the output was cut off at the token limit"
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "output"
    return f"{where}: {err.get('msg', 'invalid')}"[:200]


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
