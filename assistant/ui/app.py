"""The Gradio app: photos and context in, the report and a follow-up conversation out.

Flow: photos go through the same intake as every surface the moment they are added (a hostile file gets the CLI's
message), then through the quality gate, whose advice shows *before* any generation; "Write report" with advice
pending asks once more ("Continue anyway"). The report streams its steps (intake → retrieval → generation →
validation → safety) from the pipeline's progress callback, then renders; exports and follow-up questions work on
the session's own copy of the case. Everything a user sees when something fails is one sentence.

Besides the page, three API endpoints serve programmatic clients (``gradio_client``): ``/check_images``,
``/report`` and ``/answer`` — stateless, files uploaded through Gradio and decoded by the same intake.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from assistant.core.case import MAX_IMAGES_PER_CASE, Case, ClinicalContext, Modality
from assistant.core.errors import CaseError, DermassistError, first_error
from assistant.core.intake import IntakeImage, PixelBudget, load_image
from assistant.core.quality import assess_images
from assistant.core.report import Report
from assistant.pipeline.pipeline import ChatAnswer
from assistant.ui import views
from assistant.ui.engine import CaseEngine
from assistant.ui.examples import Example
from assistant.ui.export import write_exports
from assistant.ui.form import FieldSpec, context_form, context_from_values, form_values
from assistant.ui.session import CaseSession, folder_token, forget

log = logging.getLogger("dermassist.ui")

INTERNAL_ERROR = "Something went wrong on the server (an internal error); your case is kept, please try again."
MODALITIES = tuple(m.value for m in Modality)


@dataclass(frozen=True)
class UISettings:
    sessions: Path  # the private folder session exports go to (one sub-folder per session)
    budget: PixelBudget = field(default_factory=PixelBudget)
    session_ttl_s: int = 2 * 3600  # a session idle this long is forgotten (images, report, exports)


def build_app(engine: CaseEngine, settings: UISettings, examples: list[Example]) -> gr.Blocks:
    specs = context_form()
    handlers = _Handlers(engine, settings, specs)
    with gr.Blocks(title="dermassist", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        state = gr.State(None, time_to_live=settings.session_ttl_s,
                         delete_callback=lambda s: forget(s, settings.sessions))
        page = _layout(state, engine, examples, specs)
        _wire(page, handlers, examples)
        demo.unload(handlers.unload)
        _api(handlers)
    return demo


@dataclass
class _Page:
    """The components the events connect."""

    state: Any
    examples: list[Any]
    gallery: Any
    quality: Any
    modality: Any
    fields: list[Any]
    question: Any
    submit: Any
    alert: Any
    continue_anyway: Any
    progress: Any
    report: Any
    downloads: list[Any]
    chat: Any
    ask_box: Any
    ask: Any


def _layout(state: Any, engine: CaseEngine, examples: list[Example], specs: list[FieldSpec]) -> _Page:
    gr.HTML(views.disclaimer_banner(), elem_id="da-banner", container=False)
    gr.Markdown("## dermassist — dermatology decision support")
    gr.HTML(f"<div>Reports from {escape(engine.description)}.</div>", elem_id="da-engine")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            gr.Markdown("### 1 · Photos and context")
            with gr.Row():
                buttons = [gr.Button(f"Example: {e.title}", size="sm", elem_classes=["da-example"]) for e in examples]
            gallery = gr.Gallery(label=f"Photos of the skin problem (1-{MAX_IMAGES_PER_CASE}): upload, paste or take "
                                       "with the webcam", type="filepath", interactive=True,
                                 sources=["upload", "webcam", "clipboard"], columns=4, height=260, elem_id="da-photos")
            quality = gr.HTML(views.quality_html(0, [], []), elem_id="da-quality")
            modality = gr.Radio(list(MODALITIES), value=Modality.clinical.value, label="Modality",
                                elem_id="da-modality")
            with gr.Accordion("Clinical context", open=True):
                fields = [_component(spec) for spec in specs]
            question = gr.Textbox(label="Question (optional)", lines=2, max_lines=6, elem_id="da-question",
                                  placeholder="e.g. Could this be a skin cancer? What should happen next?")
            submit = gr.Button("Write report", variant="primary", elem_id="da-submit")
            alert = gr.HTML("", elem_id="da-alert")
            continue_anyway = gr.Button("Continue anyway", visible=False, elem_id="da-continue")
        with gr.Column(scale=7):
            gr.Markdown("### 2 · Report")
            progress = gr.HTML("", elem_id="da-progress")
            report = gr.HTML('<div class="da-report-empty">The report appears here.</div>', elem_id="da-report")
            with gr.Row():
                downloads = [gr.DownloadButton(f"Download {label}", visible=False, size="sm",
                                               elem_id=f"da-download-{kind}")
                             for kind, label in (("json", "JSON"), ("markdown", "Markdown"), ("pdf", "PDF"))]
            gr.Markdown("### 3 · Follow-up questions")
            chat = gr.Chatbot(label="Questions about this case", height=340, elem_id="da-chat",
                              feedback_options=None, buttons=["copy"], sanitize_html=True,
                              placeholder="Ask about the report once it is written.")
            with gr.Row():
                ask_box = gr.Textbox(show_label=False, placeholder="Ask a follow-up question…", scale=5,
                                     elem_id="da-ask")
                ask = gr.Button("Ask", scale=1, elem_id="da-ask-button")
    return _Page(state, buttons, gallery, quality, modality, fields, question, submit, alert, continue_anyway,
                 progress, report, downloads, chat, ask_box, ask)


def _wire(p: _Page, handlers: _Handlers, examples: list[Example]) -> None:
    private: dict[str, Any] = {"api_visibility": "private"}
    # Photos are checked as soon as they change (added, removed) or the modality does. Gradio 6 fires a gallery's
    # change only for the user's own edits, so loading an example checks explicitly.
    check = (handlers.check, [p.gallery, p.modality, p.state], [p.quality, p.alert, p.continue_anyway, p.state])
    for trigger in (p.gallery.change, p.modality.change):
        trigger(*check, show_progress="minimal", **private)
    for button, example in zip(p.examples, examples, strict=True):
        button.click(handlers.example(example), None, [p.gallery, p.modality, *p.fields, p.question],
                     **private).then(*check, **private)
    # The report streams its own step list, so Gradio's spinners stay off its outputs.
    inputs = {p.state, p.modality, p.question, *p.fields}
    outputs = [p.progress, p.report, p.alert, p.continue_anyway, *p.downloads, p.chat, p.state]
    for button, confirmed in ((p.submit, False), (p.continue_anyway, True)):
        run = handlers.report(confirmed=confirmed, fields=p.fields, modality=p.modality, question=p.question,
                              state=p.state)
        button.click(run, inputs, outputs, show_progress="hidden", **private)
    for trigger in (p.ask.click, p.ask_box.submit):
        trigger(handlers.ask, [p.ask_box, p.chat, p.state], [p.chat, p.ask_box, p.alert, p.state],
                show_progress="minimal", **private)


def theme() -> gr.themes.Base:
    """System fonts only: the page must not fetch fonts from the internet (clinics, offline machines)."""
    return gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"])


def css() -> str:
    return resources.files("assistant.ui").joinpath("style.css").read_text(encoding="utf-8")


class _Handlers:
    """The event handlers; each returns or yields values for its outputs, never raises to Gradio."""

    def __init__(self, engine: CaseEngine, settings: UISettings, specs: list[FieldSpec]) -> None:
        self.engine = engine
        self.settings = settings
        self.specs = specs

    def session(self, session: CaseSession | None, request: gr.Request | None) -> CaseSession:
        return session or CaseSession(token=folder_token(getattr(request, "session_hash", None)))

    # -- photos ------------------------------------------------------------------------------------------------
    def check(self, gallery: list | None, modality: str, session: CaseSession | None,
              request: gr.Request) -> tuple:
        session = self.session(session, request)
        paths = [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]
        images, errors = self.intake(paths)
        findings = assess_images(images, modality)
        session.set_images(images, errors, findings)
        return (views.quality_html(len(images), findings, errors), "", gr.update(visible=False), session)

    def intake(self, sources: list[Any]) -> tuple[list[IntakeImage], list[str]]:
        """Every photo through the one intake (the CLI's messages for a bad file); too many is one message."""
        if len(sources) > MAX_IMAGES_PER_CASE:
            return [], [f"A case takes at most {MAX_IMAGES_PER_CASE} photos; remove "
                        f"{len(sources) - MAX_IMAGES_PER_CASE}."]
        images, errors = [], []
        for i, source in enumerate(sources, 1):
            try:
                images.append(load_image(source, label=f"image {i}", budget=self.settings.budget))
            except DermassistError as exc:
                errors.append(str(exc))  # the intake's own message, word for word as the CLI prints it
        return images, errors

    def example(self, example: Example) -> Callable[[], list]:
        def load() -> list:
            return [[str(p) for p in example.images], example.modality.value,
                    *[_shown(spec, v) for spec, v in zip(self.specs, form_values(self.specs, example.context),
                                                         strict=True)],
                    example.context.question or ""]
        return load

    # -- the report --------------------------------------------------------------------------------------------
    def report(self, *, confirmed: bool, fields: list, modality: Any, question: Any,
               state: Any) -> Callable[..., Iterator[tuple]]:
        def run(data: dict, request: gr.Request) -> Iterator[tuple]:
            session = self.session(data[state], request)
            yield from self._report(session, data[modality], [data[c] for c in fields], data[question], confirmed)
        return run

    def _report(self, session: CaseSession, modality: str, values: list, question: str | None,
                confirmed: bool) -> Iterator[tuple]:
        hidden = [gr.update(visible=False)] * 3

        def stop(message: str, *, kind: str = "error", offer_continue: bool = False) -> tuple:
            return (gr.update(), gr.update(), views.alert_html(message, kind=kind),
                    gr.update(visible=offer_continue), *[gr.update()] * 3, gr.update(), session)

        if session.image_errors:
            yield stop("Remove or replace the photos that cannot be used: " + " ".join(session.image_errors))
            return
        if not session.images:
            yield stop("Add at least one photo of the skin problem.")
            return
        try:
            context = context_from_values(self.specs, values, question)
        except CaseError as exc:
            yield stop(_sentence(str(exc)))
            return
        if session.findings and not confirmed:
            yield stop("The photos may not be good enough for a reliable report (see the retake advice). Retake "
                       "them, or continue anyway: the report will record the problem.", kind="warning",
                       offer_continue=True)
            return
        case = Case(images=list(session.images), modality=modality, context=context)
        done: list[str] = []
        yield (views.progress_html(done, "intake"), gr.update(), "", gr.update(visible=False), *hidden, gr.update(),
               session)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        threading.Thread(target=self._generate, args=(case, events), daemon=True).start()
        current: str | None = "intake"
        while True:
            kind, value = events.get()
            if kind == "step":
                if current and current not in done:
                    done.append(current)
                current = value
                yield (views.progress_html(done, current), gr.update(), "", gr.update(), *[gr.update()] * 3,
                       gr.update(), session)
            elif kind == "error":
                yield (views.progress_html(done, current, failed=True), gr.update(), views.alert_html(value),
                       gr.update(), *[gr.update()] * 3, gr.update(), session)
                return
            else:
                report: Report = value
                session.set_report(case, report)
                paths = write_exports(report, session.folder(self.settings.sessions))
                yield (views.progress_html(list(views.STEP_LABELS), None), views.report_html(report), "",
                       gr.update(visible=False),
                       *[gr.update(value=str(paths[k]), visible=True) for k in ("json", "markdown", "pdf")],
                       [], session)
                return

    def _generate(self, case: Case, events: queue.Queue) -> None:
        started = time.perf_counter()
        try:
            report = self.engine.report(case, progress=lambda step: events.put(("step", step)))
        except DermassistError as exc:
            events.put(("error", _sentence(str(exc))))
        except Exception as exc:  # a bug: the user gets one sentence, the log gets the type (never case data)
            log.error("report failed with an internal error (%s)", type(exc).__name__)
            events.put(("error", INTERNAL_ERROR))
        else:
            log.info("report written: %d image(s) in %.1f s", len(case.images), time.perf_counter() - started)
            events.put(("report", report))

    # -- follow-up questions -----------------------------------------------------------------------------------
    def ask(self, question: str, chat: list | None, session: CaseSession | None, request: gr.Request) -> tuple:
        session = self.session(session, request)
        chat = list(chat or [])
        if not question or not question.strip():
            return chat, question, views.alert_html("Type a question first."), session
        if session.report is None or session.case is None:
            return chat, question, views.alert_html("Write a report first; follow-up questions are about it."), \
                session
        try:
            answer = self.engine.answer(question.strip(), session.case, session.report, session.chat)
        except DermassistError as exc:
            return chat, question, views.alert_html(_sentence(str(exc))), session
        except Exception as exc:
            log.error("follow-up failed with an internal error (%s)", type(exc).__name__)
            return chat, question, views.alert_html(INTERNAL_ERROR), session
        session.chat += [("user", question.strip()), ("assistant", answer.text)]
        chat += [{"role": "user", "content": question.strip()},
                 {"role": "assistant", "content": views.answer_markdown(answer)}]
        return chat, "", "", session

    def unload(self, request: gr.Request) -> None:
        """The tab closed: its exports go now (its state goes when Gradio expires it)."""
        forget(CaseSession(token=folder_token(request.session_hash)), self.settings.sessions)

    # -- API (stateless, for gradio_client) --------------------------------------------------------------------
    def api_check(self, files: list[bytes] | None, modality: str | None) -> dict:
        images, errors = self.intake(list(files or []))
        findings = assess_images(images, _modality(modality))
        return {"errors": errors, "findings": [f.model_dump() for f in findings]}

    def api_report(self, files: list[bytes] | None, modality: str | None, context: dict | None,
                   question: str | None) -> dict:
        case = self._api_case(files, modality, context, question)
        return _api_call(lambda: self.engine.report(case, progress=lambda step: None)).model_dump(mode="json")

    def api_answer(self, files: list[bytes] | None, modality: str | None, context: dict | None,
                   report: dict | None, history: list | None, question: str | None) -> dict:
        case = self._api_case(files, modality, context, None)
        try:
            parsed = Report.model_validate(report or {})
            turns = [(str(role), str(text)) for role, text in (history or [])]
        except (ValueError, TypeError):
            raise gr.Error("report must be a report as /report returns it, history a list of [role, text]",
                           print_exception=False) from None
        answer: ChatAnswer = _api_call(lambda: self.engine.answer(question or "", case, parsed, turns))
        return answer.model_dump(mode="json")

    def _api_case(self, files: list[bytes] | None, modality: str | None, context: dict | None,
                  question: str | None) -> Case:
        images, errors = self.intake(list(files or []))
        if errors:
            raise gr.Error(" ".join(errors), print_exception=False)
        if not images:
            raise gr.Error("add at least one image", print_exception=False)
        try:
            parsed = ClinicalContext.model_validate({**(context or {}), **({"question": question} if question
                                                                         else {})})
            return Case(images=images, modality=_modality(modality), context=parsed)
        except ValidationError as exc:
            raise gr.Error(f"invalid case: {first_error(exc, root='case')}", print_exception=False) from None
        except ValueError as exc:
            raise gr.Error(f"invalid case: {exc}", print_exception=False) from None


def _api(handlers: _Handlers) -> None:
    """Hidden inputs and outputs for the programmatic endpoints (documented under "Use via API")."""
    with gr.Group(visible=False):
        files = gr.File(file_count="multiple", type="binary", label="images")
        modality = gr.Textbox(label="modality")
        context = gr.JSON(label="context")
        question = gr.Textbox(label="question")
        report = gr.JSON(label="report")
        history = gr.JSON(label="history")
        out = gr.JSON(label="result")
        trigger = gr.Button()
    trigger.click(handlers.api_check, [files, modality], out, api_name="check_images")
    trigger.click(handlers.api_report, [files, modality, context, question], out, api_name="report")
    trigger.click(handlers.api_answer, [files, modality, context, report, history, question], out,
                  api_name="answer")


def _api_call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DermassistError as exc:
        raise gr.Error(_sentence(str(exc)), print_exception=False) from None
    except gr.Error:
        raise
    except Exception as exc:
        log.error("API call failed with an internal error (%s)", type(exc).__name__)
        raise gr.Error(INTERNAL_ERROR, print_exception=False) from None


def _modality(value: str | None) -> Modality:
    try:
        return Modality((value or "clinical").strip().lower())
    except ValueError:
        raise gr.Error(f"modality must be one of {', '.join(MODALITIES)}", print_exception=False) from None


def _component(spec: FieldSpec) -> Any:
    common = {"label": spec.label, "info": spec.info, "elem_id": f"da-field-{spec.name}"}
    if spec.kind == "number":  # a text box: Gradio's number box shows and sends 0 when left empty
        bounded = spec.minimum is not None and spec.maximum is not None
        bounds = f" ({spec.minimum:g}-{spec.maximum:g})" if bounded else ""
        return gr.Textbox(placeholder=f"not given{bounds}", max_lines=1, **common)
    if spec.kind == "choice":
        default = form_values([spec], ClinicalContext())[0] if spec.name in ClinicalContext.model_fields else None
        return gr.Dropdown([("not given", ""), *[(c, c) for c in spec.choices]], value=_shown(spec, default),
                           **common)
    if spec.kind == "flags":
        return gr.CheckboxGroup([(label, name) for name, label in spec.flags], value=[], **common)
    lines = 3 if spec.kind == "long_text" else 1
    return gr.Textbox(lines=lines, max_lines=8 if lines > 1 else 1, max_length=spec.max_length, **common)


def _shown(spec: FieldSpec, value: Any) -> Any:
    """A form value as its component holds it (a choice that is not set is the "not given" entry)."""
    if spec.kind == "choice":
        return "" if value is None else str(value)
    if spec.kind == "flags":
        return list(value or [])
    return value


def _sentence(message: str) -> str:
    """Errors read as one sentence: capitalised, ending with a full stop."""
    message = message.strip()
    if not message:
        return INTERNAL_ERROR
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."
