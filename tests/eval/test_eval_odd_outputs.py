"""A replay corpus of odd outputs scores without a traceback, through the real CLI and the real runner.

Non-canonical and unknown condition ids, empty and non-string ids, reports that do not validate, error lines,
missing lines, a text answer where a report is needed, an earlier run's cache line, and a hand-edited cache line
whose output cannot be read: every sample gets a record, the run finishes and writes every output file.
"""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from eval.cache import cache_key
from eval.cli import app
from eval.replay import ReplayPipeline
from eval.results import EvalResults
from eval.runner import EvalSettings, run_eval
from eval.task import load_task
from support.evalkit import manifest, report, task_file, write_jsonl

LABELS = ["melanoma", "melanocytic_nevus", "basal_cell_carcinoma"]
METRICS = ["accuracy", "balanced_accuracy", "macro_f1", "top3_accuracy", "auroc_malignant", "ece",
           "schema_validity", "citation_validity", "abstention_rate", "triage_agreement"]


def _odd(r: dict, **changes) -> dict:
    out = copy.deepcopy(r)
    for path, value in changes.items():
        node = out
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return out


def corpus() -> list[tuple[str, str, dict | None]]:
    """(sample id, label, replay line or None for a missing line)."""
    mel = report([("melanoma", 0.6), ("melanocytic_nevus", 0.3)], urgency="urgent")
    lines = [
        ("in_situ", "melanoma", {"report": _odd(mel, diagnosis__condition_id="melanoma_in_situ",
                                                differential__0__condition_id="melanoma_in_situ")}),
        ("capitalised", "melanoma", {"report": _odd(mel, diagnosis__condition_id="Melanoma")}),
        ("unknown_id", "melanocytic_nevus", {"report": _odd(mel, diagnosis__condition_id="zebra_dermatosis",
                                                            diagnosis__condition="zebra stripes")}),
        ("text_only", "melanocytic_nevus", {"report": _odd(mel, diagnosis__condition_id=None,
                                                           diagnosis__condition="nevus")}),
        ("empty_id", "basal_cell_carcinoma", {"report": _odd(mel, diagnosis__condition_id="",
                                                             diagnosis__condition="???")}),
        ("odd_differential", "basal_cell_carcinoma", {"report": _odd(
            mel, differential__0__condition_id="basal-cell-carcinoma", differential__1__condition_id="no_such_id")}),
        ("likelihood_too_big", "melanoma", {"report": _odd(mel, differential__0__likelihood=1.5)}),
        ("no_triage", "melanoma", {"report": _odd(mel, triage=...)}),
        ("numeric_id", "melanoma", {"report": _odd(mel, diagnosis__condition_id=123)}),
        ("error_line", "melanoma", {"error": "worker crashed", "error_kind": "backend_unavailable"}),
        ("error_no_kind", "melanocytic_nevus", {"error": "timed out"}),
        ("text_answer", "melanoma", {"answer": "probably a melanoma"}),
        ("cache_line", "melanoma", {"status": "ok", "output": mel}),
        ("missing", "melanocytic_nevus", None),
        ("hand_edited", "melanoma", None),  # its cached output is garbage (written below)
    ]
    return [(sid, label, None if line is None else {"sample_id": sid, **line}) for sid, label, line in lines]


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("odd")
    rows = corpus()
    data = manifest(tmp / "data", [{"id": sid, "label": label, "fitzpatrick": "III"} for sid, label, _ in rows])
    replay = write_jsonl(tmp / "odd.jsonl", [line for _, _, line in rows if line is not None])
    task = load_task(task_file(tmp, labels=LABELS, metrics=METRICS, bootstrap=20))
    pipeline = ReplayPipeline(replay)
    out = tmp / "out"
    out.mkdir()
    key = cache_key(f"{task.name}@{task.version}", "hand_edited", "m", None, pipeline.prompt_version)
    garbage = {"key": key, "sample_id": "hand_edited", "status": "ok", "output": {"diagnosis": "oops"}}
    (out / "cache.jsonl").write_text(json.dumps(garbage) + "\n")
    settings = EvalSettings(task=task, out_dir=out, model="m", backend="replay", data=data, progress=False)
    return tmp, task, replay, data, run_eval(settings, pipeline)


def test_every_odd_output_becomes_a_record_and_the_run_finishes(odd_run):
    _tmp, _task, _replay, _data, res = odd_run
    recs = {r.id: r for r in res.records}
    assert len(recs) == len(corpus())
    assert recs["in_situ"].pred_id == "melanoma" and recs["in_situ"].correct is True
    assert recs["capitalised"].pred_id == "melanoma" and recs["capitalised"].correct is True
    assert recs["unknown_id"].pred_id is None and recs["unknown_id"].correct is False
    assert recs["text_only"].pred_id == "melanocytic_nevus" and recs["text_only"].correct is True
    assert recs["empty_id"].pred_id is None and recs["empty_id"].correct is False
    # an unknown id falls back to the item's condition text ("melanocytic nevus")
    assert recs["odd_differential"].differential_ids == ["basal_cell_carcinoma", "melanocytic_nevus"]
    assert recs["odd_differential"].top3_correct is True
    for sid in ("likelihood_too_big", "no_triage", "numeric_id", "text_answer", "hand_edited"):
        assert recs[sid].status == "error" and recs[sid].error_kind == "invalid_model_output", sid
        assert recs[sid].correct is False and recs[sid].schema_valid is False, sid
    assert "could not be scored" in recs["hand_edited"].error
    assert recs["missing"].error_kind == "missing_output"
    assert recs["error_line"].error_kind == "backend_unavailable"
    assert recs["error_no_kind"].error_kind == "replayed_error"
    assert recs["cache_line"].status == "ok" and recs["cache_line"].correct is True
    assert res.noncanonical_ids["melanoma_in_situ -> melanoma"] == 1
    assert res.noncanonical_ids["zebra_dermatosis -> unmapped"] == 1
    assert res.noncanonical_ids["basal-cell-carcinoma -> basal_cell_carcinoma"] == 1
    assert res.noncanonical_ids["no_such_id -> melanocytic_nevus"] == 1
    assert res.run.n_errors == 8 and res.metrics["accuracy"].n == len(corpus())
    assert res.metrics["accuracy"].value == pytest.approx(4 / 15)  # in_situ, capitalised, text_only, cache_line
    assert res.metrics["ece"].n_excluded == 8 and res.metrics["auroc_malignant"].n_excluded == 8
    summary = (odd_run[0] / "out" / "summary.md").read_text()
    assert "## Non-canonical condition ids in the outputs" in summary and "melanoma_in_situ -> melanoma" in summary
    assert "## Metric definitions" in summary and "excluded" in summary


def test_the_cli_scores_the_odd_corpus_without_a_traceback(odd_run, tmp_path):
    _tmp, _task, replay, data, _res = odd_run
    task = task_file(tmp_path, labels=LABELS, metrics=METRICS, bootstrap=20)
    res = CliRunner().invoke(app, ["--task", str(task), "--replay", str(replay), "--data", str(data), "--out",
                                   str(tmp_path / "out"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "15 samples" in res.output and "failed samples excluded" in res.output
    again = EvalResults.read(tmp_path / "out" / "results.json")
    assert again.errors_by_kind == {"invalid_model_output": 4, "missing_output": 2, "backend_unavailable": 1,
                                    "replayed_error": 1}  # the hand-edited cache line is not in this run's cache
