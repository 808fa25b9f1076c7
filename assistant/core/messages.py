"""The one message builder: exactly the prompts inference sends, as chat messages with images.

Every backend receives what these functions build, and fine-tuning data is rendered with the same functions, so a
tuned model is trained on the very prompt (system text, guideline block, clinical context, image placement) it
will see in production. Prompt text lives in ``prompts/*.j2``; nothing here holds prompt wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import prompts
from assistant.core.case import ClinicalContext, Modality
from assistant.core.intake import IntakeImage
from assistant.core.report import Report
from assistant.core.retrieval import Passage

Role = Literal["system", "user", "assistant"]

MODALITY_PHRASES = {
    Modality.clinical: "clinical photographs of the skin",
    Modality.dermoscopy: "dermoscopic images of a skin lesion",
    Modality.histopathology: "histopathology images of a skin biopsy",
}


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    image: IntakeImage


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    parts: tuple[TextPart | ImagePart, ...]

    @classmethod
    def text(cls, role: Role, text: str) -> ChatMessage:
        return cls(role, (TextPart(text),))

    def images(self) -> list[IntakeImage]:
        return [p.image for p in self.parts if isinstance(p, ImagePart)]


def report_messages(context: ClinicalContext, modality: Modality | str, images: Sequence[IntakeImage],
                    passages: Sequence[Passage]) -> tuple[ChatMessage, ...]:
    """System + user turn asking for a JSON report about ``images`` in ``context``, grounded in ``passages``."""
    system = prompts.render("report/system.j2", modality_phrase=MODALITY_PHRASES[Modality(modality)])
    user = prompts.render("report/instruction.j2", context=context, passages=list(passages),
                          symptoms=", ".join(context.symptoms.present()))
    parts: tuple[TextPart | ImagePart, ...] = (*(ImagePart(img) for img in images), TextPart(user))
    return ChatMessage.text("system", system), ChatMessage("user", parts)


def report_retry_message(problem: str) -> ChatMessage:
    """The follow-up turn after an invalid report: it tells the model what was wrong with its output."""
    return ChatMessage.text("user", prompts.render("report/retry.j2", problem=problem))


def chat_messages(question: str, *, images: Sequence[IntakeImage] = (), context: ClinicalContext | None = None,
                  passages: Sequence[Passage] = (), history: Sequence[tuple[str, str]] = ()) -> tuple[ChatMessage, ...]:
    """A grounded free-text turn: system with passages, earlier ``(role, text)`` turns, then the question."""
    messages = [ChatMessage.text("system", prompts.render("chat/system.j2", passages=list(passages)))]
    for role, text in history:
        messages.append(ChatMessage.text("assistant" if role == "assistant" else "user", text))
    user = prompts.render("chat/user.j2", question=question, context=context,
                          symptoms=", ".join(context.symptoms.present()) if context else "")
    parts: tuple[TextPart | ImagePart, ...] = (*(ImagePart(img) for img in images), TextPart(user))
    messages.append(ChatMessage("user", parts))
    return tuple(messages)


def report_turn(report: Report) -> str:
    """A finished report as the assistant's earlier turn, so follow-up questions are answered with it in context
    (in-process through ``ReportPipeline.answer(report=...)``, over HTTP as an assistant message)."""
    return prompts.render("chat/report.j2", report=report)


def to_hf_messages(messages: Sequence[ChatMessage], *, image_key: str = "image",
                   include_images: bool = True) -> list[dict]:
    """Messages in the Hugging Face / vLLM chat format.

    Images stay PIL objects (never written to disk). With ``include_images=False`` an image part becomes the bare
    ``{"type": "image"}`` placeholder TRL's vision collator expects beside a separate ``images`` column.
    """
    out = []
    for message in messages:
        content: list[dict] = []
        for part in message.parts:
            if isinstance(part, ImagePart):
                content.append({"type": image_key, image_key: part.image.image} if include_images
                               else {"type": "image"})
            else:
                content.append({"type": "text", "text": part.text})
        out.append({"role": message.role, "content": content})
    return out
