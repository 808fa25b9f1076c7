"""Fixtures of the fine-tuning tests: small datasets in published formats, written once per session."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from support.images import lesion_image

HAM_COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory) -> Path:
    """The synthetic benchmark, 28 images (4 per class): the metadata CSV path (images/ beside it)."""
    from eval.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), n=28, seed=3)


@pytest.fixture(scope="session")
def ham_lesions(tmp_path_factory) -> Path:
    """A HAM10000-format dataset where lesions have 1-3 images each (as in the real set): 24 lesions, 4 classes."""
    root = tmp_path_factory.mktemp("ham")
    (root / "HAM10000_images_part_1").mkdir()
    rows = []
    for lesion in range(24):
        dx = ("mel", "nv", "bkl", "vasc")[lesion % 4]
        for view in range(1 + lesion % 3):
            image_id = f"ISIC_{lesion:04d}{view}"
            colour = (60 + 7 * lesion, 40 + 20 * view, 40)
            lesion_image(lesion=colour).save(root / "HAM10000_images_part_1" / f"{image_id}.jpg", quality=85)
            rows.append({"lesion_id": f"HAM_{lesion:07d}", "image_id": image_id, "dx": dx, "dx_type": "histo",
                         "age": 30 + lesion, "sex": "male" if lesion % 2 else "female", "localization": "back"})
    path = root / "HAM10000_metadata.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HAM_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def mmskin_repeated(tmp_path_factory) -> Path:
    """An MM-Skin VQA CSV with three questions about each of 10 images (the same image must not cross splits)."""
    root = tmp_path_factory.mktemp("mmskin")
    (root / "images").mkdir()
    with (root / "vqa.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "question", "answer"])
        for i in range(10):
            lesion_image(lesion=(80 + 10 * i, 50, 40)).save(root / "images" / f"img_{i}.jpg")
            for question, answer in (("What colour is the lesion?", "Brown."), ("Is it symmetric?", "yes"),
                                     ("What is the most likely diagnosis?", "A benign naevus.")):
                writer.writerow([f"img_{i}.jpg", question, answer])
    return root / "vqa.csv"
