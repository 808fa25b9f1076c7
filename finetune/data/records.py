"""One SFT sample per dataset sample, in the chat format TRL's vision collator takes (``images`` + ``prompt`` +
``completion``), rendered by the very message builder inference uses.

* report samples (classification and report tasks): the report prompt with the passages the real retriever
  returns for the case, and a ``ReportDraft`` target (``finetune.data.targets``) as the assistant turn;
* VQA / caption samples (closed and open VQA tasks): the grounded chat prompt and the reference answer.

The prompt side is exactly what ``ReportPipeline.run`` / ``ReportPipeline.answer`` send when the eval harness runs
the same sample, so the tuned model is trained on the prompts it is evaluated and served with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.core.case import MAX_IMAGES_PER_CASE, Case
from assistant.core.intake import load_images
from assistant.core.messages import chat_messages, report_messages, to_hf_messages
from assistant.core.retrieval import Retriever
from eval.datasets import Sample
from eval.runner import case_context, render_prompt
from eval.task import TaskConfig
from finetune.data.targets import report_target

Kind = Literal["report", "vqa"]


class SftRecord(BaseModel):
    """One line of ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="<task>:<sample id>")
    source: str = Field(description="the eval task the sample came from")
    kind: Kind
    images: list[str] = Field(description="image files; the collator runs them through the inference intake")
    prompt: list[dict[str, Any]] = Field(description="system + user turns, images as {'type': 'image'} parts")
    completion: list[dict[str, Any]] = Field(description="the assistant turn to learn")
    label_id: str | None = None
    fitzpatrick: str | None = None
    fst_group: str | None = None
    leakage_keys: list[str] = Field(default_factory=list, description="ids that must not cross splits")
    group: str = ""
    split: str = ""


def leakage_keys(sample: Sample) -> list[str]:
    """Patient, lesion and image identities: samples sharing any of them share a split."""
    keys = [f"image:{path.resolve()}" for path in sample.images]
    for field in ("patient_id", "lesion_id"):
        value = sample.meta.get(field)
        if value not in (None, ""):
            keys.append(f"{field}:{value}")
    return keys


def _assistant(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def _record(task: TaskConfig, sample: Sample, kind: Kind, prompt, answer: str) -> SftRecord:
    return SftRecord(
        id=f"{task.name}:{sample.id}", source=task.name, kind=kind,
        images=[str(p) for p in sample.images[:MAX_IMAGES_PER_CASE]],
        prompt=to_hf_messages(prompt, include_images=False), completion=_assistant(answer),
        label_id=sample.label_id, fitzpatrick=sample.fitzpatrick, fst_group=sample.fst_group,
        leakage_keys=leakage_keys(sample))


def report_record(task: TaskConfig, sample: Sample, retriever: Retriever, k: int,
                  labels: Sequence[str] = ()) -> SftRecord:
    """The report prompt for the case (with its retrieved passages) and the target report for its label."""
    if sample.label_id is None:
        raise ValueError("no condition label")
    paths = list(sample.images[:MAX_IMAGES_PER_CASE])
    images = load_images(paths)  # the inference intake: a broken image is refused here, not mid-training
    context = case_context(sample, task.prompt)
    case = Case(images=paths, modality=task.modality, context=context)
    passages = retriever.retrieve(case, k)
    target = report_target(sample.label_id, case, passages, labels=labels)
    return _record(task, sample, "report", report_messages(context, task.modality, images, passages),
                   target.model_dump_json())


def vqa_record(task: TaskConfig, sample: Sample, retriever: Retriever, k: int) -> SftRecord:
    """The grounded chat prompt for the question and the dataset's answer (closed) or best reference (open)."""
    answer = sample.answer or (max(sample.references, key=lambda r: r.weight).text if sample.references else "")
    if not answer.strip():
        raise ValueError("no reference answer")
    question = render_prompt(task, sample)
    images = load_images(list(sample.images[:MAX_IMAGES_PER_CASE]))
    passages = retriever.search(question, k)
    messages = chat_messages(question, images=images, context=case_context(sample, None), passages=passages)
    return _record(task, sample, "vqa", messages, answer.strip())


def record_for(task: TaskConfig, sample: Sample, retriever: Retriever, k: int) -> SftRecord:
    if task.type in ("classification", "report"):
        return report_record(task, sample, retriever, k, task.labels)
    return vqa_record(task, sample, retriever, k)
