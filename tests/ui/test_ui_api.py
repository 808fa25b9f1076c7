"""The UI's API through `gradio_client`, against a live `dermassist ui` running the tiny model in-process with the
transformers backend (the default on a CPU machine) and no retrieval."""

from __future__ import annotations

import jsonschema
import pytest

from assistant.core.errors import IntakeError
from assistant.core.intake import load_image
from assistant.core.report import DISCLAIMER, packaged_report_schema
from support.skin import fitzpatrick_rgb, jpeg, monk_rgb, skin_photo
from support.ui import ui_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui(tiny_model):
    server = ui_server("--no-retrieval", log_name="ui-api",
                       env={"DERMASSIST_GENERATION__CHAT_MAX_NEW_TOKENS": "24"})  # short follow-up answers
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(ui):
    from gradio_client import Client

    return Client(ui.base, verbose=False)


@pytest.fixture
def photos(tmp_path):
    sharp, blurred = tmp_path / "sharp.jpg", tmp_path / "blurred.jpg"
    sharp.write_bytes(jpeg(skin_photo(fitzpatrick_rgb("VI"))))
    blurred.write_bytes(jpeg(skin_photo(monk_rgb(2), blur=3.0)))
    return sharp, blurred


def test_the_api_offers_check_report_and_answer_only(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/check_images", "/report", "/answer"}  # the page's own events stay private


def test_check_images_gives_advice_and_the_cli_message(client, photos, tmp_path):
    from gradio_client import handle_file

    sharp, blurred = photos
    result = client.predict([handle_file(sharp), handle_file(blurred)], "clinical", api_name="/check_images")
    assert result["errors"] == []
    assert [(f["image"], f["check"]) for f in result["findings"]] == [("image 2", "blur")]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(IntakeError) as err:
        load_image(bad, label="image 1")
    result = client.predict([handle_file(bad)], "clinical", api_name="/check_images")
    assert result["errors"] == [str(err.value)]


def test_report_then_a_follow_up_with_it_in_context(client, photos):
    from gradio_client import handle_file

    _, blurred = photos
    context = {"age": 70, "sex": "male", "fitzpatrick": "II", "body_site": "scalp",
               "symptoms": {"bleeding": True, "growth": True}}
    report = client.predict([handle_file(blurred)], "clinical", context, "Is this serious?", api_name="/report")
    jsonschema.validate(report, packaged_report_schema())
    assert report["triage"]["urgency"] in ("soon", "urgent", "emergency")  # bleeding + growth always escalate
    assert any("looks blurred" in line for line in report["limitations"])  # the quality gate, in the report
    assert report["provenance"]["backend"] == "transformers"

    answer = client.predict([handle_file(blurred)], "clinical", context, report, [], "What should happen next?",
                            api_name="/answer")
    assert answer["text"] and answer["disclaimer"] == DISCLAIMER
    assert answer["provenance"]["usage"]["completion_tokens"] <= 24


@pytest.mark.parametrize("args, message", [
    (("tablet-photo",), "modality must be one of clinical, dermoscopy, histopathology"),
    (("clinical", {"age": 500}), "invalid case: age: Input should be less than or equal to 120"),
])
def test_api_errors_are_one_sentence(client, photos, args, message):
    from gradio_client import handle_file

    sharp, _ = photos
    full = (*args, *([{}] if len(args) == 1 else []), "")
    with pytest.raises(Exception) as err:
        client.predict([handle_file(sharp)], *full, api_name="/report")
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)
