"""The synthetic benchmark is deterministic, HAM10000-shaped, spans Fitzpatrick I-VI; ITA estimates track it."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from eval.datasets import load_dataset
from eval.skintone import estimate_fitzpatrick, ita_from_lab, ita_to_fitzpatrick, lab_to_srgb, srgb_to_lab
from eval.synthetic import CLASSES, COLUMNS, make_synthetic


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_deterministic_by_seed_and_ham_format(tmp_path):
    a = make_synthetic(tmp_path / "a", n=14, seed=5)
    make_synthetic(tmp_path / "b", n=14, seed=5)
    make_synthetic(tmp_path / "c", n=14, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    rows = list(csv.DictReader(a.open()))
    assert list(rows[0]) == COLUMNS and len(rows) == 14
    assert {r["dx"] for r in rows} == set(CLASSES)  # balanced: each class twice
    assert {r["fitzpatrick"] for r in rows} == {"I", "II", "III", "IV", "V", "VI"}
    ds = load_dataset("ham10000", a, tmp_path / "a" / "images")
    assert len(ds.samples) == 14 and not ds.skipped
    from PIL import Image

    assert Image.open(ds.samples[0].images[0]).size == (224, 224)


def test_classes_differ_visibly(tmp_path):
    """Mean lesion darkness / redness / size separate the classes (what a fine-tune can learn)."""
    path = make_synthetic(tmp_path, n=28, seed=0)
    rows = list(csv.DictReader(path.open()))
    from PIL import Image

    def stats(r):
        arr = np.asarray(Image.open(tmp_path / "images" / f"{r['image_id']}.jpg"), dtype=float)
        centre = arr[62:162, 62:162]
        border = np.concatenate([arr[:20].reshape(-1, 3), arr[-20:].reshape(-1, 3)])
        diff = np.abs(centre - border.mean(0)).sum(-1)
        return (diff > 40).mean()  # lesion area share in the centre crop

    area = {dx: np.mean([stats(r) for r in rows if r["dx"] == dx]) for dx in CLASSES}
    assert area["mel"] > area["nv"] and area["mel"] > area["df"]


def test_lab_round_trip_and_ita_boundaries():
    lab = np.array([60.0, 12.0, 16.0])
    assert np.allclose(srgb_to_lab(lab_to_srgb(lab)), lab, atol=1.0)
    assert ita_from_lab(50, 10) == pytest.approx(0.0)
    assert ita_from_lab(60, 10) == pytest.approx(45.0)
    assert [ita_to_fitzpatrick(v) for v in (56, 55, 41, 28, 10, -30, -31)] == ["I", "II", "III", "IV", "V", "VI",
                                                                                 "VI"]


def test_ita_estimate_matches_synthetic_labels(tmp_path):
    path = make_synthetic(tmp_path, n=12, seed=2)
    rows = list(csv.DictReader(path.open()))
    hits = [estimate_fitzpatrick(tmp_path / "images" / f"{r['image_id']}.jpg")[0] == r["fitzpatrick"] for r in rows]
    assert sum(hits) >= 10
