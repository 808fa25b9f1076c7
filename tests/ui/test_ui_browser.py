"""`dermassist ui` in a real browser: Debian's Chromium driven by Playwright against a live UI subprocess.

The UI runs the pipeline in-process with the real knowledge base (citations show) and the tiny model served by the
session's vLLM server (``--backend openai``), so a report takes seconds. The tiny model has random weights: the tests
assert what the UI does with a report, never what the report says. Screenshots are saved beside each test's files;
``DERMASSIST_UPDATE_SCREENSHOT=1`` also refreshes docs/ui.png for the README.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import httpx
import jsonschema
import pytest
from PIL import Image
from pypdf import PdfReader

from assistant.core.errors import IntakeError
from assistant.core.intake import MAX_FILE_BYTES, load_image
from assistant.core.report import DISCLAIMER, packaged_report_schema
from support.images import pixel_bomb_png
from support.paths import REPO
from support.skin import fitzpatrick_rgb, jpeg, monk_rgb, skin_photo
from support.ui import (
    alert_text,
    choose,
    chromium,
    fill,
    open_page,
    quality_text,
    ui_server,
    upload,
    wait_for_report,
)

pytestmark = pytest.mark.slow

MARKER_NAME = "jane-doe-mole-4711.jpg"  # a file name that is patient data: it must not reach a log
MARKER_TEXT = "father had melanoma at 47; sunbeds in her twenties"  # clinical text: it must not reach a log either


@pytest.fixture(scope="module")
def ui_tmp(tmp_path_factory) -> Path:
    """The UI server's TMPDIR: every file it writes must stay in its private folder inside."""
    return tmp_path_factory.mktemp("ui-tmp")


