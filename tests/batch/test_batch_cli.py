"""`dermassist batch` as users run it: real subprocesses, the tiny model in transformers, real files, a real kill,
a real browser on the gallery, and a real vLLM server that goes away behind a loopback proxy and comes back."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from assistant.core.report import packaged_report_schema
from support.images import exif_gps_jpeg, hostile_image_files, jpeg_bytes, varied_lesion
from support.net import TcpProxy

pytestmark = pytest.mark.slow
DERMASSIST = str(Path(sys.executable).parent / "dermassist")
GOOD = 4


def batch(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([DERMASSIST, "batch", *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())


def model_args(tiny_model) -> list[str]:
    return ["--model", str(tiny_model), "--backend", "transformers", "--no-retrieval"]


def records(out: Path) -> list[dict]:
    path = out / "reports.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def run_info(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def write_mixed_manifest(root: Path) -> tuple[Path, dict[str, str]]:
    """A CSV of good cases, hostile files and rows that cannot run; returns it and case id -> expected error."""
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for i in range(GOOD):
        name = f"good{i}.jpg"
        data = exif_gps_jpeg(varied_lesion(i)) if i == 0 else jpeg_bytes(varied_lesion(i))
        (images / name).write_bytes(data)
        rows.append({"id": f"good-{i}", "image": f"images/{name}", "age": str(30 + i), "site": "back",
                     "symptoms": "itch"})
    expected = {}
    for name, why in hostile_image_files(images).items():
        rows.append({"id": f"hostile-{name}", "image": f"images/{name}", "age": "", "site": "", "symptoms": ""})
        expected[f"hostile-{name}"] = why
    (root.parent / "secret.jpg").write_bytes(jpeg_bytes(varied_lesion(20)))
    for case_id, image, age, why in (("missing", "images/nope.jpg", "", "not found"),
                                     ("url", "http://127.0.0.1:9/a.jpg", "", "not a local file"),
                                     ("outside", "../secret.jpg", "", "outside the images root"),
                                     ("bad-age", "images/good1.jpg", "-4", "age")):
        rows.append({"id": case_id, "image": image, "age": age, "site": "", "symptoms": ""})
        expected[case_id] = why
    manifest = root / "cases.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest, expected


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("mixed") / "job"
    manifest, expected = write_mixed_manifest(root)
    out = root / "out"
    args = [str(manifest), "--out", str(out), *model_args(tiny_model), "--column", "body_site=site",
            "--batch-size", "4"]
    proc = batch(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"args": args, "out": out, "manifest": manifest, "expected": expected, "proc": proc}


def test_mixed_good_and_hostile_images_each_get_one_record(mixed):
    out, expected, proc = mixed["out"], mixed["expected"], mixed["proc"]
    assert proc.stdout == ""  # stdout carries nothing the user did not ask for
    assert "100%" in proc.stderr and re.search(r"\d(case/s|s/case)", proc.stderr)  # the progress bar and its rate
    recs = records(out)
    ids = [r["id"] for r in recs]
    assert sorted(ids) == sorted([f"good-{i}" for i in range(GOOD)] + list(expected)) and len(set(ids)) == len(ids)
    by_id = {r["id"]: r for r in recs}
    for i in range(GOOD):
        rec = by_id[f"good-{i}"]
        assert rec["status"] == "ok", rec.get("error")
        jsonschema.validate(rec["report"], packaged_report_schema())
        assert (out / rec["markdown"]).read_text().count("not a diagnosis") >= 1
        thumb = Image.open(out / rec["thumbnail"])
        assert thumb.format == "JPEG" and not thumb.getexif() and "exif" not in thumb.info  # the GPS one too
    for case_id, why in expected.items():
        rec = by_id[case_id]
        assert rec["status"] == "error" and why in rec["error"], rec
        assert rec["error_kind"] == ("invalid_image" if case_id.startswith("hostile") else "invalid_case")
        assert rec["report"] is None and rec["markdown"] is None
    rows = list(csv.DictReader(io.StringIO((out / "reports.csv").read_text())))
    assert [r["id"] for r in rows] == [r["id"] for r in csv.DictReader(mixed["manifest"].open())]
    ok_rows = [r for r in rows if r["status"] == "ok"]
    assert all(r["triage"] in ("routine", "soon", "urgent", "emergency") and r["diagnosis"] and r["top3"]
               for r in ok_rows)
    info = run_info(out)
    assert info["status"] == "complete" and info["backend"] == "transformers" and info["prompt_version"]
    assert info["counts"] == {"total": GOOD + len(expected), "ok": GOOD, "error": len(expected), "pending": 0,
                              "errors_by_kind": {"invalid_image": 6, "invalid_case": 4}}
    assert info["runs"][-1]["computed"] == GOOD + len(expected) and info["runs"][-1]["cases_per_s"] > 0


def test_rerun_resumes_retries_errors_and_guards_the_manifest(mixed):
    out, args = mixed["out"], mixed["args"]
    before = (out / "reports.jsonl").read_bytes()
    again = batch(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "reports.jsonl").read_bytes() == before and run_info(out)["runs"][-1]["computed"] == 0

    retried = batch(*args, "--retry-errors")
    assert retried.returncode == 0, retried.stderr[-2000:]
    info = run_info(out)
    assert info["runs"][-1]["computed"] == len(mixed["expected"]) and info["counts"]["error"] == len(mixed["expected"])
    ids = [r["id"] for r in records(out)]
    assert len(ids) == len(set(ids)) == info["counts"]["total"]

    manifest = mixed["manifest"]
    text = manifest.read_text()
    manifest.write_text(text.replace("good-2,images/good2.jpg,32", "good-2,images/good2.jpg,77"))
    try:
        refused = batch(*args)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines()[-1].startswith("error: the manifest changed since this output")
        updated = batch(*args, "--on-change", "update")
        assert updated.returncode == 0, updated.stderr[-2000:]
        assert run_info(out)["runs"][-1]["computed"] == 1
        by_id = {r["id"]: r for r in records(out)}
        assert by_id["good-2"]["status"] == "ok" and len(by_id) == run_info(out)["counts"]["total"]
    finally:
        manifest.write_text(text)


def test_gallery_opens_in_chromium_with_every_case(mixed):
    from playwright.sync_api import sync_playwright

    out = mixed["out"]
    recs = {r["id"]: r for r in records(out)}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri(), wait_until="load")
            page.wait_for_selector("article.case")
            cards = page.locator("article.case")
            assert cards.count() == len(recs)
            assert page.evaluate("document.scripts.length") == 0
            assert "not a diagnosis" in page.locator(".disclaimer").inner_text()
            for i in range(cards.count()):
                card = cards.nth(i)
                rec = recs[card.get_attribute("data-id")]
                assert card.get_attribute("data-status") == rec["status"]
                if rec["status"] == "ok":
                    img = card.locator("img")
                    assert img.evaluate("el => el.complete && el.naturalWidth > 0"), rec["id"]
                    badge = card.locator(".badge").inner_text()
                    assert badge == rec["report"]["triage"]["urgency"]
                    assert card.locator(".diagnosis").inner_text() == rec["report"]["diagnosis"]["condition"]
                    href = card.locator("a.report-link").get_attribute("href")
                    assert (out / href).is_file() and href == rec["markdown"]
                else:
                    assert card.locator(".badge").inner_text() == "error"
                    assert rec["error"] in card.locator(".error").inner_text()
        finally:
            browser.close()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_sigkill_mid_run_then_rerun_gives_every_case_exactly_once(tmp_path, tiny_model):
    n = 10
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n):
        (images / f"case{i:02d}.jpg").write_bytes(jpeg_bytes(varied_lesion(i + 3)))
    out = tmp_path / "out"
    args = [DERMASSIST, "batch", str(images), "--out", str(out), *model_args(tiny_model), "--batch-size", "2",
            "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while _lines(out / "reports.jsonl") < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed; use more cases"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = _lines(out / "reports.jsonl")
    assert 2 <= done_before < n and run_info(out)["status"] == "running"

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ids = [r["id"] for r in records(out)]
    assert sorted(ids) == [f"case{i:02d}.jpg" for i in range(n)]  # no loss, no duplicate
    info = run_info(out)
    assert info["status"] == "complete" and info["runs"][-1]["computed"] == n - done_before
    assert all(r["status"] == "ok" for r in records(out))


def test_backend_that_goes_away_is_retried_then_the_run_stops_and_resumes(tmp_path, tiny_model, tiny_vllm_server):
    n = 4
    images = tmp_path / "images"
    images.mkdir()
    for i in range(n):
        (images / f"c{i}.jpg").write_bytes(jpeg_bytes(varied_lesion(i + 11)))
    proxy = TcpProxy(tiny_vllm_server.port)
    out = tmp_path / "out"
    args = [DERMASSIST, "batch", str(images), "--out", str(out), "--backend", "openai", "--base-url",
            f"http://127.0.0.1:{proxy.port}/v1", "--model", "tiny", "--no-retrieval", "--batch-size", "1",
            "--max-retries", "2", "--retry-wait", "0.5", "--no-progress"]
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        deadline = time.monotonic() + 600
        while _lines(out / "reports.jsonl") < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        proxy.down()  # the backend goes away mid-run
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 1, stderr[-2000:]
        assert "retrying in" in stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("error: stopped: cannot reach the model server") and "rerun the same command" in last
        info = run_info(out)
        done = len(records(out))
        assert info["status"] == "stopped" and 1 <= done < n and info["counts"]["pending"] == n - done

        proxy.up()  # it comes back; the same command resumes
        rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        ids = [r["id"] for r in records(out)]
        assert sorted(ids) == [f"c{i}.jpg" for i in range(n)]
        assert all(r["status"] == "ok" for r in records(out)) and run_info(out)["status"] == "complete"
    finally:
        proxy.down()
