"""What people read: the confusion-matrix figure stays readable with many long labels, group tables and skin-tone
plots give each metric's own n, and label coverage is a headline, never silent. Real runs (manifest + replay)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from assistant.core.ontology import default_ontology
from eval.plots import confusion_figure
from eval.replay import ReplayPipeline
from eval.runner import EvalSettings, run_eval
from eval.task import load_task
from support.evalkit import manifest, report, task_file, write_jsonl


def _run(tmp, rows, lines, **task):
    settings = EvalSettings(task=load_task(task_file(tmp, **task)), out_dir=tmp / "out", model="m",
                            backend="replay", data=manifest(tmp / "data", rows), progress=False)
    return run_eval(settings, ReplayPipeline(write_jsonl(tmp / "replay.jsonl", lines)))


@pytest.fixture(scope="module")
def every_condition(tmp_path_factory):
    """One sample per label for the 60 longest ontology ids (names up to 43 characters; more than 40 labels takes
    the figure's dense layout), predictions shifted by one. 60, not all ids, keeps the test lean."""
    ids = sorted(default_ontology().ids, key=lambda c: (-len(c), c))[:60]
    rows = [{"id": f"s{i}", "label": cid} for i, cid in enumerate(ids)]
    lines = [{"sample_id": f"s{i}", "report": report([(ids[(i + 1) % len(ids)], 0.8)])} for i in range(len(ids))]
    return _run(tmp_path_factory.mktemp("every"), rows, lines, metrics=["accuracy"])


def _outside(fig, artist, renderer) -> bool:
    box = artist.get_window_extent(renderer)
    w, h = fig.bbox.width, fig.bbox.height
    return box.x0 < -1 or box.y0 < -1 or box.x1 > w + 1 or box.y1 > h + 1


def test_confusion_figure_grows_with_labels_and_cuts_nothing_off(every_condition, tmp_path):
    small = _run(tmp_path, [{"id": "a", "label": "melanoma"}, {"id": "b", "label": "psoriasis"}],
                 [{"sample_id": "a", "report": report([("melanoma", 0.9)])}], metrics=["accuracy"])
    big_fig, small_fig = confusion_figure(every_condition), confusion_figure(small)
    assert big_fig.get_figwidth() > 3 * small_fig.get_figwidth()
    for fig, res in ((big_fig, every_condition), (small_fig, small)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.xaxis.label, ax.yaxis.label]
        assert not [t.get_text() for t in texts if _outside(fig, t, renderer)]
        cell_px = ax.get_window_extent(renderer).width / len(res.confusion_columns)
        assert cell_px >= 12  # cells do not shrink to nothing as labels are added
    png = Image.open(tmp_path / "out" / "confusion_matrix.png")
    assert png.size[0] > 200
    assert every_condition.confusion_columns[-3:] == ["other", "unmapped", "failed"]


def test_group_n_is_what_each_metric_used_and_label_counts_are_a_headline(tmp_path):
    rows = [{"id": "a", "label": "melanoma", "fitzpatrick": "II"},
            {"id": "b", "label": "psoriasis", "fitzpatrick": "II"},
            {"id": "c", "label": "not a condition at all", "fitzpatrick": "II"},
            {"id": "d", "label": "acne", "fitzpatrick": "II"},
            {"id": "e", "label": "melanoma", "fitzpatrick": "V"}]
    lines = [{"sample_id": r["id"], "report": report([("melanoma", 0.9)])} for r in rows]
    res = _run(tmp_path, rows, lines, labels=["melanoma", "psoriasis"], metrics=["accuracy", "macro_f1"])
    group = next(g for g in res.groups if g.scale == "fitzpatrick" and g.group == "II")
    assert group.n == 4 and group.metrics["accuracy"].n == 2  # c does not map, d is outside the label set
    assert (res.run.n_labelled, res.run.n_label_unmapped, res.run.n_label_outside) == (3, 1, 1)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "labels: 3 of 5 samples scored; NOT SCORED: 1 label(s) that map to no condition, 1 outside" in summary
    assert "| II | 4 | 0.500 (n=2) | " in summary
    assert "`not a condition at all`: 1" in summary and "`acne`: 1" in summary
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert "labels: 3 of 5 samples scored" in card
    assert np.isclose(res.metrics["accuracy"].value, 2 / 3)
