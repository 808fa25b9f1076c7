"""`dermassist serve --backend transformers` (CPU) on the tiny model with a LoRA adapter, driven by `openai`.

This server runs with ``--allow-private-image-hosts`` (the documented on-prem option) and ``localhost`` on the
image allow list, so that image URLs from a loopback server can be fetched — which is what lets us test that an
allowed domain that *redirects* is refused and the redirect target is never contacted, and that the image-fetch
deadline (2 s here) covers a host that dribbles its headers. It also runs with one slot and a one-deep queue to
show overload answers 429 (with Retry-After) instead of falling over.
"""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import jsonschema
import openai
import pytest

from assistant.core.report import Report, packaged_report_schema
from support.images import data_url, image_message, png_bytes, strip_png
from support.net import ImageHost, Listener, SlowHeaderHost, free_port
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
def env(tiny_model, tiny_lora):
    lora = tiny_lora
    listener = Listener()
    images = ImageHost(body=png_bytes(size=(120, 90)), redirect_port=listener.port)
    server = dermassist_serve(free_port(), "--backend", "transformers", "--no-retrieval", "--api-key", API_KEY,
                              "--adapter", f"derm-lora={lora}", "--allow-image-domains", "localhost",
                              "--allow-private-image-hosts", "--max-concurrency", "1", "--max-queue", "1",
                              "--image-fetch-timeout", "2", log_name="serve-transformers")
    yield {"server": server, "image_port": images.port, "images": images, "listener": listener}
    server.stop()
    images.close()
    listener.close()
    assert "Traceback" not in server.log()
    assert server.stdout() == ""  # logs go to stderr; stdout carries nothing a server was not asked for


@pytest.fixture(scope="module")
def client(env):
    return openai.OpenAI(base_url=f"{env['server'].base}/v1", api_key=API_KEY, max_retries=0, timeout=300)


def _valid_report(content: str) -> Report:
    jsonschema.validate(json.loads(content), packaged_report_schema())
    return Report.model_validate_json(content)


def test_models_include_the_adapter(client):
    assert [m.id for m in client.models.list().data] == ["dermassist-report", "dermassist-chat", "derm-lora"]


def test_report_from_a_data_url_and_from_an_allowed_url(client, env):
    report = _valid_report(client.chat.completions.create(
        model="dermassist-report", messages=image_message(data_url(png_bytes())),
        metadata={"age": "40", "fitzpatrick": "IV", "symptoms": "itch"}).choices[0].message.content)
    assert report.provenance.backend == "transformers" and report.provenance.adapter is None
    env["images"].requests.clear()
    url = f"http://localhost:{env['image_port']}/lesion.png"
    fetched = _valid_report(client.chat.completions.create(
        model="dermassist-report", messages=image_message(url)).choices[0].message.content)
    assert env["images"].requests == [("/lesion.png", f"localhost:{env['image_port']}")]
    assert fetched.provenance.image_sha256 and fetched.provenance.image_sha256 != report.provenance.image_sha256


def test_adapter_is_a_model_id(client):
    completion = client.chat.completions.create(model="derm-lora", messages=image_message(data_url(png_bytes())))
    report = _valid_report(completion.choices[0].message.content)
    assert completion.model == "derm-lora" and report.provenance.adapter == "derm-lora"


def test_allowed_domain_that_redirects_is_refused(client, env):
    env["images"].requests.clear()
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="dermassist-report",
            messages=image_message(f"http://localhost:{env['image_port']}/redirect/lesion.png"))
    assert "redirects are refused" in assert_clean_error(exc.value.body if "error" in exc.value.body
                                                         else {"error": exc.value.body})
    assert env["images"].paths == ["/redirect/lesion.png"]
    assert env["listener"].connections == 0  # the redirect target was never contacted
    # Even with the private-hosts option, metadata and IP-literal URLs stay refused.
    for url in ("http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{env['listener'].port}/a.png"):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="dermassist-report", messages=image_message(url))
    assert env["listener"].connections == 0


