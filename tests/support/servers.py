"""Real server subprocesses on free loopback ports (``dermassist serve``, a vLLM OpenAI server), started and stopped
as users do, and the check that an error body is OpenAI-shaped and leaks nothing.

One ``DERMASSIST_HOME`` per test session (the tiny model and the knowledge base are built once into it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from support.paths import BIN, REPO

API_KEY = "test-key-0123456789"

def session_home() -> Path:
    """The test session's DERMASSIST_HOME (set by conftest.py): the tiny model and KB are built once into it."""
    return Path(os.environ["DERMASSIST_HOME"])


def server_env() -> dict[str, str]:
    env = dict(os.environ, DERMASSIST_HOME=str(session_home()), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               VLLM_CPU_KVCACHE_SPACE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env.pop("DERMASSIST_API_KEY", None)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(proxy, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


class Server:
    """A subprocess in its own process group, waited for (children included) on stop."""

    def __init__(self, cmd: list[str], port: int, log_name: str, ready_path: str = "/health",
                 timeout_s: float = 240.0, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = session_home() / f"{log_name}.log"
        self.stdout_path = session_home() / f"{log_name}.stdout"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server's log for its lifetime; closed in stop()
        self._stdout = open(self.stdout_path, "wb")  # noqa: SIM115 - kept apart: stdout must stay empty
        self.proc = subprocess.Popen(cmd, cwd=REPO, env={**server_env(), **(env or {})}, stdout=self._stdout,
                                     stderr=self._log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{log_name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.base + ready_path, timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{log_name} did not become ready in {timeout_s} s:\n{self.log()[-3000:]}")
            time.sleep(0.5)

    def log(self) -> str:
        """Everything the server wrote (stderr, then anything on stdout)."""
        return self.log_path.read_text(errors="replace") + self.stdout()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group only
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # vLLM's spawned workers outlive their parent by 1-3 s: wait until the group is gone.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        self._stdout.close()


def dermassist_serve(port: int, *args: str, log_name: str, timeout_s: float = 300.0) -> Server:
    return Server([str(BIN / "dermassist"), "serve", "--port", str(port), *args], port, log_name,
                  timeout_s=timeout_s)


def vllm_server(model: str, port: int, *, loras: list[str] = (), served_name: str = "tiny",
                log_name: str = "vllm-upstream") -> Server:
    """A real ``vllm.entrypoints.openai.api_server`` on the tiny model, float32 like the in-process tests."""
    from assistant.backends.vllm_backend import vllm_server_command

    # No prefix caching: with random weights, near-tied logits make greedy output depend on whether a prefix
    # was cached, and the tests compare a streamed report with a non-streamed one.
    # Stats stay on: their Prometheus counters (/metrics) show whether a request was generated or aborted.
    cmd = vllm_server_command(model, port=port, loras=list(loras),
                              extra=["--dtype", "float32", "--enforce-eager", "--max-model-len", "8192",
                                     "--served-model-name", served_name, "--no-enable-prefix-caching"])
    return Server(cmd, port, log_name, ready_path="/v1/models", timeout_s=600.0)  # a shared 2-core box is slow


def assert_clean_error(body: dict) -> str:
    """An OpenAI-shaped error with a message that carries no traceback, file path or library internals."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    message = error["message"]
    assert message and isinstance(message, str)
    for leak in ("Traceback", 'File "', ".py", "site-packages", "/work/", "/tmp/", "/home/", "Error(", "0x7f"):
        assert leak not in message, message
    return message


def metric(base: str, name: str, *, headers: dict | None = None, **labels: str) -> float:
    """The sum of a Prometheus metric's samples at ``base/metrics`` whose labels include ``labels``."""
    text = httpx.get(f"{base}/metrics", headers=headers or {}, trust_env=False, timeout=30).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match[1] or "") for k, v in labels.items()):
            total += float(match[2])
    return total


def wait_for(condition: Callable[[], object], timeout_s: float = 60.0, what: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy (and return that), or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def send_and_hold(port: int, path: str, body: dict, api_key: str = API_KEY) -> socket.socket:
    """Send one HTTP POST over a raw socket and return the open socket: closing it is a client that went away."""
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Authorization: Bearer {api_key}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def request_logs(server: Server) -> list[dict]:
    """The JSON request lines of a ``dermassist serve`` log (one per request, ``dermassist.serving``)."""
    lines = []
    for line in server.log().splitlines():
        start = line.find("{")
        if "dermassist.serving" in line and start >= 0:
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(line[start:]))
    return lines
