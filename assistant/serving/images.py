"""Image URLs in requests: ``data:`` URLs always; http(s) only from allowed domains, fetched SSRF-safely.

The fetcher's rules, in the order they are checked (every refusal happens before any connection is made):

1. scheme ``http``/``https`` only (``file://``, ``ftp://``, ``gopher://`` … are refused);
2. no credentials, backslashes or odd characters in the authority (``http://127.0.0.1:1\\@example.com`` is
   parsed differently by different URL parsers: refused outright);
3. the host must be a DNS name on the allow list — IP literals in any spelling (``127.0.0.1``, ``[::1]``,
   ``2130706433``, ``0x7f.1``, ``0177.0.0.1``) are refused;
4. the name is resolved **once**, within the deadline; every address goes through one classification,
   ``refusal_for_address``: an explicit deny list (cloud metadata and platform addresses such as 169.254.169.254
   and Azure's 168.63.129.16, IPv6 site-local ``fec0::/10``, tunnels, …) that no policy admits, then loopback and
   private ranges (admitted only by ``allow_private``, for on-prem PACS; ``::1`` is loopback), then whatever the
   ``ipaddress`` module calls non-global, link-local, multicast or reserved is refused;
5. the connection goes to the vetted IP (no second lookup: no DNS rebinding) with the ``Host`` header and TLS SNI
   set to the name, and the certificate verified against the *name* (the system CA store, or ``ca_bundle`` for a
   hospital's private CA); proxies from the environment ignored;
6. redirects are refused, non-200 answers refused, the body is capped, and **one deadline covers the whole
   fetch** (lookup, connect, TLS, headers, body).

The bytes then go through the pipeline's image intake (format allow-list, pixel cap before decode, metadata
stripped) like any other image.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from assistant.core.errors import IntakeError

Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP address strings

DATA_URL = re.compile(r"^data:(?P<mime>[a-z0-9.+/-]*)(?P<params>(;[a-z0-9.=+-]+)*?)(?P<b64>;base64)?,",
                      re.IGNORECASE)  # the scheme, type and parameters are case-insensitive (RFC 2397)
DATA_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp"})
# Never fetched from, whatever the policy: cloud metadata and platform services (AWS incl. ECS and its time
# service, GCP, Azure and its wire server, OpenStack, Alibaba, Oracle) ...
DENIED_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "168.63.129.16", "fd00:ec2::254", "fd00:ec2::23",
    "100.100.100.200", "192.0.0.192"))
# ... and ranges that are never an image host: "this network", IETF protocol assignments, benchmarking, the
# deprecated IPv6 site-local range, and tunnels that embed another address (NAT64, 6to4, Teredo, discard).
DENIED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16",
    "2001::/32", "100::/64"))
# Admitted only with allow_private (on-prem PACS): RFC 1918, carrier-grade NAT, unique-local IPv6 (and loopback).
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
MAX_PENDING_LOOKUPS = 8  # name lookups stuck past their deadline (each holds a daemon thread until the OS gives up)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_AUTHORITY_OK = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


def decode_data_url(url: str, *, label: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:image/...`` URL, or an ``IntakeError`` saying what is wrong with it."""
    match = DATA_URL.match(url[:512])
    if not match:
        raise IntakeError(f"{label}: malformed data URL (expected data:image/png;base64,...)")
    mime = match["mime"].lower()
    if mime not in DATA_MIME_TYPES:
        raise IntakeError(f"{label}: this data URL type is not accepted; use image/png, image/jpeg or image/webp")
    if not match["b64"]:
        raise IntakeError(f"{label}: data URL must be base64-encoded (data:image/png;base64,...)")
    payload = re.sub(r"\s+", "", url[match.end():])
    if not payload:
        raise IntakeError(f"{label} is empty (0 bytes)")
    if len(payload) * 3 // 4 > max_bytes:
        raise IntakeError(f"{label} is larger than {max_bytes // 1024} KiB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise IntakeError(f"{label}: malformed data URL (the base64 payload does not decode)") from None


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses of ``host`` (one lookup; the caller vets and connects to them, never re-resolving)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(info[4][0] for info in infos))


