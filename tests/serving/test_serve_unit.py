"""Endpoint pieces in-process (fast): the SSRF-safe fetcher, data URLs, metadata, API key, limiter, error shape.

The fetcher's resolver is injected, and a loopback listener proves that refused URLs never connect.
"""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from assistant.core.errors import IntakeError
from assistant.serving.errors import ServingError
from assistant.serving.images import ImageFetcher, decode_data_url, refusal_for_address
from assistant.serving.limits import ConcurrencyLimiter
from assistant.serving.security import key_matches
from assistant.serving.service import parse_metadata
from support.images import data_url, png_bytes
from support.net import ImageHost, Listener


class RecordingResolver:
    def __init__(self, mapping: dict[str, list[str]]):
        self.mapping = mapping
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.mapping.get(host, [])


@pytest.fixture()
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:{port}/a.png",
    "http://[::1]:{port}/a.png",
    "http://2130706433:{port}/a.png",       # 127.0.0.1 as one decimal number
    "http://0x7f.1:{port}/a.png",           # hex and short form
    "http://0177.0.0.1:{port}/a.png",       # octal
    "http://[::ffff:127.0.0.1]:{port}/a.png",
    "http://127.0.0.1:{port}\\@derm-images.test/a.png",
    "http://user:pw@derm-images.test:{port}/a.png",
    "file:///etc/passwd",
    "ftp://derm-images.test/a.png",
    "gopher://derm-images.test:{port}/_GET",
    "http://evil.example/a.png",            # not on the allow list
])
def test_refused_before_resolving_or_connecting(url, listener):
    resolver = RecordingResolver({"derm-images.test": ["127.0.0.1"], "evil.example": ["127.0.0.1"]})
    fetcher = ImageFetcher(("derm-images.test",), resolver=resolver, timeout_s=2)
    with pytest.raises(IntakeError) as exc:
        fetcher.fetch(url.format(port=listener.port), label="image 1")
    assert resolver.calls == []  # refused on the URL alone: not even a DNS lookup
    assert listener.connections == 0
    assert str(exc.value).startswith("image 1")


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["::1"], ["10.1.2.3"], ["169.254.169.254"],
                                       ["93.184.216.34", "192.168.1.10"], ["fd00:ec2::254"], ["0.0.0.0"],
                                       ["100.100.100.200"], ["::ffff:10.0.0.1"]])
def test_allowed_domain_resolving_to_internal_address_is_refused(addresses, listener):
    resolver = RecordingResolver({"derm-images.test": addresses})
    fetcher = ImageFetcher(("derm-images.test",), resolver=resolver, timeout_s=2)
    with pytest.raises(IntakeError, match="refused"):
        fetcher.fetch(f"http://derm-images.test:{listener.port}/a.png", label="image 1")
    assert resolver.calls == ["derm-images.test"]  # resolved exactly once
    assert listener.connections == 0


def test_private_policy_never_admits_metadata_or_link_local():
    for text in ("169.254.169.254", "169.254.1.1", "fd00:ec2::254", "100.100.100.200", "224.0.0.1", "0.0.0.0"):
        assert refusal_for_address(ipaddress.ip_address(text), allow_private=True), text
    for text in ("10.0.0.5", "192.168.1.2", "127.0.0.1", "fd12::1"):
        assert refusal_for_address(ipaddress.ip_address(text), allow_private=True) is None, text
        assert refusal_for_address(ipaddress.ip_address(text), allow_private=False), text
    assert refusal_for_address(ipaddress.ip_address("93.184.216.34"), allow_private=False) is None


@pytest.fixture()
def image_host(listener):
    with ImageHost(redirect_port=listener.port) as host:
        yield host


def test_private_hosts_option_fetches_with_host_header_and_refuses_redirects(image_host, listener):
    image_server = image_host.port
    resolver = RecordingResolver({"derm-images.test": ["127.0.0.1"]})
    default = ImageFetcher(("derm-images.test",), resolver=resolver)
    with pytest.raises(IntakeError, match="private or loopback"):
        default.fetch(f"http://derm-images.test:{image_server}/a.png", label="image 1")
    assert image_host.paths == []

    fetcher = ImageFetcher(("derm-images.test",), allow_private=True, resolver=resolver, max_bytes=100_000)
    image = fetcher.fetch(f"http://derm-images.test:{image_server}/a.png?x=1", label="image 1")
    assert image.data.startswith(b"\x89PNG")
    assert image_host.hosts == [f"derm-images.test:{image_server}"]  # connected to the vetted IP, Host kept
    with pytest.raises(IntakeError, match="redirect"):
        fetcher.fetch(f"http://derm-images.test:{image_server}/redirect", label="image 1")
    assert listener.connections == 0  # the redirect target was never contacted
    with pytest.raises(IntakeError, match="larger than"):
        fetcher.fetch(f"http://derm-images.test:{image_server}/big", label="image 1")


def test_fetch_timeout(listener):
    # The listener accepts and closes: a server that never answers properly.
    fetcher = ImageFetcher(("slow.test",), allow_private=True, timeout_s=1,
                           resolver=RecordingResolver({"slow.test": ["127.0.0.1"]}))
    with pytest.raises(IntakeError, match="could not be fetched|timed out"):
        fetcher.fetch(f"http://slow.test:{listener.port}/a.png", label="image 1")


def test_no_image_urls_without_an_allow_list():
    with pytest.raises(IntakeError, match="data: URL"):
        ImageFetcher(()).fetch("https://images.example.org/a.png", label="image 1")


