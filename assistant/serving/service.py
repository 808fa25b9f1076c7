"""The serving logic: which model a request names, what it asks, and the pipeline call that answers it.

Models:

* ``dermassist-report`` — the last user message's images and text plus ``metadata`` clinical context → the full
  report pipeline; the assistant message content is the Report JSON (validated, grounded, safety-checked).
* ``dermassist-chat`` — a grounded free-text answer, multi-turn, with citations and safety notes.
* every configured LoRA adapter, by its name — the report task with that adapter.

Everything here is synchronous (the pipeline is); ``routes`` runs it in worker threads under the limiter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from assistant import __version__
from assistant.app.config import ServingConfig
from assistant.core.case import Case, ClinicalContext, Modality, Symptoms
from assistant.core.errors import OutputTruncatedError, first_error
from assistant.core.intake import IntakeImage, load_image
from assistant.core.quality import assess_images
from assistant.core.report import Report, report_json_schema
from assistant.pipeline.pipeline import ReportPipeline
from assistant.serving import client_schema
from assistant.serving.config import CHAT_MODEL, REPORT_MODEL
from assistant.serving.errors import ServingError
from assistant.serving.images import ImageFetcher, decode_data_url
from assistant.serving.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessageOut,
    Choice,
    ChunkChoice,
    DeltaMessage,
    ModelCard,
    ModelList,
    Usage,
)

CONTEXT_FIELDS = frozenset(ClinicalContext.model_fields)
METADATA_KEYS = CONTEXT_FIELDS | {"clinical_context", "modality"}


@dataclass
class Prepared:
    """A request after validation and image intake: everything the pipeline needs, nothing it does not."""

    model: str
    task: str  # "report" | "chat"
    adapter: str | None
    images: list[IntakeImage]
    context: ClinicalContext
    modality: Modality
    question: str
    history: list[tuple[str, str]]
    max_new_tokens: int | None
    client_schema: tuple[dict, Any] | None  # (schema, its vetted validator class)
    stream: bool
    include_usage: bool
    log: dict = field(default_factory=dict)  # PHI-free facts for the request log
    cancel: threading.Event = field(default_factory=threading.Event)  # set when the HTTP client goes away


class ServingService:
    def __init__(self, pipeline: ReportPipeline, config: ServingConfig, *, fetcher: ImageFetcher | None = None) -> None:
        self.pipeline = pipeline
        self.config = config
        self.fetcher = fetcher or ImageFetcher(config.allow_image_domains,
                                               allow_private=config.allow_private_image_hosts,
                                               ca_bundle=config.image_ca_bundle,
                                               timeout_s=config.image_fetch_timeout_s,
                                               max_bytes=config.image_max_bytes)
        self.public_model = pipeline.backend.config.display_name
        self.adapters = tuple(pipeline.backend.config.adapters)
        self.fingerprint = _fingerprint(pipeline)
        self.backend_ok = True
        self._report_schemas = _canonical_schemas()

    # -- models ------------------------------------------------------------------------------------------------
    def models(self) -> ModelList:
        cards = [
            ModelCard(id=REPORT_MODEL, root=self.public_model,
                      description="structured, grounded, safety-checked report (content is Report JSON)"),
            ModelCard(id=CHAT_MODEL, root=self.public_model,
                      description="grounded free-text answers with citations and safety notes, multi-turn"),
        ]
        cards += [ModelCard(id=name, root=self.public_model, parent=REPORT_MODEL,
                            description=f"report with the LoRA adapter {name}") for name in self.adapters]
        return ModelList(data=cards)

    def model_card(self, model_id: str) -> ModelCard:
        """``GET /v1/models/{id}``: one model, or 404 as OpenAI answers."""
        card = next((card for card in self.models().data if card.id == model_id), None)
        if card is None:
            raise self._no_such_model()
        return card

    def resolve_model(self, model: str) -> tuple[str, str | None]:
        if model == REPORT_MODEL:
            return "report", None
        if model == CHAT_MODEL:
            return "chat", None
        if model in self.adapters:
            return "report", model
        raise self._no_such_model()

    def _no_such_model(self) -> ServingError:
        known = ", ".join([REPORT_MODEL, CHAT_MODEL, *self.adapters])
        return ServingError(f"the requested model does not exist; available: {known}", "model_not_found", "model")

    # -- request → prepared -------------------------------------------------------------------------------------
    def prepare(self, request: ChatCompletionRequest) -> Prepared:
        """Validate a request and take in its images; raises ``DermassistError`` subclasses with clear messages."""
        task, adapter = self.resolve_model(request.model)
        self._refuse_unsupported(request, task)
        max_new_tokens = self._max_tokens(request, task)
        vetted = self._client_schema(request)
        messages = request.messages
        if len(messages) > self.config.max_messages:
            raise ServingError(f"too many messages ({len(messages)}); the limit is {self.config.max_messages}",
                               param="messages")
        text_chars = sum(len(m.text()) for m in messages)
        if text_chars > self.config.max_text_chars:
            raise ServingError(f"the messages hold {text_chars} characters of text; the limit is "
                               f"{self.config.max_text_chars}", param="messages")
        last = messages[-1]
        if last.role != "user":
            raise ServingError("the last message must be a user message", param="messages")
        context, modality = parse_metadata(request.metadata)
        if task == "report":
            urls = last.image_urls()
            if not urls:
                raise ServingError("dermassist-report needs at least one image in the last user message "
                                   "(an image_url content part with a data: URL)", param="messages")
        else:
            # A follow-up question keeps looking at the conversation's most recent images.
            urls = next((m.image_urls() for m in reversed(messages) if m.role == "user" and m.image_urls()), [])
        if len(urls) > self.config.max_images:
            raise ServingError(f"too many images ({len(urls)}); the limit is {self.config.max_images} per request",
                               param="messages")
        images = [self._intake(url, f"image {i + 1}") for i, url in enumerate(urls)]
        question = last.text().strip()
        history = [("assistant" if m.role == "assistant" else "user", m.text())
                   for m in messages[:-1] if m.role in ("user", "assistant") and m.text().strip()]
        if task == "chat" and not question:
            raise ServingError("the last user message has no text: ask a question", param="messages")
        if task == "report" and question and not context.question:
            with contextlib.suppress(ValidationError):
                context = context.model_copy(update={"question": question[:2000]})
        log = {"model": request.model, "task": task, "adapter": adapter, "n_messages": len(messages),
               "n_images": len(images), "stream": request.stream,
               "images": [{"sha256": img.sha256[:16], "size": list(img.original_size), "format": img.source_format}
                          for img in images],
               "has_context": request.metadata is not None}
        return Prepared(model=request.model, task=task, adapter=adapter, images=images, context=context,
                        modality=modality, question=question, history=history, max_new_tokens=max_new_tokens,
                        client_schema=vetted, stream=request.stream,
                        include_usage=bool(request.stream_options and request.stream_options.include_usage),
                        log=log)

    def _refuse_unsupported(self, request: ChatCompletionRequest, task: str) -> None:
        """What would change the answer and cannot be honoured is a 400, never silently ignored (a default or
        empty value is accepted: clients send those)."""
        if request.n != 1:
            raise ServingError("n must be 1: dermassist returns one answer per request", param="n")
        if request.tools or request.functions:
            raise ServingError("tools and functions are not supported", param="tools")
        if request.tool_choice not in (None, "none") or request.function_call not in (None, "none"):
            raise ServingError("tool_choice is not supported (dermassist calls no tools)", param="tool_choice")
        if request.logprobs or request.top_logprobs:
            raise ServingError("logprobs are not supported", param="logprobs")
        if request.stop:
            raise ServingError("stop sequences are not supported: a report is complete JSON and a chat answer is "
                               "released only whole; use max_tokens to bound the length", param="stop")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(request, name):
                raise ServingError(f"{name} is not supported (decoding is greedy and constrained); send 0 or omit it",
                                   param=name)
        if request.logit_bias:
            raise ServingError("logit_bias is not supported", param="logit_bias")
        fmt = request.response_format
        if fmt is None or fmt.type == "text":
            return
        if task == "chat":
            raise ServingError(f"response_format {fmt.type} is not supported by {CHAT_MODEL} (free text); use "
                               f"{REPORT_MODEL} for JSON", param="response_format")
        if fmt.type == "json_schema" and (fmt.json_schema is None or fmt.json_schema.schema_ is None):
            raise ServingError("response_format json_schema needs a schema (the Report schema: `dermassist "
                               "schema`)", param="response_format")

    def _client_schema(self, request: ChatCompletionRequest) -> tuple[dict, Any] | None:
        """A client's json_schema, vetted now, before images are fetched or generation waits (bounded, never
        fetched from anywhere, or a 400); None when there is none or it is the Report schema itself."""
        fmt = request.response_format
        schema = fmt.json_schema.schema_ if fmt and fmt.type == "json_schema" and fmt.json_schema else None
        if schema is None:
            return None
        validator_cls = client_schema.vet(schema)
        return None if _canonical(schema) in self._report_schemas else (schema, validator_cls)

    def _max_tokens(self, request: ChatCompletionRequest, task: str) -> int | None:
        value = request.max_completion_tokens or request.max_tokens
        if value is not None and value > self.config.max_tokens:
            raise ServingError(f"max_tokens {value} is above this server's limit of {self.config.max_tokens}",
                               param="max_tokens")
        if value is not None and task == "report" and value < self.config.min_report_tokens:
            raise ServingError(f"max_tokens {value} is too small for a report: the minimum is "
                               f"{self.config.min_report_tokens} (a report is a complete JSON document)",
                               param="max_tokens")
        return value

    def _intake(self, url: str, label: str) -> IntakeImage:
        if url[:5].lower() == "data:":
            data = decode_data_url(url, label=label, max_bytes=self.config.image_max_bytes)
        else:
            data = self.fetcher.fetch(url, label=label).data
        return load_image(data, label=label, budget=self.pipeline.settings.pixel_budget)

    # -- prepared → answer -------------------------------------------------------------------------------------
    def execute(self, prepared: Prepared) -> ChatCompletionResponse:
        clean = prepared.images  # IntakeImages, already checked: the pipeline takes them as they are
        finish_reason = "stop"  # a report is released only complete and valid
        try:
            if prepared.task == "report":
                case = Case(images=clean, modality=prepared.modality, context=prepared.context)
                report = self.pipeline.run(case, adapter=prepared.adapter, max_new_tokens=prepared.max_new_tokens,
                                           cancel=prepared.cancel)
                content, extras = self._report_content(report, prepared)
                usage = report.provenance.usage
            else:
                answer = self.pipeline.answer(prepared.question, images=clean, context=prepared.context,
                                              history=prepared.history, adapter=prepared.adapter,
                                              max_new_tokens=prepared.max_new_tokens, cancel=prepared.cancel)
                content = render_chat(answer.text, answer.safety_notes,
                                      [(c.id, c.title) for c in answer.citations], answer.disclaimer)
                extras = answer.model_dump(mode="json", exclude={"text", "finish_reason"})
                usage = answer.provenance.usage
                finish_reason = answer.finish_reason
        except OutputTruncatedError:
            budget = prepared.max_new_tokens or self.pipeline.settings.generation.max_new_tokens
            raise ServingError(f"the report did not fit in max_tokens {budget}: it was cut off (twice); ask for more "
                               f"tokens (this server allows up to {self.config.max_tokens})", "max_tokens_too_small",
                               "max_tokens") from None
        except Exception as exc:
            if _is_backend_error(exc):  # only an engine fault marks /health degraded, never a client's bad input
                self.backend_ok = False
            raise
        self.backend_ok = True
        return ChatCompletionResponse(
            model=prepared.model,
            choices=[Choice(message=ChatMessageOut(content=content), finish_reason=finish_reason)],
            usage=Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                        total_tokens=usage.prompt_tokens + usage.completion_tokens),
            system_fingerprint=self.fingerprint, dermassist=extras)

    def _report_content(self, report: Report, prepared: Prepared) -> tuple[str, dict]:
        content = report.model_dump_json()
        if prepared.client_schema is not None:
            schema, validator_cls = prepared.client_schema
            client_schema.check(json.loads(content), schema, validator_cls,
                                what=f"the report ({REPORT_MODEL} returns the Report schema: `dermassist schema`)")
        return content, {"task": "report", "triage": report.triage.urgency, "safety_actions": len(report.safety),
                         "disclaimer": report.disclaimer,
                         "warnings": [f.message for f in assess_images(prepared.images, prepared.modality)]}

    def complete(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        return self.execute(self.prepare(request))

    # -- streaming ---------------------------------------------------------------------------------------------
    def sse_events(self, response: ChatCompletionResponse, include_usage: bool) -> Iterator[str]:
        """The finished answer as OpenAI chat.completion.chunk events (content released only once validated)."""
        content = response.choices[0].message.content
        size = self.config.stream_chunk_chars

        def chunk(delta: DeltaMessage, finish: str | None = None, **extra: Any) -> str:
            event = ChatCompletionChunk(id=response.id, created=response.created, model=response.model,
                                        choices=[ChunkChoice(delta=delta, finish_reason=finish)],
                                        system_fingerprint=response.system_fingerprint, **extra)
            return f"data: {event.model_dump_json(exclude_none=True)}\n\n"

        yield chunk(DeltaMessage(role="assistant", content=""))
        for start in range(0, len(content), size):
            yield chunk(DeltaMessage(content=content[start:start + size]))
        yield chunk(DeltaMessage(), finish=response.choices[0].finish_reason, dermassist=response.dermassist)
        if include_usage:
            usage_event = ChatCompletionChunk(id=response.id, created=response.created, model=response.model,
                                              choices=[], usage=response.usage,
                                              system_fingerprint=response.system_fingerprint)
            yield f"data: {usage_event.model_dump_json(exclude_none=True)}\n\n"
        yield "data: [DONE]\n\n"

    def close(self) -> None:
        self.pipeline.close()


def parse_metadata(metadata: dict[str, Any] | None) -> tuple[ClinicalContext, Modality]:
    """The clinical context and modality from the request's ``metadata`` field (documented in docs/serving.md)."""
    if not metadata:
        return ClinicalContext(), Modality.clinical
    unknown = set(metadata) - METADATA_KEYS
    if unknown:  # counted, never shown: a key is client input (it has carried a patient's name)
        raise ServingError(f"metadata has {len(unknown)} unknown key(s); accepted: clinical_context, modality, "
                           f"{', '.join(sorted(CONTEXT_FIELDS))}", param="metadata")
    data: dict[str, Any] = {}
    nested = metadata.get("clinical_context")
    if isinstance(nested, str):
        try:
            nested = json.loads(nested)
        except json.JSONDecodeError:
            raise ServingError("metadata.clinical_context is not valid JSON", param="metadata") from None
    if nested is not None and not isinstance(nested, dict):
        raise ServingError("metadata.clinical_context must be an object (or a JSON string of one)",
                           param="metadata")
    data.update(nested or {})
    data.update({k: v for k, v in metadata.items() if k in CONTEXT_FIELDS})
    symptoms = data.get("symptoms")
    try:
        if isinstance(symptoms, str):
            data["symptoms"] = Symptoms.from_names(symptoms.split(",")) if symptoms.strip() else Symptoms()
        elif isinstance(symptoms, list):
            data["symptoms"] = Symptoms.from_names([str(s) for s in symptoms])
        context = ClinicalContext.model_validate(data)
        modality = Modality(str(metadata.get("modality", "clinical")).strip().lower())
    except ValidationError as exc:
        raise ServingError(f"metadata: {first_error(exc, root='clinical_context')}", param="metadata") from None
    except ValueError as exc:  # unknown symptom names or modality (their messages quote the input: not shown)
        message = (f"unknown symptom name(s); choose from {', '.join(Symptoms.model_fields)}" if "symptom" in str(exc)
                   else "modality must be clinical, dermoscopy or histopathology")
        raise ServingError(f"metadata: {message}", param="metadata") from None
    return context, modality


