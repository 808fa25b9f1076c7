"""The output folder's guarantees without a model: a torn last line is cut off, one writer per folder, atomic
rewrites, metadata-free thumbnails, spreadsheet-safe CSV cells."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from assistant.batch.outputs import summary_csv
from assistant.batch.store import BatchRecord, ResultStore, StoreError, file_stem, now, thumbnail_jpeg
from assistant.core.intake import load_image
from support.images import exif_gps_jpeg


def _record(case_id: str, status: str = "error") -> BatchRecord:
    return BatchRecord(id=case_id, status=status, input_sha256="h-" + case_id, error_kind="invalid_image",
                       error="image 1 is empty (0 bytes)", finished_at=now())


def test_a_torn_last_line_is_cut_off_and_that_case_runs_again(tmp_path):
    store = ResultStore(tmp_path)
    store.append(_record("a"))
    store.append(_record("b"))
    store.close()
    path = tmp_path / "reports.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + _record("c").model_dump_json().encode()[:37])  # a kill in the middle of a write
    reopened = ResultStore(tmp_path)
    assert sorted(reopened.records) == ["a", "b"]
    assert path.read_bytes() == whole
    reopened.append(_record("c"))
    assert [line.count(b'"id"') for line in path.read_bytes().splitlines()] == [1, 1, 1]
    reopened.close()


def test_one_writer_per_folder(tmp_path):
    first = ResultStore(tmp_path)
    with pytest.raises(StoreError, match="another dermassist batch is writing to"):
        ResultStore(tmp_path)
    first.close()
    ResultStore(tmp_path).close()


def test_drop_rewrites_atomically_and_leaves_no_temp_files(tmp_path):
    store = ResultStore(tmp_path)
    for case_id in "abc":
        store.append(_record(case_id))
    (tmp_path / ".reports.jsonl.123.tmp").write_text("left by a kill")
    store.drop({"b"})
    assert [BatchRecord.model_validate_json(line).id for line in (tmp_path / "reports.jsonl").read_text().splitlines()
            ] == ["a", "c"]
    store.close()
    ResultStore(tmp_path).close()
    assert not list(tmp_path.glob(".*.tmp"))


def test_thumbnails_are_small_metadata_free_reencodes():
    clean = load_image(exif_gps_jpeg(), label="image 1")
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(clean.image)))
    assert thumb.format == "JPEG" and max(thumb.size) <= 256
    assert not thumb.getexif() and "exif" not in thumb.info and "icc_profile" not in thumb.info


def test_csv_cells_cannot_become_formulas():
    record = _record("=HYPERLINK(\"http://x\")")
    (row,) = csv.DictReader(io.StringIO(summary_csv([record])))
    assert row["id"] == "'=HYPERLINK(\"http://x\")" and row["error_kind"] == "invalid_image"


def test_file_stems_are_safe_and_unique():
    stems = {file_stem(i) for i in ("a/b", "a_b", "../../etc/passwd", "x" * 300, "")}
    assert len(stems) == 5
    assert all("/" not in s and not s.startswith(".") and len(s) < 80 for s in stems)