@pytest.mark.parametrize("url, match", [
    ("data:image/png;base64,!!!!", "does not decode"),
    ("data:image/png,rawbytes", "base64"),
    ("data:text/html;base64,PGgxPg==", "not accepted"),
    ("data:;base64,AAAA", "not accepted"),
    ("data:image/png;base64,", "empty"),
    ("data:image/png;base64" + "A" * 10, "malformed"),
])
def test_malformed_data_urls(url, match):
    with pytest.raises(IntakeError, match=match):
        decode_data_url(url, label="image 1", max_bytes=1024)


def test_data_url_roundtrip_and_size_cap():
    data = png_bytes()
    assert decode_data_url(data_url(data), label="image 1", max_bytes=1 << 20) == data
    with pytest.raises(IntakeError, match="larger than"):
        decode_data_url(data_url(data), label="image 1", max_bytes=100)


def test_metadata_forms():
    ctx, modality = parse_metadata({"clinical_context": {"age": 54, "symptoms": ["itch", "bleeding"]},
                                    "modality": "dermoscopy"})
    assert ctx.age == 54 and ctx.symptoms.itch and ctx.symptoms.bleeding and modality == "dermoscopy"
    ctx, _ = parse_metadata({"age": "61", "fitzpatrick": "2", "symptoms": "pain,change", "body_site": "back"})
    assert ctx.age == 61 and ctx.fitzpatrick == "II" and ctx.symptoms.pain and ctx.body_site == "back"
    ctx, _ = parse_metadata({"clinical_context": '{"sex": "female", "duration": "3 weeks"}'})
    assert ctx.sex == "female" and ctx.duration == "3 weeks"
    for bad, match in (({"agee": "5"}, "unknown key"), ({"age": "200"}, "age"), ({"symptoms": "sneezing"},
                                                                                   "unknown symptom"),
                       ({"modality": "xray"}, "modality"), ({"clinical_context": "{not json"}, "not valid JSON")):
        with pytest.raises(ServingError, match=match):
            parse_metadata(bad)


def test_api_key_comparison():
    assert key_matches("secret", "secret")
    assert not key_matches("secret2", "secret") and not key_matches("", "secret") and not key_matches(None, "x")


def test_limiter_answers_429_when_the_queue_is_full_and_503_when_closing():
    async def scenario():
        limiter = ConcurrencyLimiter(max_concurrency=1, max_queue=1)
        gate = asyncio.Event()
        outcomes = []

        async def request():
            try:
                async with limiter.slot():
                    await gate.wait()
                outcomes.append("ok")
            except ServingError as exc:
                outcomes.append(exc.kind)

        tasks = [asyncio.create_task(request()) for _ in range(4)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)
        limiter.closing = True
        await request()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert sorted(outcomes[:4]) == ["ok", "ok", "rate_limited", "rate_limited"]
    assert outcomes[4] == "shutting_down"


def test_internal_errors_and_validation_errors_are_clean():
    """In-process app with a backend that crashes: 500 'internal error', no traceback, path or message."""
    from assistant.app.config import ServingConfig
    from assistant.backends.base import BackendConfig
    from assistant.pipeline.pipeline import ReportPipeline
    from assistant.serving.app import create_app
    from assistant.serving.service import ServingService
    from support.servers import assert_clean_error

    class CrashingBackend:
        name = "crash"
        config = BackendConfig(backend="transformers", model="/srv/models/secret-model")

        def generate(self, request):
            raise RuntimeError("boom in /srv/models/secret-model/modeling.py: patient John Doe")

        def close(self):
            pass

    service = ServingService(ReportPipeline(CrashingBackend()), ServingConfig(api_key="k", max_body_bytes=200_000))
    app = create_app(service)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": "Bearer k"}) as client:
            image = {"type": "image_url", "image_url": {"url": data_url(png_bytes())}}
            crash = await client.post("/v1/chat/completions", json={
                "model": "dermassist-report", "messages": [{"role": "user", "content": [image]}]})
            not_json = await client.post("/v1/chat/completions", content=b"{not json",
                                         headers={"content-type": "application/json"})
            wrong_shape = await client.post("/v1/chat/completions", json={"model": "dermassist-chat",
                                                                         "messages": "my rash itches"})
            unknown = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
                {"role": "user", "content": "hi"}]})
            big = await client.post("/v1/chat/completions", content=b"x" * 300_000,
                                    headers={"content-type": "application/json"})
            models = await client.get("/v1/models")
            no_route = await client.get("/v1/nothing")
            return crash, not_json, wrong_shape, unknown, big, models, no_route

    crash, not_json, wrong_shape, unknown, big, models, no_route = asyncio.run(scenario())
    assert crash.status_code == 500 and assert_clean_error(crash.json()) == "internal error"
    assert "John" not in crash.text and "secret" not in crash.text
    assert not_json.status_code == 400 and "not valid JSON" in assert_clean_error(not_json.json())
    assert wrong_shape.status_code == 400 and "messages" in assert_clean_error(wrong_shape.json())
    assert "itches" not in wrong_shape.text  # the offending input is never echoed
    assert unknown.status_code == 404 and "dermassist-report" in assert_clean_error(unknown.json())
    assert big.status_code == 413 and assert_clean_error(big.json())
    assert models.status_code == 200 and "/srv" not in models.text  # a local model path is never shown
    assert no_route.status_code == 404 and assert_clean_error(no_route.json())