@pytest.fixture(scope="module")
def ui(tiny_vllm_server, ui_tmp):
    server = ui_server("--backend", "openai", "--base-url", f"{tiny_vllm_server.base}/v1", "--model", "tiny",
                       log_name="ui-browser", env={"TMPDIR": str(ui_tmp)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _photo(tmp_path: Path, name: str, **kwargs) -> Path:
    path = tmp_path / name
    path.write_bytes(jpeg(skin_photo(kwargs.pop("tone", fitzpatrick_rgb("IV")), **kwargs)))
    return path


def _download(page, selector: str, dest: Path) -> Path:
    with page.expect_download() as download:
        page.locator(selector).click()
    download.value.save_as(dest)
    return dest


def test_photo_to_report_exports_and_a_follow_up(ui, browser, tmp_path):
    requests: list[str] = []
    page = open_page(browser, ui.base, requests=requests)
    upload(page, _photo(tmp_path, MARKER_NAME))
    quality_text(page, "looks usable")
    age_box = page.locator("#da-field-age input, #da-field-age textarea").first
    assert age_box.input_value() == ""  # not given is empty, never 0
    fill(page, "#da-field-age", "67")
    choose(page, "#da-field-sex", "female")
    choose(page, "#da-field-fitzpatrick", "IV")
    fill(page, "#da-field-body_site", "left forearm")
    page.get_by_label("Bleeding").check()
    fill(page, "#da-field-history", MARKER_TEXT)
    fill(page, "#da-question", "Could this be a skin cancer?")
    page.locator("#da-submit").click()
    steps: list[str] = []
    wait_for_report(page, steps)

    assert steps and set(steps) <= {"intake", "retrieval", "generation", "validation", "safety"}  # it streamed
    assert page.locator("#da-progress .da-step-done").count() == 5
    badge = page.locator("#da-report .da-triage")
    assert badge.get_attribute("data-urgency") in ("soon", "urgent", "emergency")  # bleeding always escalates
    assert "warning-symptoms" in page.locator("#da-report .da-escalation").inner_text()  # the reason, under it
    bars = page.locator("#da-report .da-diff-bar")
    assert bars.count() >= 1 and all("width:" in bars.nth(i).get_attribute("style") for i in range(bars.count()))
    assert page.locator("#da-report .da-most-likely").inner_text().strip()
    cite = page.locator("#da-report .da-differential .da-cite").first  # grounded: each item cites a passage
    cite.locator("summary").click()
    assert cite.locator("blockquote").is_visible()
    assert page.locator("#da-banner .da-disclaimer").is_visible()
    assert DISCLAIMER in page.locator("#da-report").inner_text()

    report = json.loads(_download(page, "#da-download-json", tmp_path / "report.json").read_text())
    jsonschema.validate(report, packaged_report_schema())
    assert report["provenance"]["retrieval_store_version"]  # the real store answered
    assert {c["id"] for c in report["citations"]} <= set(report["grounding"]["retrieved_ids"])
    pdf = _download(page, "#da-download-pdf", tmp_path / "report.pdf").read_bytes()
    pdf_text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "not a diagnosis" in pdf_text and f"Triage: {report['triage']['urgency'].upper()}" in pdf_text
    markdown = _download(page, "#da-download-markdown", tmp_path / "report.md").read_text()
    assert markdown.startswith("# Dermatology decision-support report")

    fill(page, "#da-ask", "What should happen next?")
    page.locator("#da-ask-button").click()
    page.wait_for_selector("#da-chat .da-answer-sources", timeout=300_000)
    answer = page.locator("#da-chat .da-answer-sources").last.locator("xpath=..").inner_text()
    assert "Sources cited" in answer and "Guideline passages consulted" in answer  # grounded by the same store
    assert "not a diagnosis" in page.locator("#da-chat").inner_text()

    for scroll in (0, 4000):  # the disclaimer stays on screen wherever the page is scrolled
        page.mouse.wheel(0, scroll)
        box = page.locator("#da-banner .da-disclaimer").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 1000, box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # long model words wrap
    page.screenshot(path=str(tmp_path / "ui-report.png"), full_page=True)
    if os.environ.get("DERMASSIST_UPDATE_SCREENSHOT"):  # the whole page in one window: the bar at its foot
        page.set_viewport_size({"width": 1400, "height": page.evaluate("document.documentElement.scrollHeight")})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(REPO / "docs" / "ui.png"))
    outside = [u for u in requests if not u.startswith((ui.base, "data:", "blob:"))]
    assert outside == [], outside  # the page fetches nothing from the internet (fonts, analytics, CDNs)


def test_an_example_in_one_click_and_a_blurred_photo_gets_retake_advice_first(ui, browser, tmp_path):
    """The out-of-focus example: one click fills photo and form; its advice shows before any generation."""
    page = open_page(browser, ui.base)
    assert page.locator(".da-example").count() == 3
    page.locator(".da-example", has_text="Out-of-focus").click()
    advice = quality_text(page, "looks blurred")
    assert "retake it in focus" in advice
    assert page.locator("#da-photos img").count() >= 1  # the example's photo is in the gallery
    assert page.locator("#da-field-age input, #da-field-age textarea").first.input_value() == "34"
    assert page.locator("#da-field-body_site input, #da-field-body_site textarea").first.input_value() == "forearm"
    page.locator("#da-submit").click()
    assert "continue anyway" in alert_text(page)
    assert page.locator("#da-progress .da-step").count() == 0  # no generation was spent
    page.locator("#da-continue").click()
    wait_for_report(page)
    assert "looks blurred" in page.locator("#da-report .da-limitations").inner_text()  # the report records it
    page.screenshot(path=str(tmp_path / "ui-blurred.png"), full_page=True)


def _cli_message(path: Path) -> str:
    with pytest.raises(IntakeError) as err:
        load_image(path, label="image 1")  # what `dermassist report` prints after "error: "
    return str(err.value)


@pytest.mark.parametrize("name, content", [
    ("corrupt.jpg", b"\xff\xd8\xff\xe0 this is not really a JPEG"),
    ("bomb.png", pixel_bomb_png()),
    ("animation.gif", "gif"),
], ids=["corrupt", "pixel-bomb", "wrong-type"])
def test_a_hostile_upload_gets_the_cli_message(ui, browser, tmp_path, name, content):
    path = tmp_path / name
    if content == "gif":  # a real image, in a format dermassist does not take
        Image.new("RGB", (64, 64), (200, 150, 120)).save(path, format="GIF")
    else:
        path.write_bytes(content)
    expected = _cli_message(path)
    page = open_page(browser, ui.base)
    upload(page, path)
    assert expected in quality_text(page, "Not usable")
    page.locator("#da-submit").click()
    assert expected in alert_text(page)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Error(" not in body
    assert page.locator("#da-report .da-triage").count() == 0


def test_an_oversized_upload_is_refused_before_it_is_stored(ui, ui_tmp):
    """Gradio's max_file_size is the intake's own limit (25 MiB): a bigger upload is refused, nothing is kept."""
    big = b"\xff\xd8\xff" + b"\0" * (MAX_FILE_BYTES + 1024)
    response = httpx.post(f"{ui.base}/gradio_api/upload", files={"files": ("huge-4711.jpg", big, "image/jpeg")},
                          timeout=120, trust_env=False)
    assert response.status_code == 413
    assert not [p for p in ui_tmp.rglob("huge-4711.jpg")]


def test_two_browsers_never_see_each_others_case(ui, browser, tmp_path):
    first = open_page(browser, ui.base)
    second = open_page(browser, ui.base)  # another context: its own cookies and Gradio session
    upload(first, _photo(tmp_path, "first.jpg", tone=fitzpatrick_rgb("II")))
    quality_text(first, "looks usable")
    first.locator("#da-submit").click()
    wait_for_report(first)

    assert "Add 1 to 4 photos" in second.locator("#da-quality").inner_text()
    assert second.locator("#da-report .da-triage").count() == 0
    assert not second.locator("#da-download-json").is_visible()
    fill(second, "#da-ask", "What was the diagnosis?")
    second.locator("#da-ask-button").click()
    assert "Write a report first" in alert_text(second)
    upload(second, _photo(tmp_path, "second.jpg", tone=monk_rgb(10), blur=3.0))
    quality_text(second, "looks blurred")
    assert "looks usable" in first.locator("#da-quality").inner_text()  # the first case is untouched
    assert first.locator("#da-report .da-triage").count() == 1


def test_uploads_stay_private_and_leave_with_the_server(ui, ui_tmp):
    """Last in the module: every copy of an upload is inside the UI's private folder, no log holds patient data,
    and stopping the server removes the folder."""
    private = [p for p in ui_tmp.iterdir() if p.name.startswith("dermassist-ui-")]
    assert len(private) == 1 and oct(private[0].stat().st_mode & 0o777) == "0o700"
    copies = [p for p in ui_tmp.rglob("*") if p.name == MARKER_NAME]
    assert copies and all(private[0] / "uploads" in p.parents for p in copies)
    ui.stop()
    log = ui.log()
    assert MARKER_NAME not in log and MARKER_TEXT not in log and "Traceback" not in log
    assert not private[0].exists()
    shutil.rmtree(ui_tmp, ignore_errors=True)
