"""Shared pieces for the endpoint tests: real server subprocesses on free loopback ports, test images, a loopback
listener that records connections (to prove an SSRF attempt never connected).

One ``DERMASSIST_HOME`` per test session (the tiny model and the knowledge base are built once into it).
"""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
from helpers import free_port  # noqa: F401 - re-exported for the serve tests
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
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
                 timeout_s: float = 240.0) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = session_home() / f"{log_name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=server_env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
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
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group only
            except ProcessLookupError:
                pass
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
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


def dermassist_serve(port: int, *args: str, log_name: str, timeout_s: float = 300.0) -> Server:
    return Server([str(BIN / "dermassist"), "serve", "--port", str(port), *args], port, log_name,
                  timeout_s=timeout_s)


def vllm_server(model: str, port: int, *, loras: list[str] = (), served_name: str = "tiny",
                log_name: str = "vllm-upstream") -> Server:
    """A real ``vllm.entrypoints.openai.api_server`` on the tiny model, float32 like the in-process tests."""
    from assistant.backends.vllm_backend import vllm_server_command

    # No prefix caching: with random weights, near-tied logits make greedy output depend on whether a prefix
    # was cached, and the tests compare a streamed report with a non-streamed one.
    cmd = vllm_server_command(model, port=port, loras=list(loras),
                              extra=["--dtype", "float32", "--enforce-eager", "--max-model-len", "8192",
                                     "--served-model-name", served_name, "--disable-log-stats",
                                     "--no-enable-prefix-caching"])
    return Server(cmd, port, log_name, ready_path="/v1/models", timeout_s=300.0)


# -- images -------------------------------------------------------------------------------------------------------
def png_bytes(size=(96, 80), colour=(190, 120, 110)) -> bytes:
    img = Image.new("RGB", size, colour)
    img.paste((90, 50, 40), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def pixel_bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG header claiming 3.6 gigapixels, with a tiny body: refused before decoding."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def image_message(*urls: str, text: str = "Itchy scaly plaque on the elbow for 3 months.") -> list[dict]:
    content = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": [*content, {"type": "text", "text": text}]}]


# -- a loopback listener that only counts connections -------------------------------------------------------------
class Listener:
    """Accepts and counts TCP connections on loopback (IPv4 and, where available, IPv6) on one port."""

    def __init__(self) -> None:
        self.connections = 0
        self._socks = []
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._socks.append(sock)
        try:
            sock6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock6.bind(("::1", self.port))
            self._socks.append(sock6)
        except OSError:
            pass
        self._stop = threading.Event()
        for s in self._socks:
            s.listen(16)
            s.settimeout(0.1)
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        time.sleep(0.2)
        for s in self._socks:
            s.close()


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
