"""Optional LLM judge: any OpenAI-compatible endpoint grades each sample's final answer against the reference.

``dermassist eval ... --judge-url http://127.0.0.1:8001/v1 --judge-model NAME`` adds ``judge_accuracy`` (with
CIs, overall and per skin-tone group) and ``judge_unsure_rate``. Rules (see docs/eval.md):

* only the final diagnosis counts: for report tasks the judge sees ``diagnosis.condition`` and the reference
  label's name, never the differential, so a right answer found only in the differential is wrong;
* verdicts are strict JSON (``response_format`` json_schema of :class:`Verdict`), validated with pydantic; an
  invalid verdict gets one retry, then counts as ``unsure`` with the error recorded;
* a sample that failed (no report, no answer) is wrong without a judge call; ``unsure`` counts as not correct;
* verdicts are cached in ``OUT/judge_cache.jsonl`` keyed by judge model, prompt version and the judge input.

Prompts live in ``prompts/judge/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import prompts
from assistant.backends.openai_backend import UpstreamStatusError, call_openai
from assistant.core.errors import ConfigError, first_error
from assistant.core.ontology import default_ontology
from assistant.core.report import Line, _without_length_beside_pattern
from eval.cache import SampleCache
from eval.datasets import Sample
from eval.metrics.vqa import LETTERS, format_choices
from eval.results import JudgeInfo, SampleRecord
from eval.task import TaskConfig

API_KEY_ENV = "DERMASSIST_JUDGE_API_KEY"
MAX_REFERENCES = 5
REJECTED_INPUT = {400, 413, 422}  # the server refused this one request (e.g. too long): that sample is unsure


class _Rejected(Exception):
    pass


class Verdict(BaseModel):
    """The judge's reply, and the JSON Schema its decoder is constrained to."""

    model_config = ConfigDict(extra="forbid")
    verdict: Literal["correct", "incorrect", "unsure"]
    rationale: Line


def verdict_schema() -> dict:
    return _without_length_beside_pattern(Verdict.model_json_schema())


def parse_verdict(text: str, finish_reason: str = "stop") -> Verdict:
    """The validated verdict, or ValueError saying what was wrong (shown to the judge on the retry)."""
    if finish_reason == "length":
        raise ValueError("the reply was cut off at the token limit")
    try:
        return Verdict.model_validate_json(text)
    except ValidationError as err:
        raise ValueError(first_error(err, root="reply")[:200]) from None


@dataclass(frozen=True)
class JudgeInput:
    kind: Literal["diagnosis", "answer"]
    references: tuple[str, ...]
    candidate: str
    question: str | None = None


def judge_input(task: TaskConfig, sample: Sample, output: dict | None, labels: list[str]) -> JudgeInput | None:
    """What the judge sees for one sample, or None when the sample has no reference to judge against.

    ``output`` is the cached model output (a report dict or ``{"text": ...}``; None for a failed sample, which
    still gets an input so the caller knows a reference exists). Report tasks: only ``diagnosis.condition``.
    """
    if task.type in ("classification", "report"):
        if not sample.label_id or (labels and sample.label_id not in labels):
            return None  # no ground truth: left out, as in the label metrics
        refs = [default_ontology().name_of(sample.label_id)]
        candidate = output["diagnosis"]["condition"] if output else ""
        return JudgeInput("diagnosis", tuple(refs), candidate)
    if task.type == "closed_vqa":
        if not sample.answer:
            return None
        gold = sample.answer.strip()
        if sample.choices and len(gold) == 1 and gold.upper() in LETTERS[: len(sample.choices)]:
            gold = f"{gold.upper()}. {sample.choices[LETTERS.index(gold.upper())]}"
        question = sample.question or ""
        if sample.choices:
            question = f"{question}\n{format_choices(sample.choices)}".strip()
        return JudgeInput("answer", (gold,), output["text"] if output else "", question or None)
    refs = [r.text for r in sorted(sample.references, key=lambda r: -r.weight) if r.text.strip()]
    if not refs:
        return None
    return JudgeInput("answer", tuple(refs[:MAX_REFERENCES]), output["text"] if output else "", sample.question)


def judge_messages(inp: JudgeInput) -> list[dict]:
    return [{"role": "system", "content": prompts.render("judge/system.j2", kind=inp.kind)},
            {"role": "user", "content": prompts.render("judge/user.j2", kind=inp.kind, question=inp.question,
                                                        references=list(inp.references),
                                                        candidate=inp.candidate)}]


@dataclass
class JudgeResult:
    verdict: str
    rationale: str = ""
    error: str | None = None
    attempts: int = 1