def test_overload_answers_429_and_every_request_is_answered(env):
    """One slot, one queue place: 6 simultaneous reports → 2 served, the rest 429 at once; nothing hangs."""
    base = env["server"].base
    body = {"model": "dermassist-report", "messages": image_message(data_url(png_bytes()))}

    def post(_):
        # A hang guard, not a speed check: the queued report waits for the running one (two tiny-model reports
        # took over 300 s on 2 shared cores at load average 24).
        response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=900, trust_env=False,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        return response.status_code, response.json(), response.headers

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(post, range(6)))
    statuses = sorted(status for status, _, _ in results)
    assert len(results) == 6 and set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) >= 3 and statuses.count(200) >= 1
    for status, payload, headers in results:
        if status == 429:
            assert "busy" in assert_clean_error(payload)
            assert payload["error"]["type"] == "rate_limit_error"
            assert int(headers["retry-after"]) >= 1  # the SDKs wait this long before they retry
    assert httpx.get(f"{base}/health", trust_env=False).status_code == 200


# -- hardening (issue 9) ---------------------------------------------------------------------------------------------

def _error(exc) -> str:
    body = exc.value.body
    return assert_clean_error(body if "error" in body else {"error": body})


def test_a_host_that_dribbles_its_headers_hits_the_whole_fetch_deadline(client):
    """Headers at one byte per 0.25 s take ~25 s; the 2 s deadline covers them (a per-read timeout never fired)."""
    with SlowHeaderHost(interval=0.25, body=png_bytes(size=(120, 90))) as slow:
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="dermassist-report",
                                           messages=image_message(f"http://localhost:{slow.port}/lesion.png"))
        assert "timed out" in _error(exc)
        assert slow.finished == 0 and slow.bytes_sent < len(slow.header)


def test_extreme_aspect_ratio_and_over_long_prompt_are_client_errors(client, env):
    """A 100000x399 PNG (under the pixel cap) was a 500 here; an over-long prompt reached the engine."""
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dermassist-report", messages=image_message(data_url(strip_png())))
    assert "aspect ratio above 20:1" in _error(exc)
    long_text = "The patient reports an itchy scaly plaque on the left elbow for three months. " * 350
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="dermassist-chat", messages=[{"role": "user", "content": long_text}],
                                       max_tokens=8)
    assert "context window of 8192 tokens" in _error(exc)
    assert httpx.get(f"{env['server'].base}/health", trust_env=False).json()["status"] == "ok"


def test_finish_reason_length_plain_and_streamed(client):
    question = [{"role": "user", "content": "Describe eczema treatment options in detail."}]
    cut = client.chat.completions.create(model="dermassist-chat", messages=question, max_tokens=4)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 4
    chunks = list(client.chat.completions.create(model="dermassist-chat", messages=question, max_tokens=4,
                                                 stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_client_that_goes_away_stops_the_generation(env):
    """The transformers backend stops at the next token (a stopping criterion on the cancel event); the request is
    logged once, as 499 "cancelled", instead of as a 200 after a full 2048-token generation for nobody."""
    server = env["server"]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    sock = send_and_hold(server.port, "/v1/chat/completions", {
        "model": "dermassist-chat", "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Explain every treatment of chronic hand eczema."}]})
    try:  # in flight: the held request and this /metrics request itself
        wait_for(lambda: metric(server.base, "dermassist_requests_in_flight", headers=headers) >= 2, 60,
                 "the request to be running")
        time.sleep(1.0)  # into the generation (2048 tokens take this model far longer)
    finally:
        sock.close()
    entry = wait_for(lambda: [e for e in request_logs(server) if e.get("status") == 499], 60, "the 499 log line")
    assert entry[-1]["error"] == "cancelled" and entry[-1]["task"] == "chat"
