"""Manifests of every kind read into cases; rows that cannot run become per-case problems, never a refused
manifest; what makes a manifest unusable is one clear error. No model needed."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.batch.manifest import ManifestError, parse_columns, read_manifest
from support.images import jpeg_bytes, varied_lesion
from support.paths import EVAL_DATA


def _images(folder, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        (folder / f"img{i}.jpg").write_bytes(jpeg_bytes(varied_lesion(i)))
        names.append(f"img{i}.jpg")
    return names


def test_folder_one_case_per_image_and_per_sub_folder(tmp_path):
    _images(tmp_path, 2)
    _images(tmp_path / "case-a", 3)
    _images(tmp_path / "case-big", 5)
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.jpg").write_bytes(b"ignored")
    manifest = read_manifest(tmp_path)
    assert manifest.kind == "folder"
    by_id = {c.id: c for c in manifest.cases}
    assert list(by_id) == ["case-a", "case-big", "img0.jpg", "img1.jpg"]
    assert len(by_id["case-a"].images) == 3 and by_id["case-a"].problem is None
    assert by_id["case-big"].problem == "case-big: 5 images; a case has at most 4"
    assert by_id["img0.jpg"].images == [str((tmp_path / "img0.jpg").resolve())]


def test_csv_with_column_mapping_context_and_per_row_problems(tmp_path):
    names = _images(tmp_path / "imgs", 3)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jpg"
    outside.write_bytes(jpeg_bytes(varied_lesion(9)))
    rows = [
        {"case": "p1", "file": f"imgs/{names[0]}|imgs/{names[1]}", "age": "54", "site": "back",
         "symptoms": "itch|bleeding", "modality": "dermoscopy"},
        {"case": "p2", "file": f"imgs/{names[2]}", "age": "two hundred", "site": "", "symptoms": "", "modality": ""},
        {"case": "p3", "file": "imgs/missing.jpg", "age": "", "site": "", "symptoms": "", "modality": ""},
        {"case": "p4", "file": "https://example.org/a.jpg", "age": "", "site": "", "symptoms": "", "modality": ""},
        {"case": "p5", "file": str(outside), "age": "", "site": "", "symptoms": "", "modality": ""},
        {"case": "p6", "file": "../" + outside.name, "age": "", "site": "", "symptoms": "", "modality": ""},
        {"case": "p7", "file": f"imgs/{names[0]}", "age": "", "site": "", "symptoms": "sneezing", "modality": ""},
    ]
    path = tmp_path / "cases.csv"
    header = list(rows[0])
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(r[h] for h in header) for r in rows) + "\n")
    columns = parse_columns(["id=case", "image=file", "body_site=site"])
    manifest = read_manifest(path, columns=columns)
    cases = {c.id: c for c in manifest.cases}
    assert cases["p1"].problem is None and len(cases["p1"].images) == 2
    assert cases["p1"].context == {"age": 54, "body_site": "back", "symptoms": {"itch": True, "bleeding": True}}
    assert cases["p1"].modality == "dermoscopy"
    assert cases["p2"].problem.startswith("entry 2: age:")
    assert cases["p3"].problem == "entry 3: image 'imgs/missing.jpg' not found"
    assert "is not a local file" in cases["p4"].problem
    assert "outside the images root" in cases["p5"].problem
    assert "outside the images root" in cases["p6"].problem
    assert "unknown symptom(s) sneezing" in cases["p7"].problem
    # The same files under a wider images root are accepted.
    wider = read_manifest(path, columns=columns, images_root=tmp_path.parent)
    assert {c.id: c.problem for c in wider.cases}["p5"] is None


def test_jsonl_with_nested_context_and_image_lists(tmp_path):
    names = _images(tmp_path, 2)
    lines = [{"id": "a", "images": names, "context": {"age": 40, "sex": "female"}, "question": "Is this benign?"},
             {"id": "b", "image": names[1], "fitzpatrick": "5"}]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    manifest = read_manifest(path)
    assert manifest.kind == "jsonl"
    a, b = manifest.cases
    assert a.context == {"age": 40, "sex": "female", "question": "Is this benign?"} and len(a.images) == 2
    assert b.context == {"fitzpatrick": "V"} and b.problem is None


@pytest.mark.parametrize("fmt, data", [("ham10000", "ham10000/HAM10000_metadata.csv"),
                                       ("csv_manifest", "manifest/manifest.csv"),
                                       ("image_folder", "image_folder")])
def test_eval_dataset_formats_are_accepted(fmt, data):
    manifest = read_manifest(EVAL_DATA / data, fmt=fmt)
    assert manifest.kind == fmt and manifest.cases
    assert all(c.images for c in manifest.cases if c.problem is None)
    assert any(c.problem is None for c in manifest.cases)


def test_fingerprint_is_stable_and_follows_the_inputs(tmp_path):
    _images(tmp_path, 3)
    first = read_manifest(tmp_path)
    assert read_manifest(tmp_path).fingerprint == first.fingerprint
    (tmp_path / "img1.jpg").write_bytes(jpeg_bytes(varied_lesion(30)))  # a changed image (size or mtime)
    changed = read_manifest(tmp_path)
    assert changed.fingerprint != first.fingerprint
    old = {c.id: c.input_sha256 for c in first.cases}
    assert [c.id for c in changed.cases if c.input_sha256 != old[c.id]] == ["img1.jpg"]


def test_unusable_manifests_are_one_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "dup.jsonl").write_text('{"id": "x", "image": "a.jpg"}\n{"id": "x", "image": "b.jpg"}\n')
    with pytest.raises(ManifestError, match="case id 'x' appears twice"):
        read_manifest(tmp_path / "dup.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"id": "x"\n')
    with pytest.raises(ManifestError, match="line 1 is not valid JSON"):
        read_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "cases.txt").write_text("x")
    with pytest.raises(ManifestError, match="cannot tell the manifest format"):
        read_manifest(tmp_path / "cases.txt")
    with pytest.raises(ManifestError, match="unknown manifest format 'parquet'"):
        read_manifest(tmp_path / "cases.txt", fmt="parquet")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match="holds no cases"):
        read_manifest(empty)
    with pytest.raises(ManifestError, match="--column must be FIELD=COLUMN"):
        parse_columns(["image"])
    with pytest.raises(ManifestError, match="unknown field"):
        read_manifest(empty, columns={"colour": "c"})
    shutil.rmtree(empty)
