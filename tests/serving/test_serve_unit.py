"""Endpoint pieces in-process (fast): the SSRF-safe fetcher, data URLs, metadata, API key, limiter, error shape.

The fetcher's resolver is injected, and a loopback listener proves that refused URLs never connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading

import httpx
import pytest

from assistant.core.errors import IntakeError
from assistant.serving.errors import ServingError
from assistant.serving.images import ImageFetcher, decode_data_url, refusal_for_address
from assistant.serving.limits import ConcurrencyLimiter
from assistant.serving.security import key_matches
from assistant.serving.service import parse_metadata
from support.images import data_url, png_bytes
from support.net import ImageHost, Listener, SlowHeaderHost, free_port


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


# -- hardening (issue 9) ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "169.254.169.254", "168.63.129.16", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",  # metadata/platform
    "fec0::1", "fe80::1", "169.254.1.1", "ff02::1", "224.0.0.1", "0.0.0.0", "::", "0.1.2.3", "240.0.0.1",
    "255.255.255.255", "192.0.2.1", "198.18.0.1", "192.0.0.8", "::127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::",
    "2001::1", "100::1", "::ffff:169.254.169.254",
])
def test_addresses_no_policy_admits(text):
    ip = ipaddress.ip_address(text)
    assert refusal_for_address(ip, allow_private=True) and refusal_for_address(ip, allow_private=False)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.8.9.1", "::1", "10.0.0.5", "172.16.3.4", "192.168.1.2",
                                  "100.64.0.1", "fd12::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1"])
def test_loopback_and_private_addresses_need_the_private_policy(text):
    ip = ipaddress.ip_address(text)
    assert refusal_for_address(ip, allow_private=True) is None
    assert refusal_for_address(ip, allow_private=False) == "a private or loopback address"


@pytest.mark.parametrize("text", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_admitted(text):
    assert refusal_for_address(ipaddress.ip_address(text), allow_private=False) is None


def test_a_name_on_ipv6_and_ipv4_loopback_is_fetched_with_the_private_policy(image_host):
    """`::1` is loopback, not "reserved": a name resolving to ::1 and 127.0.0.1 works on-prem (the image host
    listens on 127.0.0.1 only, so the ::1 connection is refused and the next vetted address is used)."""
    resolver = RecordingResolver({"pacs.test": ["::1", "127.0.0.1"]})
    fetcher = ImageFetcher(("pacs.test",), allow_private=True, resolver=resolver, timeout_s=5)
    assert fetcher.fetch(f"http://pacs.test:{image_host.port}/a.png", label="image 1").data.startswith(b"\x89PNG")
    with pytest.raises(IntakeError, match="private or loopback"):
        ImageFetcher(("pacs.test",), resolver=resolver).fetch(f"http://pacs.test:{image_host.port}/a.png",
                                                              label="image 1")


def test_name_lookup_is_inside_the_deadline(listener):
    """getaddrinfo has no timeout of its own: a lookup that hangs is abandoned at the fetch deadline."""
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["127.0.0.1"]

    fetcher = ImageFetcher(("slow-dns.test",), allow_private=True, resolver=hanging, timeout_s=0.5)
    try:
        with pytest.raises(IntakeError, match="looking up the image URL's host timed out"):
            fetcher.fetch(f"http://slow-dns.test:{listener.port}/a.png", label="image 1")
    finally:
        release.set()
    assert listener.connections == 0


def test_slow_headers_hit_the_whole_fetch_deadline():
    with SlowHeaderHost(interval=0.2) as slow:
        fetcher = ImageFetcher(("slow.test",), allow_private=True, timeout_s=1,
                               resolver=RecordingResolver({"slow.test": ["127.0.0.1"]}))
        with pytest.raises(IntakeError, match="timed out"):
            fetcher.fetch(f"http://slow.test:{slow.port}/a.png", label="image 1")
        assert slow.finished == 0 and slow.bytes_sent < len(slow.header)


def test_upper_case_data_urls_are_data_urls():
    data = png_bytes()
    upper = "DATA:IMAGE/PNG;BASE64," + data_url(data).split(",", 1)[1]
    assert decode_data_url(upper, label="image 1", max_bytes=1 << 20) == data


def test_client_schema_checks_are_bounded():
    """Checked after generation, so they must end: a catastrophic pattern and an exponential allOf fan-out."""
    from assistant.serving import client_schema

    redos = {"type": "object", "properties": {"text": {"type": "string", "pattern": "^(a|aa)+$"}}}
    with pytest.raises(ServingError, match="too costly to check .*pattern took too long"):
        client_schema.check({"text": "a" * 40 + "!"}, redos, client_schema.vet(redos), what="the report")
    fan_out: dict = {"$defs": {"d0": {"type": "object"}}}
    for i in range(1, 24):
        fan_out["$defs"][f"d{i}"] = {"allOf": [{"$ref": f"#/$defs/d{i - 1}"}, {"$ref": f"#/$defs/d{i - 1}"}]}
    fan_out["$ref"] = "#/$defs/d23"
    with pytest.raises(ServingError, match="evaluation steps"):
        client_schema.check({}, fan_out, client_schema.vet(fan_out), what="the report")
    ok = {"type": "object", "required": ["text"], "properties": {"text": {"pattern": "^[a-z]+$"}}}
    client_schema.check({"text": "abc"}, ok, client_schema.vet(ok), what="the report")
    with pytest.raises(ServingError, match="at text \\(pattern\\)"):
        client_schema.check({"text": "ABC"}, ok, client_schema.vet(ok), what="the report")


def test_metadata_errors_name_the_field_not_the_value():
    for bad in ({"John Smith DOB 1970-01-01": "x"}, {"symptoms": "John Smith"}, {"modality": "John Smith"}):
        with pytest.raises(ServingError) as exc:
            parse_metadata(bad)
        assert "John" not in str(exc.value) and "1970" not in str(exc.value)


@pytest.mark.parametrize("env, args, expected", [
    ({"DERMASSIST_API_KEY": ""}, [], "the API key is empty"),
    ({"DERMASSIST_API_KEY": "   "}, [], "the API key is empty"),
    ({}, ["--host", "0.0.0.0"], "listening on 0.0.0.0 needs an API key"),
    ({}, ["--host", "::"], "listening on :: needs an API key"),
    # Explicitly insecure: the auth check passes and the command goes on to build its pipeline (which fails here
    # on an unreachable upstream before anything binds).
    ({"DERMASSIST_API_KEY": ""}, ["--insecure-no-auth", "--host", "0.0.0.0"],
     "could not list the models of the upstream"),
])
def test_serve_refuses_to_run_without_auth_unless_told_so(env, args, expected):
    import subprocess

    from support.paths import BIN
    from support.servers import server_env

    upstream = f"http://127.0.0.1:{free_port()}/v1"
    command = [str(BIN / "dermassist"), "serve", "--backend", "openai", "--upstream", upstream, "--no-retrieval",
               "--port", str(free_port()), *args]
    proc = subprocess.run(command, env={**server_env(), **env}, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == ""


def test_internal_error_logs_name_the_projects_own_frames(caplog):
    """A bug deep inside a library still logs where in dermassist it happened (not only the last library frames)."""
    import re

    from assistant.app.config import ServingConfig
    from assistant.backends.base import BackendConfig
    from assistant.pipeline.pipeline import ReportPipeline
    from assistant.serving.app import create_app
    from assistant.serving.service import ServingService

    class DeepCrashBackend:
        name = "crash"
        config = BackendConfig(backend="transformers", model="m")

        def generate(self, request):
            re.compile("(" * 30 + "x" + ")" * 29)  # fails ~60 frames down in the re parser

        def close(self):
            pass

    app = create_app(ServingService(ReportPipeline(DeepCrashBackend()), ServingConfig(api_key="k")))

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"Authorization": "Bearer k"}) as client:
            return await client.post("/v1/chat/completions", json={
                "model": "dermassist-chat", "messages": [{"role": "user", "content": "hi"}]})

    with caplog.at_level("ERROR", logger="dermassist.serving"):
        response = asyncio.run(scenario())
    assert response.status_code == 500
    record = next(json.loads(r.getMessage()) for r in caplog.records if "internal_error" in r.getMessage())
    frames = " ".join(record["frames"])
    assert "service.py" in frames and "pipeline.py" in frames and "generate" in frames
    assert record["library_frames"] and record["type"] == "error"
