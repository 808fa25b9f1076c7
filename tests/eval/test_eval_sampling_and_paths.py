"""--limit samples (seeded, stratified by label; first-N as an option), images next to --data, and the "no usable
samples" error naming where it looked — through the real CLI and runner."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from eval.cli import app
from eval.datasets import Sample
from eval.results import EvalResults
from eval.sampling import select_samples
from support.evalkit import report, write_jsonl
from support.paths import EVAL_DATA

HAM = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def ordered_by_diagnosis() -> list[Sample]:
    """Like HAM10000_metadata.csv: rows grouped by diagnosis, nv the largest class and last."""
    sizes = {"akiec": 30, "bcc": 50, "bkl": 110, "df": 12, "mel": 110, "nv": 670, "vasc": 14}
    return [Sample(id=f"{dx}{i}", images=[], label=dx, label_id=dx) for dx in HAM for i in range(sizes[dx])]


def test_stratified_limit_covers_every_class_in_proportion_and_is_seeded():
    samples = ordered_by_diagnosis()
    first = select_samples(samples, 30, "first")
    assert {s.label for s in first} == {"akiec"}  # what the old first-N did: no nv at all
    picked = select_samples(samples, 30, "stratified", seed=0)
    counts = Counter(s.label for s in picked)
    assert len(picked) == 30 and set(counts) == set(HAM)  # every class when N allows
    assert counts["nv"] == max(counts.values()) and counts["nv"] >= 15  # the rest in proportion
    assert [s.id for s in picked] == [s.id for s in select_samples(samples, 30, "stratified", seed=0)]
    assert [s.id for s in picked] != [s.id for s in select_samples(samples, 30, "stratified", seed=1)]
    order = [s.id for s in samples]
    assert [order.index(s.id) for s in picked] == sorted(order.index(s.id) for s in picked)  # dataset order kept
    assert len(select_samples(samples, 5, "stratified")) == 5  # fewer than the classes: the largest shares
    assert select_samples(samples, None) == samples and select_samples(samples, 10_000) == samples


def _ham_copy(tmp: Path) -> Path:
    """The HAM10000 fixture copied somewhere the task's default images root (data/ham10000) does not point to."""
    shutil.copytree(EVAL_DATA / "ham10000", tmp / "elsewhere")
    return tmp / "elsewhere" / "HAM10000_metadata.csv"


def _replay(tmp: Path) -> Path:
    ids = ["ISIC_0027419", "ISIC_0026769", "ISIC_0024698", "ISIC_0029176"]
    return write_jsonl(tmp / "r.jsonl", [{"sample_id": i, "report": report([("melanoma", 0.7)])} for i in ids])


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_images_are_found_next_to_data_and_limit_is_stratified_by_default(tmp_path):
    data = _ham_copy(tmp_path)
    res = _cli("--task", "ham10000", "--data", data, "--replay", _replay(tmp_path), "--out", tmp_path / "out",
               "--limit", 2, "--no-progress")
    assert res.exit_code == 0, res.output
    run = EvalResults.read(tmp_path / "out" / "results.json").run
    assert run.images_root == str(data.parent) and run.n_samples == 2 and run.sample == "stratified"
    assert "labels: " in res.output
    first = _cli("--task", "ham10000", "--data", data, "--replay", _replay(tmp_path), "--out", tmp_path / "first",
                 "--limit", 2, "--sample", "first", "--no-progress")
    assert first.exit_code == 0, first.output
    assert [r.id for r in EvalResults.read(tmp_path / "first" / "results.json").records] == ["ISIC_0027419",
                                                                                         "ISIC_0026769"]
    bad = _cli("--task", "ham10000", "--data", data, "--replay", _replay(tmp_path), "--sample", "random")
    assert bad.exit_code == 1 and "--sample must be 'stratified' or 'first'" in bad.output


def test_no_usable_samples_says_where_it_looked(tmp_path):
    (tmp_path / "meta").mkdir()
    data = tmp_path / "meta" / "HAM10000_metadata.csv"
    shutil.copy(EVAL_DATA / "ham10000" / "HAM10000_metadata.csv", data)  # the images are not copied
    res = _cli("--task", "ham10000", "--data", data, "--replay", _replay(tmp_path))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "no usable samples (5 image not found; images looked up under" in res.output
    assert str(tmp_path / "meta") in res.output.replace("\n", "")
