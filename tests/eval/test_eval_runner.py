"""The runner on replayed outputs (fast, no model): every output file, per-group metrics with CIs, errors recorded
and the run going on, resume after a kill, VQA scoring, compare, and CLI errors without tracebacks.

Reports are built and validated with the real ``Report`` model and replayed by ``eval.replay.ReplayPipeline`` (the
``--replay`` feature); intake and backend failures come from the real ``ReportPipeline`` on a corrupt image and an
unreachable server.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.backends.base import BackendConfig
from assistant.backends.openai_backend import OpenAIBackend
from assistant.core.errors import ConfigError
from assistant.core.report import Report
from assistant.pipeline.pipeline import ReportPipeline
from eval.cli import app
from eval.compare import compare, load_run
from eval.replay import ReplayPipeline
from eval.results import EvalResults
from eval.runner import EvalSettings, run_eval
from eval.synthetic import make_synthetic
from eval.task import load_task
from support.images import lesion_image
from support.net import free_port
from support.paths import EVAL_DATA

DATA = EVAL_DATA
TEMPLATE = json.loads((DATA / "replay" / "report.json").read_text())
TRUE_ID = {"akiec": "actinic_keratosis", "bcc": "basal_cell_carcinoma", "bkl": "seborrheic_keratosis",
           "df": "dermatofibroma", "mel": "melanoma", "nv": "melanocytic_nevus", "vasc": "cherry_angioma"}
OUTPUTS = ["results.json", "summary.md", "MODEL_CARD.md", "confusion_matrix.png", "reliability_diagram.png",
           "skin_tone_fitzpatrick.png", "skin_tone_fst_group.png", "skin_tone_fitzpatrick_estimated.png"]


def report(condition_id: str | None = "melanocytic_nevus") -> dict:
    """A real report (validated by ``Report``) whose final diagnosis is ``condition_id``."""
    r = copy.deepcopy(TEMPLATE)
    name = condition_id.replace("_", " ") if condition_id else "uncertain"
    r["diagnosis"].update(condition=name, condition_id=condition_id)
    r["differential"][0].update(condition=name, condition_id=condition_id)
    r["triage"]["urgency"] = "urgent" if condition_id == "melanoma" else "routine"
    return Report.model_validate(r).model_dump(mode="json")


def write_replay(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def reports_for(rows: list[dict], answers: dict | None = None) -> list[dict]:
    """One replay line per synthetic sample: its answer, else melanocytic nevus."""
    answers = answers or {}
    return [{"sample_id": r["image_id"], "report": report(answers.get(r["image_id"], "melanocytic_nevus"))}
            for r in rows]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    csv_path = make_synthetic(root, n=14, seed=0)
    return csv_path, list(csv.DictReader(csv_path.open()))


def settings(task, out, data, **kw):
    kw.setdefault("images_root", data.parent / "images" if data.name == "metadata.csv" else None)
    kw.setdefault("model", "batch-model")
    kw.setdefault("backend", "replay")
    return EvalSettings(task=task, out_dir=out, data=data, progress=False, **kw)


def test_full_run_writes_every_output(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 200})
    lines = reports_for(rows, {r["image_id"]: TRUE_ID[r["dx"]] for r in rows[:8]})  # SK counts for bkl
    bad = copy.deepcopy(lines[9]["report"])
    bad["differential"][0]["likelihood"] = 1.5  # schema-invalid: recorded as that sample's error
    lines[9] = {"sample_id": rows[9]["image_id"], "report": bad}
    replay = write_replay(tmp_path / "replay.jsonl", lines)
    out = tmp_path / "out"
    res = run_eval(settings(task, out, csv_path, concurrency=2), ReplayPipeline(replay))
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    again = EvalResults.read(out / "results.json")
    assert again.run.n_samples == 14 and again.run.n_errors == 1
    assert again.run.backend == "replay" and again.run.prompt_version.startswith("replay-")
    assert again.run.replay_fingerprint == "sha256:" + hashlib.sha256(replay.read_bytes()).hexdigest()
    assert again.run.replay_file == str(replay)
    acc = again.metrics["accuracy"]
    assert acc.n == 14 and acc.ci_low is not None and acc.ci_low <= acc.value <= acc.ci_high
    right = 8 + sum(r["dx"] == "nv" for i, r in enumerate(rows[8:], start=8) if i != 9)  # the rest say nevus
    assert acc.value == pytest.approx(right / 14)
    assert again.metrics["schema_validity"].value == pytest.approx(13 / 14)
    err = next(r for r in again.records if r.status == "error")
    assert err.id == rows[9]["image_id"] and err.error_kind == "invalid_model_output" and err.correct is False
    assert "line 10" in err.error and "likelihood" in err.error
    fitz = [g for g in again.groups if g.scale == "fitzpatrick"]
    assert [g.group for g in fitz] == ["I", "II", "III", "IV", "V", "VI"]
    assert all(g.metrics["accuracy"].ci_low is not None for g in fitz if g.n)
    assert any(f.scale == "fitzpatrick" and f.metric == "accuracy" and f.gap is not None for f in again.fairness)
    est = [g for g in again.groups if g.scale == "fitzpatrick_estimated"]
    assert est and all(g.estimated for g in est)
    assert again.baselines["majority"]["accuracy"] is not None and again.confusion
    summary = (out / "summary.md").read_text()
    assert "## Per skin-tone group" in summary and "ESTIMATED" in summary and "replay" in summary
    card = (out / "MODEL_CARD.md").read_text()
    for section in ("## Intended use", "## Out-of-scope use", "## Metrics", "## Evaluation data",
                    "per skin-tone group", "## Caveats and recommendations"):
        assert section in card
    assert "meaningless" not in card  # the demo-model warning is only for the tiny model
    assert res.metrics["accuracy"].value == again.metrics["accuracy"].value


def test_missing_and_replayed_errors_are_recorded_and_the_run_goes_on(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    lines = reports_for(rows[:12])  # rows 12 and 13 are not in the file
    lines[3] = {"sample_id": rows[3]["image_id"], "error": "worker crashed", "error_kind": "invalid_image"}
    lines[4] = {"sample_id": rows[4]["image_id"], "error": "timeout"}
    lines[5] = {"sample_id": rows[5]["image_id"], "answer": "a nevus"}  # text where a report is needed
    res = run_eval(settings(task, tmp_path, csv_path), ReplayPipeline(write_replay(tmp_path / "r.jsonl", lines)))
    recs = {r.id: r for r in res.records}
    assert recs[rows[12]["image_id"]].error_kind == "missing_output"
    assert recs[rows[12]["image_id"]].error == f"no replayed output for sample {rows[12]['image_id']} in r.jsonl"
    assert recs[rows[3]["image_id"]].error_kind == "invalid_image"
    timed_out = recs[rows[4]["image_id"]]
    assert timed_out.error_kind == "replayed_error" and "timeout" in timed_out.error
    assert recs[rows[5]["image_id"]].error_kind == "invalid_model_output"
    assert "holds a text answer" in recs[rows[5]["image_id"]].error
    assert res.errors_by_kind == {"missing_output": 2, "invalid_image": 1, "replayed_error": 1,
                                  "invalid_model_output": 1}
    assert res.run.n_samples == 14 and sum(r.status == "ok" for r in res.records) == 9
    assert res.metrics["accuracy"].n == 14  # failures count wrong, never dropped


def test_replay_of_an_earlier_runs_cache_gives_the_same_scores(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    first = run_eval(settings(task, tmp_path / "a", csv_path),
                     ReplayPipeline(write_replay(tmp_path / "r.jsonl", reports_for(rows, {rows[0]["image_id"]:
                                                                                         "melanoma"}))))
    again = run_eval(settings(task, tmp_path / "b", csv_path), ReplayPipeline(tmp_path / "a" / "cache.jsonl"))
    assert again.run.n_computed == 14 and again.run.n_errors == 0
    assert {k: m.value for k, m in again.metrics.items()} == {k: m.value for k, m in first.metrics.items()}
    assert [r.prediction for r in again.records] == [r.prediction for r in first.records]


@pytest.mark.parametrize(("content", "message"), [
    ('{"sample_id": "a", "answer": "x"}\nnot json\n', "line 2 is not JSON"),
    ('{"answer": "x"}\n', "line 1 has no sample_id"),
    ('{"sample_id": "a", "answer": "x", "error": "e"}\n', "line 1 needs exactly one of report, answer, error"),
    ('{"sample_id": "a", "answer": "x"}\n\n{"sample_id": "a", "answer": "y"}\n', "line 3 repeats sample 'a'"),
    ("\n", "has no records"),
])
def test_unreadable_replay_files_are_config_errors(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        ReplayPipeline(path)


def test_resume_does_not_recompute_and_survives_a_cut_line(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    replay = write_replay(tmp_path / "replay.jsonl", reports_for(rows))
    out = tmp_path / "out"
    r1 = run_eval(settings(task, out, csv_path, limit=5), ReplayPipeline(replay))
    assert r1.run.n_computed == 5
    lines = (out / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 5
    # simulate a kill mid-write: the last line is cut short
    (out / "cache.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    r2 = run_eval(settings(task, out, csv_path), ReplayPipeline(replay))
    assert r2.run.n_cached == 4 and r2.run.n_computed == 10
    assert sum(r.cached for r in r2.records) == 4
    r3 = run_eval(settings(task, out, csv_path), ReplayPipeline(replay))
    assert r3.run.n_computed == 0 and r3.run.n_cached == 14
    good = [json.loads(x) for x in (out / "cache.jsonl").read_text().splitlines() if x.startswith('{"')
            and x.endswith("}")]
    assert len({g["sample_id"] for g in good}) == 14


def test_cache_key_includes_prompt_version_and_model(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    a = write_replay(tmp_path / "a.jsonl", reports_for(rows))
    b = write_replay(tmp_path / "b.jsonl", reports_for(rows, {rows[0]["image_id"]: "melanoma"}))
    out = tmp_path / "out"
    assert run_eval(settings(task, out, csv_path, limit=3), ReplayPipeline(a)).run.n_computed == 3
    assert ReplayPipeline(a).prompt_version != ReplayPipeline(b).prompt_version
    assert run_eval(settings(task, out, csv_path, limit=3), ReplayPipeline(b)).run.n_computed == 3  # new file
    assert run_eval(settings(task, out, csv_path, limit=3, model="other"), ReplayPipeline(a)).run.n_computed == 3
    assert run_eval(settings(task, out, csv_path, limit=3), ReplayPipeline(a)).run.n_computed == 0


def test_closed_vqa_from_manifest(tmp_path):
    task_file = tmp_path / "t.yaml"
    task_file.write_text("name: mc\nversion: '1'\ntype: closed_vqa\nprompt: \"{question}\\n{choices}\"\n"
                         "dataset: {adapter: csv_manifest}\nmetrics: [accuracy, unparsed_rate]\nbootstrap: 50\n")
    replay = write_replay(tmp_path / "r.jsonl", [{"sample_id": "q1", "answer": "The answer is B"},
                                                  {"sample_id": "q2", "answer": "No doubt about it"}])
    res = run_eval(settings(load_task(task_file), tmp_path / "out", DATA / "manifest/manifest.csv"),
                   ReplayPipeline(replay))
    recs = {r.id: r for r in res.records}
    assert recs["q1"].extracted == "Melanocytic nevus" and recs["q1"].correct
    assert recs["q2"].extracted is None and recs["q2"].correct is False  # no random fallback
    assert res.metrics["accuracy"].value == 0.5 and res.metrics["unparsed_rate"].value == 0.5
    assert res.baselines["chance"]["accuracy"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert {g.scale for g in res.groups} == {"fitzpatrick", "fst_group", "monk"}


def test_open_vqa_mediqa_delta_bleu(tmp_path):
    task = load_task("mediqa_m3g").model_copy(update={"bootstrap": 50})
    replay = write_replay(tmp_path / "r.jsonl", [
        {"sample_id": "ENC00001", "answer": "This looks like psoriasis. Use a topical steroid."},
        {"sample_id": "ENC00002", "error": "the server timed out"}])
    res = run_eval(settings(task, tmp_path, DATA / "mediqa_m3g/valid.json",
                            images_root=DATA / "mediqa_m3g/images_valid"), ReplayPipeline(replay))
    assert res.records[0].scores["token_f1"] == 1.0
    assert 0 < res.metrics["delta_bleu"].value < 1 and res.metrics["bleu_4"].value is not None
    assert res.errors_by_kind == {"replayed_error": 1}


def test_real_pipeline_intake_errors_cached_backend_errors_retried(tmp_path):
    """The real pipeline: a corrupt image fails at intake (cached); an unreachable server is transient (not cached,
    retried on the next run)."""
    lesion_image().save(tmp_path / "good.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (tmp_path / "m.csv").write_text("id,image,question,answer\nok,good.jpg,Is it raised?,yes\n"
                                    "broken,bad.jpg,Is it raised?,no\n")
    task_file = tmp_path / "t.yaml"
    task_file.write_text("name: yn\nversion: '1'\ntype: closed_vqa\nprompt: '{question}'\n"
                         "dataset: {adapter: csv_manifest}\nmetrics: [accuracy]\nbootstrap: 0\n")
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there

    def run():
        pipeline = ReportPipeline(OpenAIBackend(BackendConfig(backend="openai", model="m", base_url=url,
                                                              timeout_s=5)))
        try:
            return run_eval(settings(load_task(task_file), tmp_path / "out", tmp_path / "m.csv", backend="openai",
                                     concurrency=2), pipeline)
        finally:
            pipeline.close()

    first = run()
    recs = {r.id: r for r in first.records}
    assert recs["broken"].error_kind == "invalid_image" and recs["ok"].error_kind == "backend_unavailable"
    assert url in recs["ok"].error and first.metrics["accuracy"].value == 0.0
    second = run()
    assert second.run.n_cached == 1 and second.run.n_computed == 1  # only the transient failure is retried


def test_compare_runs(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    run_eval(settings(task, tmp_path / "a", csv_path),
             ReplayPipeline(write_replay(tmp_path / "a.jsonl", reports_for(rows))))
    right = {r["image_id"]: TRUE_ID[r["dx"]] for r in rows}
    run_eval(settings(task, tmp_path / "b", csv_path),
             ReplayPipeline(write_replay(tmp_path / "b.jsonl", reports_for(rows, right))))
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    cmp = compare(a, b, n_boot=200)
    acc = next(r for r in cmp["rows"] if r["metric"] == "accuracy")
    assert acc["b"] == 1.0 and acc["delta"] > 0 and acc["ci_low"] <= acc["delta"] <= acc["ci_high"]
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--bootstrap", "100"])
    assert out.exit_code == 0 and "accuracy" in out.output and "paired samples: 14" in out.output


def _cli(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_replay(synth, tmp_path):
    csv_path, rows = synth
    replay = write_replay(tmp_path / "r.jsonl", reports_for(rows))
    res = _cli(["--task", "synthetic_ham", "--replay", replay, "--data", csv_path, "--images-root",
                csv_path.parent / "images", "--out", tmp_path / "out", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "14 samples (14 computed, 0 cached, 0 errors)" in res.output and "accuracy:" in res.output
    run = EvalResults.read(tmp_path / "out/results.json").run
    assert run.backend == "replay" and run.model == "batch-model"  # named by the replayed reports


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("lesion_id,image_id,dx_type,age,sex,localization\n")
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"sample_id": "a", "answer": "x"}\n{oops\n')
    cases = [
        (["--task", "synthetic_ham", "--model", "x", "--data", str(bad)], "missing column 'dx'"),
        (["--task", "nope", "--model", "x"], "unknown task"),
        (["--model", "x"], "missing --task"),
        (["--task", "synthetic_ham", "--model", "x", "--data", str(tmp_path / "none.csv")], "not found"),
        (["compare", str(tmp_path), str(tmp_path)], "no results.json"),
        (["--task", "synthetic_ham", "--replay", str(junk), "--backend", "vllm"], "do not apply"),
        (["--task", "synthetic_ham", "--replay", str(tmp_path / "none.jsonl"), "--data",
          str(DATA / "ham10000/HAM10000_metadata.csv"), "--images-root", str(DATA / "ham10000")],
         "replay file not found"),
        (["--task", "synthetic_ham", "--replay", str(junk), "--data", str(DATA / "ham10000/HAM10000_metadata.csv"),
          "--images-root", str(DATA / "ham10000")], "line 2 is not JSON"),
        (["--task", "synthetic_ham", "--replay", str(junk), "--judge-url", "http://127.0.0.1:9/v1"],
         "needs both --judge-url and --judge-model"),
    ]
    for args, message in cases:
        res = _cli(args)
        assert res.exit_code == 1, args
        assert message in res.output and "error: " in res.output and "Traceback" not in res.output


def test_cli_empty_dataset_is_an_error(tmp_path):
    empty = tmp_path / "meta.csv"
    empty.write_text("lesion_id,image_id,dx,dx_type,age,sex,localization\n")
    res = _cli(["--task", "synthetic_ham", "--model", "x", "--data", str(empty)])
    assert res.exit_code == 1 and "no usable samples" in res.output


def test_cli_make_synthetic(tmp_path):
    res = _cli(["make-synthetic", str(tmp_path / "s"), "--n", "3", "--seed", "1"])
    assert res.exit_code == 0 and (tmp_path / "s/metadata.csv").is_file()
    assert len(list((tmp_path / "s/images").glob("*.jpg"))) == 3
