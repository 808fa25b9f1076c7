"""The optional LLM judge.

Fast: what the judge sees (only the final diagnosis, never the differential), verdict parsing and its schema, the
judge metric on hand-made records, and a judge that is down. Slow: a real OpenAI-compatible server
(``python -m vllm.entrypoints.openai.api_server`` serving the tiny random model) judging replayed reports. The
tiny model is random, so those tests assert structure (a valid verdict for every sample from the strict schema,
the metric with CIs, caching, the retry path), never which verdict.
"""

from __future__ import annotations

import copy
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.core.errors import BackendError
from eval.cli import app
from eval.datasets import Sample
from eval.datasets.base import Reference
from eval.judge import Judge, JudgeInput, judge_input, judge_messages, parse_verdict, verdict_schema
from eval.replay import ReplayPipeline
from eval.results import EvalResults, SampleRecord
from eval.runner import EvalSettings, run_eval
from eval.scoring import aggregate
from eval.synthetic import make_synthetic
from eval.task import load_task
from support.net import free_port
from support.paths import EVAL_DATA

DATA = EVAL_DATA
TEMPLATE = json.loads((DATA / "replay" / "report.json").read_text())
VERDICTS = {"correct", "incorrect", "unsure"}


def report_dict(diagnosis: str, differential: list[str]) -> dict:
    r = copy.deepcopy(TEMPLATE)
    r["diagnosis"].update(condition=diagnosis, condition_id=None)
    item = r["differential"][0]
    r["differential"] = [dict(item, condition=c, condition_id=None, rationale=f"because of {c} features")
                         for c in differential]
    return r


# ---------------------------------------------------------------- fast: what the judge sees


def test_only_the_final_diagnosis_reaches_the_judge():
    task = load_task("synthetic_ham")
    sample = Sample(id="s1", images=[], label="mel", label_id="melanoma")
    # the right answer is only in the differential: the judge must not see it
    output = report_dict("melanocytic nevus", ["melanocytic nevus", "melanoma in situ", "dermatofibroma"])
    inp = judge_input(task, sample, output, task.labels)
    assert inp == JudgeInput("diagnosis", ("Melanoma",), "melanocytic nevus")
    text = "\n".join(m["content"] for m in judge_messages(inp))
    assert "Model's final diagnosis: melanocytic nevus" in text and "- Melanoma" in text
    for hidden in ("melanoma in situ", "dermatofibroma", "because of", output["findings"]["summary"]):
        assert hidden not in text
    assert "Nothing else the model said counts" in text


def test_judge_input_needs_a_reference_and_failed_samples_still_get_one():
    task = load_task("synthetic_ham")
    no_label = Sample(id="s", images=[], label="weird", label_id=None)
    assert judge_input(task, no_label, report_dict("nevus", ["nevus"]), task.labels) is None
    outside = Sample(id="s", images=[], label="psoriasis", label_id="psoriasis")
    assert judge_input(task, outside, report_dict("nevus", ["nevus"]), task.labels) is None
    failed = judge_input(task, Sample(id="s", images=[], label="bkl", label_id="benign_keratosis"), None,
                         task.labels)
    assert failed is not None and failed.candidate == ""


def test_vqa_judge_inputs():
    closed = load_task("mmskin_vqa_yesno").model_copy(update={"type": "closed_vqa"})
    mc = Sample(id="q", images=[], question="Which fits?", choices=["Melanoma", "Nevus"], answer="b")
    inp = judge_input(closed, mc, {"text": "I think B"}, [])
    assert inp.references == ("B. Nevus",) and inp.question == "Which fits?\nA. Melanoma\nB. Nevus"
    assert inp.candidate == "I think B" and inp.kind == "answer"
    opened = load_task("mediqa_m3g")
    refs = [Reference(f"ref {i}", weight=w) for i, w in enumerate([0.6, 1.0, 0.8, 0.7, 0.9, 0.6])]
    inp = judge_input(opened, Sample(id="e", images=[], question="What is it?", references=refs),
                      {"text": "psoriasis"}, [])
    assert inp.references == ("ref 1", "ref 4", "ref 2", "ref 3", "ref 0")  # weightiest first, at most 5
    assert "Reference answers (agreeing with any one counts):" in judge_messages(inp)[1]["content"]


