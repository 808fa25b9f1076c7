"""`dermassist serve --backend vllm`: the GPU production default (an in-process vLLM engine), here on vLLM-CPU.

One server with the tiny model and its LoRA as a model id, driven by the official ``openai`` client.
"""

from __future__ import annotations

import base64
import json

import httpx
import jsonschema
import openai
import pytest

from assistant.core.report import packaged_report_schema
from support.images import data_url, image_message, jpeg_bytes, lesion_image, strip_png
from support.net import free_port
from support.servers import API_KEY, assert_clean_error, dermassist_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_model, tiny_lora):
    # 900 s: a start-up hang guard; building the knowledge base and the engine took over 400 s at load average 18
    server = dermassist_serve(free_port(), "--backend", "vllm", "--model", str(tiny_model), "--dtype", "float32",
                              "--enforce-eager", "--max-model-len", "4096", "--adapter", f"derm-lora={tiny_lora}",
                              "--api-key", API_KEY, log_name="serve-vllm-inprocess", timeout_s=900)
    yield server
    server.stop()
    assert "Traceback" not in server.log()
    assert server.stdout() == ""  # vLLM's own log lines go to stderr, never stdout


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=300)


def _messages(text: str) -> list[dict]:
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(lesion_image())).decode()
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": text}]}]


def test_models_and_reports_with_and_without_the_adapter(client):
    assert [m.id for m in client.models.list().data] == ["dermassist-report", "dermassist-chat", "derm-lora"]
    contents = {}
    for model in ("dermassist-report", "derm-lora"):
        response = client.chat.completions.create(model=model, messages=_messages("Pigmented lesion on the back."),
                                                  metadata={"age": "52", "body_site": "back"})
        report = json.loads(response.choices[0].message.content)
        jsonschema.validate(report, packaged_report_schema())
        assert report["provenance"]["backend"] == "vllm"
        assert response.usage.completion_tokens > 0
        contents[model] = report["findings"]
    assert contents["dermassist-report"] != contents["derm-lora"]  # the adapter is applied per request


def test_chat_answer_streams(client):
    stream = client.chat.completions.create(model="dermassist-chat", messages=_messages("What could this be?"),
                                            stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "not a diagnosis" in text


def test_concurrent_requests_share_the_engine_and_each_gets_its_own_report(client):
    """The engine batches concurrent requests (no lock around it any more): each answer is still that request's."""
    from concurrent.futures import ThreadPoolExecutor

    def report(age: str) -> dict:
        response = client.chat.completions.create(model="dermassist-report", messages=_messages("Lesion."),
                                                  metadata={"age": age, "body_site": "arm"})
        return json.loads(response.choices[0].message.content)

    ages = ["31", "64", "31", "64"]
    with ThreadPoolExecutor(len(ages)) as pool:
        reports = list(pool.map(report, ages))
    for r in reports:
        jsonschema.validate(r, packaged_report_schema())
    assert reports[0]["findings"] == reports[2]["findings"] and reports[1]["findings"] == reports[3]["findings"]
    assert report("31")["findings"] == reports[0]["findings"]  # alone == inside the concurrent batch


def test_bad_input_is_a_client_error_and_never_marks_the_engine_down(server, client):
    """A 100000x399 PNG and an over-long prompt each answered 503 and left /health "degraded"."""
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dermassist-report", messages=image_message(data_url(strip_png())))
    assert "aspect ratio above 20:1" in assert_clean_error(exc.value.body if "error" in exc.value.body
                                                          else {"error": exc.value.body})
    long_text = "The patient reports an itchy scaly plaque on the left elbow for three months. " * 350
    response = httpx.post(f"{server.base}/v1/chat/completions", trust_env=False, timeout=120,
                          headers={"Authorization": f"Bearer {API_KEY}"},
                          json={"model": "dermassist-chat", "max_tokens": 8,
                                "messages": [{"role": "user", "content": long_text}]})
    assert response.status_code == 400, response.text
    message = assert_clean_error(response.json())
    assert "context window of 4096 tokens" in message and "Qwen" not in message
    assert httpx.get(f"{server.base}/health", trust_env=False).json()["status"] == "ok"
    cut = client.chat.completions.create(model="dermassist-chat", messages=_messages("What is it?"), max_tokens=4)
    assert cut.choices[0].finish_reason == "length"
