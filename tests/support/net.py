"""Loopback network helpers: free ports, a listener that only counts connections (proof that an SSRF attempt never
connected; optionally holding them open, a host that never answers), one small HTTP(S) host that records what it
was asked (images, or any body such as a JSON document for ``$ref`` attacks), and a host that sends its response
headers one byte at a time (a deadline test)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
import time

from support.images import png_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """Accepts and counts TCP connections on loopback (IPv4 and, where available, IPv6) on one port.

    ``hold=True``: keeps each connection open without a byte of answer until ``close()`` (a host that never
    answers); otherwise it closes them at once."""

    def __init__(self, *, hold: bool = False) -> None:
        self.connections = 0
        self.hold = hold
        self._held: list[socket.socket] = []
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
            if self.hold:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        time.sleep(0.2)
        for s in [*self._socks, *self._held]:
            s.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SlowHeaderHost:
    """An HTTP host that answers every request with a valid PNG response, but sends the status line and headers
    one byte every ``interval`` seconds (the whole header takes ``len(header) * interval``). ``bytes_sent`` and
    ``finished`` show whether a client waited for all of it."""

    def __init__(self, interval: float = 0.2, body: bytes | None = None) -> None:
        payload = body if body is not None else png_bytes()
        self.header = (f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(payload)}\r\n"
                       "Connection: close\r\n\r\n").encode()
        self.body = payload
        self.interval = interval
        self.bytes_sent = 0
        self.finished = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)  # the request
                for i in range(len(self.header)):
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(self.header[i:i + 1])
                    self.bytes_sent += 1
                conn.sendall(self.body)
                self.finished += 1
            except OSError:  # the client gave up: what a deadline does
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def __enter__(self) -> SlowHeaderHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def send_whole(handler: http.server.BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
    """Answer a ``BaseHTTPRequestHandler`` request with one complete body (status, type, length, bytes)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class ImageHost:
    """A threaded loopback HTTP server (HTTPS with ``ssl_context``) that serves a PNG (or ``body`` as
    ``content_type``, e.g. a JSON document a ``$ref`` might point to) for any path, records
    ``(path, Host header)`` of each request, answers ``/redirect…`` with a 302 to ``redirect_port`` and ``/big``
    with an oversized body. Use as a context manager or call ``close()``."""

    def __init__(self, *, body: bytes | None = None, redirect_port: int = 0,
                 ssl_context: ssl.SSLContext | None = None, big_bytes: int = 300_000,
                 content_type: str = "image/png") -> None:
        self.requests: list[tuple[str, str]] = []
        host = self
        payload = body if body is not None else png_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.requests.append((self.path, self.headers.get("Host", "")))
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{redirect_port}/a.png")
                    self.end_headers()
                    return
                send_whole(self, 200, b"\x89PNG" + b"\0" * big_bytes if self.path == "/big" else payload,
                           content_type)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    @property
    def hosts(self) -> list[str]:
        return [host for _, host in self.requests]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ImageHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpProxy:
    """A loopback TCP forwarder to ``target_port`` that can be taken down and brought back on the same port: a
    backend that goes away mid-run and comes back later."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.up()

    def up(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # taken down
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()