def refusal_for_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    """Why an address may not be fetched from, or None when it may: the one classification every fetch uses.

    The explicit deny lists come first (no policy admits them), then loopback and the private ranges (admitted by
    ``allow_private``), then everything the ``ipaddress`` module calls non-global or special is refused.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return refusal_for_address(ip.ipv4_mapped, allow_private)  # ::ffff:a.b.c.d is a.b.c.d
    if ip in DENIED_ADDRESSES:
        return "a cloud metadata or platform address"
    if any(ip in net for net in DENIED_NETWORKS):
        return "a special-purpose address"
    if ip.is_loopback or any(ip in net for net in PRIVATE_NETWORKS):
        return None if allow_private else "a private or loopback address"
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved or (
            isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "a special-purpose address"
    return None if ip.is_global else "a special-purpose address"


def _ip_literal(host: str) -> bool:
    """True for an IP address in any spelling a URL parser or ``inet_aton`` accepts (decimal, hex, octal …)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # accepts 2130706433, 0x7f.1, 0177.0.0.1, 127.1
        return True
    except (OSError, UnicodeError, ValueError):
        pass
    # WHATWG URL parsing treats a host whose last label is a number as IPv4 (then fails or maps it): refuse too.
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(re.fullmatch(r"[0-9]+|0x[0-9a-f]*", last))


def domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


@dataclass
class FetchedImage:
    data: bytes
    host: str


