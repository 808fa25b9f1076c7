"""The UI as a thin client of `dermassist serve` (``--endpoint``), and the command's own option checks.

A real `dermassist serve` (in front of the session's vLLM server, no retrieval) answers the UI's engine over HTTP
with the openai SDK, the way `dermassist ui --endpoint` runs it; then a `dermassist ui --endpoint` subprocess is
driven through its API. The endpoint also returns the image-quality findings as warnings.
"""

from __future__ import annotations

import os
import subprocess

import openai
import pytest

from assistant.core.case import Case, ClinicalContext, Symptoms
from assistant.core.errors import BackendError, CaseError
from assistant.core.intake import load_image
from assistant.core.report import DISCLAIMER, Report
from assistant.ui.engine import EndpointEngine
from support.images import data_url, image_message
from support.net import free_port
from support.paths import BIN
from support.reports import first_chunk_ids, grounded_report
from support.servers import API_KEY, dermassist_serve
from support.skin import fitzpatrick_rgb, jpeg, png, skin_photo
from support.ui import ui_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve(tiny_vllm_server):
    server = dermassist_serve(free_port(), "--upstream", f"{tiny_vllm_server.base}/v1", "--api-key", API_KEY,
                              "--no-retrieval", log_name="serve-for-ui")
    yield server
    server.stop()


def _blurred_case() -> Case:
    image = load_image(png(skin_photo(fitzpatrick_rgb("V"), blur=3.0)), label="image 1")
    return Case(images=[image], context=ClinicalContext(age=45, symptoms=Symptoms(itch=True),
                                                        question="What is this?"))


def test_the_endpoint_engine_writes_a_report_and_answers_a_follow_up(serve):
    engine = EndpointEngine(f"{serve.base}/v1", API_KEY)
    steps: list[str] = []
    case = _blurred_case()
    report = engine.report(case, progress=steps.append)
    assert isinstance(report, Report) and steps == ["generation", "validation"]
    assert any("looks blurred" in line for line in report.limitations)  # the server's pipeline ran the gate
    answer = engine.answer("What should happen next?", case, report, history=[])
    assert answer.text and answer.disclaimer == DISCLAIMER
    assert "Safety notes:" not in answer.text and DISCLAIMER not in answer.text  # only the answer itself
    engine.close()


def test_the_endpoint_returns_quality_findings_as_warnings(serve):
    client = openai.OpenAI(base_url=f"{serve.base}/v1", api_key=API_KEY, max_retries=0, timeout=300)
    blurred = data_url(jpeg(skin_photo(fitzpatrick_rgb("I"), blur=3.0)), "image/jpeg")
    response = client.chat.completions.create(model="dermassist-report", messages=image_message(blurred))
    warnings = response.model_extra["dermassist"]["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("image 1 looks blurred")
    assert warnings[0] in Report.model_validate_json(response.choices[0].message.content).limitations


def test_endpoint_errors_are_one_sentence(serve):
    case = _blurred_case()
    with pytest.raises(BackendError, match="refused the API key"):
        EndpointEngine(f"{serve.base}/v1", "wrong-key").report(case, progress=lambda step: None)
    with pytest.raises(BackendError, match="cannot reach the dermassist server"):
        EndpointEngine(f"http://127.0.0.1:{free_port()}/v1", API_KEY).report(case, progress=lambda step: None)
    report = grounded_report(first_chunk_ids(2))
    with pytest.raises(CaseError, match="ask a question"):  # the server's own 400 message, as one sentence
        EndpointEngine(f"{serve.base}/v1", API_KEY).answer("   ", case, report, history=[])


def test_dermassist_ui_with_endpoint_runs_no_model_and_answers_through_the_server(serve, tmp_path):
    from gradio_client import Client, handle_file

    ui = ui_server("--endpoint", f"{serve.base}/v1", log_name="ui-endpoint", env={"DERMASSIST_API_KEY": API_KEY})
    try:
        photo = tmp_path / "lesion.jpg"
        photo.write_bytes(jpeg(skin_photo(fitzpatrick_rgb("III"))))
        report = Client(ui.base, verbose=False).predict([handle_file(photo)], "dermoscopy", {"age": 50}, "",
                                                        api_name="/report")
        assert Report.model_validate(report).provenance.backend == "openai"  # the server's pipeline wrote it
        assert "dermassist serve at" in ui.log() and "MEANINGLESS" not in ui.log()  # no model loaded here
    finally:
        ui.stop()


def _ui_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dermassist"), "ui", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DERMASSIST_API_KEY": ""})


@pytest.mark.parametrize("args, message", [
    (("--endpoint", "http://127.0.0.1:9/v1", "--model", "x"), "error: with --endpoint the server's own model"),
    (("--share",), "error: --share publishes the UI on the internet: set --auth or --auth-file"),
    (("--auth", "no-colon"), "error: --auth: expected USER:PASSWORD"),
    (("--auth-file", "/nonexistent/users.txt"), "error: auth file not found"),
])
def test_bad_option_combinations_are_one_line_errors(args, message):
    proc = _ui_cli(*args)
    assert proc.returncode == 1 and proc.stderr.strip().startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