class Judge:
    """A client for one judge model behind an OpenAI-compatible endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout_s: float = 120.0,
                 max_tokens: int = 512) -> None:
        import openai

        self.base_url, self.model, self.max_tokens = base_url, model, max_tokens
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or os.environ.get(API_KEY_ENV) or "EMPTY",
                                    timeout=timeout_s, max_retries=1)

    @property
    def prompt_version(self) -> str:
        return prompts.PROMPT_VERSION

    def _call(self, fn):
        try:
            return call_openai(fn, f"the judge at {self.base_url}")
        except UpstreamStatusError as exc:
            if exc.status_code in REJECTED_INPUT:
                raise _Rejected(str(exc)) from None
            raise

    def check(self) -> None:
        """Fail early, naming the URL, when the judge is down or does not serve the model."""
        served = [m.id for m in self._call(lambda: list(self.client.models.list()))]
        if served and self.model not in served:
            raise ConfigError(f"the judge at {self.base_url} does not serve model {self.model!r} "
                              f"(it serves: {', '.join(served[:5])})")

    def key(self, inp: JudgeInput) -> str:
        raw = json.dumps([self.model, self.prompt_version, asdict(inp)], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def _complete(self, messages: list[dict]) -> tuple[str, str]:
        response = self._call(lambda: self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=0.0, seed=0,
            response_format={"type": "json_schema", "json_schema": {"name": "judge_verdict",
                                                                    "schema": verdict_schema(), "strict": True}}))
        choice = response.choices[0]
        return choice.message.content or "", choice.finish_reason or "stop"

    def judge(self, inp: JudgeInput) -> JudgeResult:
        """One verdict: an invalid reply gets one retry (shown its problem), then counts as ``unsure``."""
        messages = judge_messages(inp)
        problem = ""
        for attempt in (1, 2):
            try:
                text, finish = self._complete(messages)
            except _Rejected as err:
                return JudgeResult("unsure", "", str(err), attempt)
            try:
                v = parse_verdict(text, finish)
                return JudgeResult(v.verdict, v.rationale, None, attempt)
            except ValueError as err:
                problem = str(err)
            messages = [*messages, {"role": "assistant", "content": text[:2000]},
                        {"role": "user", "content": prompts.render("judge/retry.j2", problem=problem)}]
        return JudgeResult("unsure", "", f"the judge's verdict did not validate after 2 attempts ({problem})", 2)

    def close(self) -> None:
        self.client.close()


def judge_records(judge: Judge, task: TaskConfig, samples: list[Sample], entries: list[dict],
                  records: list[SampleRecord], labels: list[str], out_dir: Path,
                  concurrency: int = 1) -> JudgeInfo:
    """Fill each record's judge fields (cached verdicts reused) and return the run's judge summary."""
    cache = SampleCache(Path(out_dir) / "judge_cache.jsonl")
    todo: dict[str, JudgeInput] = {}
    verdicts: dict[str, dict] = {}
    pending: list[tuple[SampleRecord, str]] = []
    for sample, entry, rec in zip(samples, entries, records, strict=True):
        ok = rec.status == "ok"  # the record's status: an output that could not be scored is a failure here too
        inp = judge_input(task, sample, entry.get("output") if ok else None, labels)
        if inp is None:
            continue
        if not ok:
            rec.judge_correct = False  # a failed sample is wrong, as in accuracy; nothing to ask the judge
            continue
        key = judge.key(inp)
        pending.append((rec, key))
        if (hit := cache.get(key)) is not None:
            verdicts[key] = hit
        else:
            todo.setdefault(key, inp)

    def ask(key: str) -> dict:
        res = judge.judge(todo[key])
        entry = {"key": key, "verdict": res.verdict, "rationale": res.rationale, "error": res.error,
                 "attempts": res.attempts, "judge_model": judge.model, "prompt_version": judge.prompt_version}
        cache.put(entry)
        return entry

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for key, entry in zip(todo, pool.map(ask, todo), strict=True):
            verdicts[key] = entry
    for rec, key in pending:
        v = verdicts[key]
        rec.judge_verdict, rec.judge_rationale, rec.judge_error = v["verdict"], v["rationale"] or None, v["error"]
        rec.judge_correct = v["verdict"] == "correct"
    judged = [r for r, _ in pending]
    return JudgeInfo(url=judge.base_url, model=judge.model, prompt_version=judge.prompt_version,
                     n_judged=len(judged), n_called=len(todo), n_cached=sum(k not in todo for _, k in pending),
                     n_unsure=sum(r.judge_verdict == "unsure" for r in judged),
                     n_errors=sum(r.judge_error is not None for r in judged))
