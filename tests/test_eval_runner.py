"""The runner with a fake pipeline (fast): every output file, per-group metrics with CIs, errors recorded, resume
after a kill, VQA scoring, compare, and CLI errors without tracebacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from eval_fakes import FakePipeline
from typer.testing import CliRunner

from eval.cli import app
from eval.compare import compare, load_run
from eval.results import EvalResults
from eval.runner import EvalSettings, run_eval
from eval.synthetic import make_synthetic
from eval.task import load_task

DATA = Path(__file__).parent / "data" / "eval"
TRUE_ID = {"akiec": "actinic_keratosis", "bcc": "basal_cell_carcinoma", "bkl": "seborrheic_keratosis",
           "df": "dermatofibroma", "mel": "melanoma", "nv": "melanocytic_nevus", "vasc": "cherry_angioma"}
OUTPUTS = ["results.json", "summary.md", "MODEL_CARD.md", "confusion_matrix.png", "reliability_diagram.png",
           "skin_tone_fitzpatrick.png", "skin_tone_fst_group.png", "skin_tone_fitzpatrick_estimated.png"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    csv_path = make_synthetic(root, n=14, seed=0)
    return csv_path, list(csv.DictReader(csv_path.open()))


def settings(task, out, data, **kw):
    kw.setdefault("images_root", data.parent / "images" if data.name == "metadata.csv" else None)
    return EvalSettings(task=task, out_dir=out, model="fake-model", backend="fake", data=data, progress=False, **kw)


def test_full_run_writes_every_output(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 200})
    answers = {r["image_id"]: TRUE_ID[r["dx"]] for r in rows[:8]}  # umbrella children count (SK for bkl)
    fails = {rows[9]["image_id"]}
    res = run_eval(settings(task, tmp_path, csv_path, concurrency=2), FakePipeline(answers, fails))
    for name in OUTPUTS:
        assert (tmp_path / name).is_file(), name
    again = EvalResults.read(tmp_path / "results.json")
    assert again.run.n_samples == 14 and again.run.n_errors == 1 and again.run.prompt_version == "fake-1"
    acc = again.metrics["accuracy"]
    assert acc.n == 14 and acc.ci_low is not None and acc.ci_low <= acc.value <= acc.ci_high
    assert again.metrics["schema_validity"].value == pytest.approx(13 / 14)
    err = next(r for r in again.records if r.status == "error")
    assert err.error_kind == "invalid_model_output" and err.correct is False
    fitz = [g for g in again.groups if g.scale == "fitzpatrick"]
    assert [g.group for g in fitz] == ["I", "II", "III", "IV", "V", "VI"]
    assert all(g.metrics["accuracy"].ci_low is not None for g in fitz if g.n)
    assert any(f.scale == "fitzpatrick" and f.metric == "accuracy" and f.gap is not None for f in again.fairness)
    est = [g for g in again.groups if g.scale == "fitzpatrick_estimated"]
    assert est and all(g.estimated for g in est)
    assert again.baselines["majority"]["accuracy"] is not None and again.confusion
    summary = (tmp_path / "summary.md").read_text()
    assert "## Per skin-tone group" in summary and "ESTIMATED" in summary
    card = (tmp_path / "MODEL_CARD.md").read_text()
    for section in ("## Intended use", "## Out-of-scope use", "## Metrics", "## Evaluation data",
                    "per skin-tone group", "## Caveats and recommendations"):
        assert section in card
    assert res.metrics["accuracy"].value == again.metrics["accuracy"].value


def test_resume_does_not_recompute_and_survives_a_cut_line(synth, tmp_path):
    csv_path, _ = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    first = FakePipeline()
    r1 = run_eval(settings(task, tmp_path, csv_path, limit=5), first)
    assert first.calls == 5 and r1.run.n_computed == 5
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 5
    # simulate a kill mid-write: the last line is cut short
    (tmp_path / "cache.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    second = FakePipeline()
    r2 = run_eval(settings(task, tmp_path, csv_path), second)
    assert second.calls == 10 and r2.run.n_cached == 4 and r2.run.n_computed == 10
    assert sum(r.cached for r in r2.records) == 4
    third = FakePipeline()
    r3 = run_eval(settings(task, tmp_path, csv_path), third)
    assert third.calls == 0 and r3.run.n_cached == 14
    good = [json.loads(x) for x in (tmp_path / "cache.jsonl").read_text().splitlines() if x.startswith('{"')
            and x.endswith("}")]
    assert len({g["sample_id"] for g in good}) == 14


def test_cache_key_includes_prompt_version_and_model(synth, tmp_path):
    csv_path, _ = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    run_eval(settings(task, tmp_path, csv_path, limit=3), FakePipeline())
    other = FakePipeline()
    other.prompt_version = "fake-2"
    run_eval(settings(task, tmp_path, csv_path, limit=3), other)
    assert other.calls == 3


def test_closed_vqa_from_manifest(tmp_path):
    task_file = tmp_path / "t.yaml"
    task_file.write_text("name: mc\nversion: '1'\ntype: closed_vqa\nprompt: \"{question}\\n{choices}\"\n"
                         "dataset: {adapter: csv_manifest}\nmetrics: [accuracy, unparsed_rate]\nbootstrap: 50\n")
    pipe = FakePipeline({"a": "The answer is B", "b": "No doubt about it"})
    res = run_eval(settings(load_task(task_file), tmp_path / "out", DATA / "manifest/manifest.csv"), pipe)
    recs = {r.id: r for r in res.records}
    assert recs["q1"].extracted == "Melanocytic nevus" and recs["q1"].correct
    assert recs["q2"].extracted is None and recs["q2"].correct is False  # no random fallback
    assert res.metrics["accuracy"].value == 0.5 and res.metrics["unparsed_rate"].value == 0.5
    assert res.baselines["chance"]["accuracy"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert {g.scale for g in res.groups} == {"fitzpatrick", "fst_group", "monk"}


def test_open_vqa_mediqa_delta_bleu_and_transient_errors_retried(tmp_path):
    task = load_task("mediqa_m3g").model_copy(update={"bootstrap": 50})
    pipe = FakePipeline({"IMG_ENC00001_00001": "This looks like psoriasis. Use a topical steroid."},
                        fail={"IMG_ENC00002_00001"})
    res = run_eval(settings(task, tmp_path, DATA / "mediqa_m3g/valid.json",
                            images_root=DATA / "mediqa_m3g/images_valid"), pipe)
    assert res.records[0].scores["token_f1"] == 1.0
    assert 0 < res.metrics["delta_bleu"].value < 1 and res.metrics["bleu_4"].value is not None
    assert res.errors_by_kind == {"internal": 1}
    again = FakePipeline({}, fail=set())
    run_eval(settings(task, tmp_path, DATA / "mediqa_m3g/valid.json",
                      images_root=DATA / "mediqa_m3g/images_valid"), again)
    assert again.calls == 1  # the internal error was not cached: retried


def test_compare_runs(synth, tmp_path):
    csv_path, rows = synth
    task = load_task("synthetic_ham").model_copy(update={"bootstrap": 0})
    run_eval(settings(task, tmp_path / "a", csv_path), FakePipeline())
    run_eval(settings(task, tmp_path / "b", csv_path), FakePipeline({r["image_id"]: TRUE_ID[r["dx"]] for r in rows}))
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    cmp = compare(a, b, n_boot=200)
    acc = next(r for r in cmp["rows"] if r["metric"] == "accuracy")
    assert acc["b"] == 1.0 and acc["delta"] > 0 and acc["ci_low"] <= acc["delta"] <= acc["ci_high"]
    out = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--bootstrap", "100"])
    assert out.exit_code == 0 and "accuracy" in out.output and "paired samples: 14" in out.output


def _cli(args):
    return CliRunner().invoke(app, args)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text("lesion_id,image_id,dx_type,age,sex,localization\n")
    cases = [
        (["--task", "synthetic_ham", "--model", "x", "--data", str(bad)], "missing column 'dx'"),
        (["--task", "nope", "--model", "x"], "unknown task"),
        (["--task", "synthetic_ham"], "missing --model"),
        (["--model", "x"], "missing --task"),
        (["--task", "synthetic_ham", "--model", "x", "--data", str(tmp_path / "none.csv")], "not found"),
        (["compare", str(tmp_path), str(tmp_path)], "no results.json"),
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