# ---------------------------------------------------------------- fast: verdicts


def test_parse_verdict_is_strict():
    assert parse_verdict('{"verdict": "correct", "rationale": "same condition"}').verdict == "correct"
    bad = ['{"verdict": "right", "rationale": "x"}', '{"verdict": "correct"}', "correct",
           '{"verdict": "correct", "rationale": "x", "score": 1}', '{"verdict": "unsure", "rationale": "a\\u0007"}',
           '{"verdict": "correct", "rationale": "' + "x" * 201 + '"}']
    for text in bad:
        with pytest.raises(ValueError):
            parse_verdict(text)
    with pytest.raises(ValueError, match="cut off"):
        parse_verdict('{"verdict": "correct", "rationale": "fine"}', finish_reason="length")


def test_verdict_schema_is_strict_and_bounded():
    schema = verdict_schema()
    assert schema["properties"]["verdict"]["enum"] == ["correct", "incorrect", "unsure"]
    rationale = schema["properties"]["rationale"]
    assert "pattern" in rationale and "maxLength" not in rationale  # the pattern carries the bound
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"verdict", "rationale"}


def test_judge_metrics_on_hand_made_records():
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 200})
    labels = task.labels

    def rec(i, fitz, correct, verdict):
        return SampleRecord(id=str(i), status="ok", label_id="melanoma", fitzpatrick=fitz, correct=False,
                            judge_correct=correct, judge_verdict=verdict)

    records = [rec(0, "I", True, "correct"), rec(1, "I", False, "incorrect"), rec(2, "II", False, "unsure"),
               rec(3, "II", True, "correct"), rec(4, "II", False, None), rec(5, "III", None, None)]
    out = aggregate(task, records, labels)
    acc = out["metrics"]["judge_accuracy"]
    assert acc.value == pytest.approx(2 / 5) and acc.n == 5 and acc.ci_low is not None
    assert out["metrics"]["judge_unsure_rate"].value == pytest.approx(1 / 4)
    by_group = {(g.scale, g.group): g.metrics["judge_accuracy"] for g in out["groups"]}
    assert by_group[("fitzpatrick", "I")].value == 0.5
    assert by_group[("fitzpatrick", "II")].value == pytest.approx(1 / 3)
    assert by_group[("fitzpatrick", "III")].value is None and by_group[("fitzpatrick", "VI")].n == 0
    assert any(f.metric == "judge_accuracy" and f.scale == "fitzpatrick" for f in out["fairness"])
    without = aggregate(task, [r.model_copy(update={"judge_correct": None, "judge_verdict": None})
                               for r in records], labels)
    assert "judge_accuracy" not in without["metrics"] and np.isfinite(without["metrics"]["accuracy"].value)


def test_judge_down_is_a_clear_error_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    judge = Judge(url, "m", timeout_s=5)
    with pytest.raises(BackendError, match=f"cannot reach the judge at {url}"):
        judge.check()
    judge.close()
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"sample_id": "q1", "answer": "B"}) + "\n")
    task = tmp_path / "t.yaml"
    task.write_text("name: mc\nversion: '1'\ntype: closed_vqa\nprompt: '{question}'\n"
                    "dataset: {adapter: csv_manifest}\nmetrics: [accuracy]\n")
    res = CliRunner().invoke(app, ["--task", str(task), "--replay", str(replay), "--data",
                                   str(DATA / "manifest/manifest.csv"), "--judge-url", url, "--judge-model", "m"])
    assert res.exit_code == 1 and f"error: cannot reach the judge at {url}" in res.output
    assert "Traceback" not in res.output


# ---------------------------------------------------------------- slow: a real OpenAI-compatible judge server