class ImageFetcher:
    """Fetch an image over http(s) under the rules in this module's docstring.

    ``timeout_s`` is a deadline for the whole fetch — name lookup, connect, TLS, headers and body — not a
    per-read timeout: a host that sends its headers one byte a second is cut off at the deadline too.
    """

    def __init__(self, allowed_domains: tuple[str, ...] = (), *, allow_private: bool = False,
                 timeout_s: float = 10.0, max_bytes: int = 10 * 1024 * 1024,
                 resolver: Resolver = system_resolver, ca_bundle: str | None = None) -> None:
        self.allowed_domains = tuple(d.strip().lower().rstrip(".") for d in allowed_domains if d.strip())
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.resolver = resolver
        self.ca_bundle = ca_bundle
        self._lookups = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)

    def ssl_context(self) -> ssl.SSLContext:
        """The system CA store (OpenSSL's default paths; ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured), or only
        ``ca_bundle`` when given — never certifi's bundle, which is what httpx would use by default."""
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else ssl.create_default_context()

    def check(self, url: str, *, label: str, deadline: float | None = None) -> tuple[str, str, int, list[str], str]:
        """Vet a URL without connecting: (scheme, host, port, vetted IPs, path+query) or an ``IntakeError``.

        Messages name what is wrong, never the URL's parts: a URL is client input (it may carry a name or an id).
        """
        scheme, _, _ = url.partition(":")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise IntakeError(f"{label}: only http(s) image URLs can be fetched, other schemes are refused; send the "
                              "image as a data: URL (data:image/png;base64,...)")
        if not self.allowed_domains:
            raise IntakeError(f"{label}: image URLs are not accepted by this server; send the image as a data: URL "
                              "(data:image/png;base64,...)")
        if any(ord(c) <= 32 or ord(c) >= 127 for c in url):
            raise IntakeError(f"{label}: the image URL contains spaces or non-ASCII characters")
        parts = urlsplit(url)
        authority = parts.netloc
        if "@" in authority or "\\" in url:
            raise IntakeError(f"{label}: image URLs with credentials or backslashes in the host are refused")
        if not authority or not _AUTHORITY_OK.match(authority):
            raise IntakeError(f"{label}: the image URL has no valid host")
        try:
            host = (parts.hostname or "").lower().rstrip(".")
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise IntakeError(f"{label}: the image URL has an invalid port") from None
        if not host:
            raise IntakeError(f"{label}: the image URL has no valid host")
        if _ip_literal(host):
            raise IntakeError(f"{label}: image URLs must name an allowed domain, not an IP address")
        if not _HOSTNAME.match(host):
            raise IntakeError(f"{label}: the image URL has no valid host name")
        if not domain_allowed(host, self.allowed_domains):
            raise IntakeError(f"{label}: the image URL's host is not on this server's allowed image domains")
        addresses = self._resolve(host, port, label, deadline or time.monotonic() + self.timeout_s)
        if not addresses:
            raise IntakeError(f"{label}: the image URL's host could not be resolved")
        vetted: list[str] = []
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise IntakeError(f"{label}: the image URL's host resolved to an invalid address") from None
            why = refusal_for_address(ip, self.allow_private)
            if why:  # one bad address refuses the host: no round-robin into the private network
                raise IntakeError(f"{label}: the image URL's host resolves to {why}; refused")
            vetted.append(str(ip))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return scheme, host, port, vetted, target

    def _resolve(self, host: str, port: int, label: str, deadline: float) -> list[str]:
        """The resolver under the deadline. ``getaddrinfo`` cannot be interrupted, so it runs in a daemon thread
        that is abandoned at the deadline; at most ``MAX_PENDING_LOOKUPS`` may be stuck at once."""
        if not self._lookups.acquire(blocking=False):
            raise IntakeError(f"{label}: too many image host lookups are pending; retry shortly")
        done = threading.Event()
        result: list[list[str]] = []

        def lookup() -> None:
            try:
                result.append(self.resolver(host, port))
            except Exception:
                result.append([])
            finally:
                self._lookups.release()
                done.set()

        threading.Thread(target=lookup, name="dermassist-image-dns", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise IntakeError(f"{label}: looking up the image URL's host timed out")
        return result[0]

    def fetch(self, url: str, *, label: str) -> FetchedImage:
        deadline = time.monotonic() + self.timeout_s
        scheme, host, port, addresses, target = self.check(url, label=label, deadline=deadline)
        try:
            data = asyncio.run(asyncio.wait_for(self._download(scheme, host, port, addresses, target, label),
                                                timeout=max(0.001, deadline - time.monotonic())))
        except TimeoutError:
            raise IntakeError(f"{label}: fetching the image timed out (limit {self.timeout_s:g} s)") from None
        return FetchedImage(data, host)

    async def _download(self, scheme: str, host: str, port: int, addresses: list[str], target: str,
                        label: str) -> bytes:
        """The body from the first vetted address that accepts a connection (async, so the caller's deadline
        can cancel it at any point)."""
        import httpx

        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(self.timeout_s),
                                     verify=self.ssl_context()) as client:
            for ip in addresses:  # only vetted addresses; the next one only if this one cannot be connected to
                ip_host = f"[{ip}]" if ":" in ip else ip
                request = client.build_request(
                    "GET", f"{scheme}://{ip_host}:{port}{target}",
                    headers={"Host": host_header, "Accept": "image/png, image/jpeg, image/webp",
                             "User-Agent": "dermassist-image-fetcher"},
                    extensions={"sni_hostname": host} if scheme == "https" else {})
                try:
                    response = await client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    if _tls_verification_failed(exc):
                        raise IntakeError(f"{label}: the image host's TLS certificate could not be verified") from None
                    continue
                except httpx.TimeoutException:
                    raise TimeoutError from None
                except httpx.HTTPError:
                    raise IntakeError(f"{label}: the image could not be fetched") from None
                try:
                    return await self._read(response, label)
                except httpx.TimeoutException:
                    raise TimeoutError from None
                except httpx.HTTPError:
                    raise IntakeError(f"{label}: the image could not be fetched") from None
                finally:
                    await response.aclose()
        raise IntakeError(f"{label}: the image could not be fetched (connection failed)")

    async def _read(self, response, label: str) -> bytes:
        if 300 <= response.status_code < 400:
            raise IntakeError(f"{label}: the image host answered with a redirect; redirects are refused")
        if response.status_code != 200:
            raise IntakeError(f"{label}: the image host answered {response.status_code}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise IntakeError(f"{label} is larger than {self._cap()}")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise IntakeError(f"{label} is larger than {self._cap()}")
            chunks.append(chunk)
        return b"".join(chunks)

    def _cap(self) -> str:
        return f"{self.max_bytes // 2**20} MiB" if self.max_bytes >= 2**20 else f"{self.max_bytes // 1024} KiB"


def _tls_verification_failed(exc: BaseException) -> bool:
    """httpx wraps ssl errors in ConnectError; a bad certificate must be named, not retried on the next address."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
