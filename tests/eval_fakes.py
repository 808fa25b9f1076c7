"""A fake pipeline for fast eval tests (no model): deterministic reports / answers, optional failures."""

from __future__ import annotations

import threading

from assistant.errors import GenerationError
from assistant.report import Report

FINDINGS = {"primary_morphology": "macule", "colour": "brown", "shape": "round", "border": "regular",
            "distribution": "solitary", "size": "5 mm", "secondary_changes": [], "summary": "a lesion"}


def make_report(condition: str, condition_id: str | None, likelihood: float = 0.7, urgency: str = "routine",
                others: tuple = (("melanoma", "melanoma", 0.2),)) -> Report:
    diff = [{"condition": condition, "condition_id": condition_id, "likelihood": likelihood, "rationale": "r"}]
    diff += [{"condition": c, "condition_id": i, "likelihood": p, "rationale": "r"} for c, i, p in others]
    return Report.model_validate({
        "findings": FINDINGS, "differential": diff,
        "diagnosis": {"condition": condition, "confidence": likelihood, "condition_id": condition_id},
        "triage": {"urgency": urgency, "action": "review"},
        "provenance": {"model": "fake", "backend": "fake", "prompt_version": "p1", "dermassist_version": "0"},
    })


class Answer:
    def __init__(self, text):
        self.text, self.citations, self.provenance = text, [], None


class FakePipeline:
    """``answers``: image stem -> condition id (reports) or text (VQA); ``fail``: stems that raise."""

    prompt_version = "fake-1"

    def __init__(self, answers: dict | None = None, fail: set | None = None, default="melanocytic_nevus"):
        self.answers, self.fail, self.default = answers or {}, fail or set(), default
        self.calls = 0
        self._lock = threading.Lock()

    def _stem(self, images):
        return str(images[0]).rsplit("/", 1)[-1].rsplit(".", 1)[0]

    def run(self, case, adapter=None):
        with self._lock:
            self.calls += 1
        stem = self._stem(case.images)
        if stem in self.fail:
            raise GenerationError("the model's report did not validate after the retry")
        cid = self.answers.get(stem, self.default)
        return make_report(cid.replace("_", " ") if cid else "uncertain", cid,
                           urgency="urgent" if cid == "melanoma" else "routine")

    def answer(self, question, images, context=None, adapter=None):
        with self._lock:
            self.calls += 1
        stem = self._stem(images)
        if stem in self.fail:
            raise RuntimeError("boom")
        return Answer(self.answers.get(stem, "yes"))

    def close(self):
        pass