@pytest.fixture(scope="module")
def judge_server(tiny_vllm_server):
    """The session's real vLLM OpenAI server on the tiny model; yields (base URL, served model name)."""
    return f"{tiny_vllm_server.base}/v1", "tiny"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    csv_path = make_synthetic(root, n=8, seed=3)
    rows = list(csv.DictReader(csv_path.open()))
    lines = [{"sample_id": r["image_id"], "report": report_dict(c, [c, "melanoma"])}
             for r, c in zip(rows, ["melanocytic nevus", "melanoma", "dermatofibroma", "basal cell carcinoma",
                                    "seborrheic keratosis", "cherry angioma", "actinic keratosis"], strict=False)]
    lines.append({"sample_id": rows[7]["image_id"], "error": "the batch job failed here"})
    replay = root / "replay.jsonl"
    replay.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return csv_path, rows, replay


@pytest.mark.slow
def test_judge_on_a_real_server_gives_every_sample_a_valid_verdict(judge_server, synth, tmp_path):
    url, model = judge_server
    csv_path, _, replay = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 100})
    settings = EvalSettings(task=task, out_dir=tmp_path, model="batch", backend="replay", data=csv_path,
                            images_root=csv_path.parent / "images", concurrency=2, progress=False)
    judge = Judge(url, model)
    judge.check()
    try:
        res = run_eval(settings, ReplayPipeline(replay), judge=judge)
        again = run_eval(settings, ReplayPipeline(replay), judge=judge)
    finally:
        judge.close()
    ok = [r for r in res.records if r.status == "ok"]
    assert len(ok) == 7
    for r in ok:  # the strict schema: every verdict parsed on the first try
        assert r.judge_verdict in VERDICTS and r.judge_error is None
        assert r.judge_correct == (r.judge_verdict == "correct")
    failed = next(r for r in res.records if r.status == "error")
    assert failed.judge_correct is False and failed.judge_verdict is None  # wrong without a judge call
    acc = res.metrics["judge_accuracy"]
    assert acc.n == 8 and acc.ci_low is not None and acc.ci_low <= acc.value <= acc.ci_high
    assert acc.value == pytest.approx(sum(r.judge_verdict == "correct" for r in ok) / 8)
    groups = [g for g in res.groups if g.scale == "fitzpatrick" and g.n]
    assert groups and all("judge_accuracy" in g.metrics for g in groups)
    info = res.run.judge
    assert info.url == url and info.model == model and info.n_judged == 7 and info.n_called == 7
    assert again.run.judge.n_called == 0 and again.run.judge.n_cached == 7
    assert [r.judge_verdict for r in again.records] == [r.judge_verdict for r in res.records]
    saved = EvalResults.read(tmp_path / "results.json")
    assert saved.run.judge.n_cached == 7 and "judge_accuracy" in saved.metrics
    assert "LLM judge" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_invalid_verdict_gets_one_retry_then_counts_unsure(judge_server):
    url, model = judge_server
    judge = Judge(url, model, max_tokens=3)  # the reply is always cut off: invalid twice
    try:
        res = judge.judge(JudgeInput("diagnosis", ("Melanoma",), "melanoma"))
    finally:
        judge.close()
    assert res.verdict == "unsure" and res.attempts == 2
    assert res.error == ("the judge's verdict did not validate after 2 attempts (the reply was cut off at the"
                         " token limit)")


@pytest.mark.slow
def test_cli_with_judge(judge_server, synth, tmp_path):
    url, model = judge_server
    csv_path, _, replay = synth
    res = CliRunner().invoke(app, ["--task", "synthetic_ham", "--replay", str(replay), "--data", str(csv_path),
                                   "--images-root", str(csv_path.parent / "images"), "--out", str(tmp_path),
                                   "--no-progress", "--judge-url", url, "--judge-model", model])
    assert res.exit_code == 0, res.output
    assert "judge_accuracy:" in res.output
    wrong = CliRunner().invoke(app, ["--task", "synthetic_ham", "--replay", str(replay), "--data", str(csv_path),
                                     "--images-root", str(csv_path.parent / "images"), "--out", str(tmp_path),
                                     "--judge-url", url, "--judge-model", "no-such-model"])
    assert wrong.exit_code == 1 and f"the judge at {url} does not serve model 'no-such-model'" in wrong.output