def render_chat(text: str, safety_notes: list[str], citations: list[tuple[str, str]], disclaimer: str) -> str:
    """A chat answer as plain clients will show it: the answer, then safety notes, sources and the disclaimer."""
    parts = [text.strip()]
    if safety_notes:
        parts.append("Safety notes:\n" + "\n".join(f"- {note}" for note in safety_notes))
    if citations:
        parts.append("Sources:\n" + "\n".join(f"[{cid}] {title}" for cid, title in citations))
    parts.append(disclaimer)
    return "\n\n".join(p for p in parts if p)


def _canonical(schema: dict) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _canonical_schemas() -> set[str]:
    schemas = {_canonical(report_json_schema())}
    try:
        from assistant.core.report import packaged_report_schema

        schemas.add(_canonical(packaged_report_schema()))
    except Exception:  # packaged file missing in a source checkout: the live schema is enough
        pass
    return schemas


def _fingerprint(pipeline: ReportPipeline) -> str:
    """OpenAI's ``system_fingerprint``: an opaque id of the configuration that shapes answers (version, backend,
    model, adapters, prompts, knowledge base, generation settings); it changes when any of them does."""
    backend = pipeline.backend
    facts = [__version__, backend.name, backend.config.display_name, sorted(backend.config.adapters),
             pipeline.prompt_version, pipeline.retriever.version, pipeline.settings.generation.model_dump()]
    return "fp_" + hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _is_backend_error(exc: BaseException) -> bool:
    return getattr(exc, "kind", "") == "backend_unavailable"
