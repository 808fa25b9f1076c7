"""Image URLs in requests: ``data:`` URLs always; http(s) only from allowed domains, fetched SSRF-safely.

The fetcher's rules, in the order they are checked (every refusal happens before any connection is made):

1. scheme ``http``/``https`` only (``file://``, ``ftp://``, ``gopher://`` … are refused);
2. no credentials, backslashes or odd characters in the authority (``http://127.0.0.1:1\\@example.com`` is
   parsed differently by different URL parsers: refused outright);
3. the host must be a DNS name on the allow list — IP literals in any spelling (``127.0.0.1``, ``[::1]``,
   ``2130706433``, ``0x7f.1``, ``0177.0.0.1``) are refused;
4. the name is resolved **once**; every address must be public (private, loopback, link-local, multicast,
   reserved, unspecified and cloud-metadata addresses are refused; ``allow_private`` admits private and loopback
   addresses for on-prem PACS, never link-local or metadata addresses);
5. the connection goes to the vetted IP (no second lookup: no DNS rebinding) with the ``Host`` header and TLS SNI
   set to the name, and the certificate verified against the *name* (system CAs, or ``ca_bundle`` for a
   hospital's private CA); proxies from the environment ignored;
6. redirects are refused, non-200 answers refused, a timeout applies to the whole fetch and the body is capped.

The bytes then go through the pipeline's image intake (format allow-list, pixel cap before decode, metadata
stripped) like any other image.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from assistant.core.errors import IntakeError

Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP address strings

DATA_URL = re.compile(r"^data:(?P<mime>[a-zA-Z0-9.+/-]*)(?P<params>(;[a-zA-Z0-9.=+-]+)*?)(?P<b64>;base64)?,")
DATA_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp"})
# Cloud metadata services: refused even with allow_private (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, Oracle).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192"))
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_AUTHORITY_OK = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


def decode_data_url(url: str, *, label: str, max_bytes: int) -> bytes:
    """The bytes of a base64 ``data:image/...`` URL, or an ``IntakeError`` saying what is wrong with it."""
    match = DATA_URL.match(url[:512])
    if not match:
        raise IntakeError(f"{label}: malformed data URL (expected data:image/png;base64,...)")
    mime = match["mime"].lower()
    if mime not in DATA_MIME_TYPES:
        shown = mime if re.fullmatch(r"[a-z0-9.+/-]{1,40}", mime) else "an unsupported type"
        raise IntakeError(f"{label}: data URL type {shown or 'missing'} is not accepted; use image/png, "
                          "image/jpeg or image/webp")
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
    """Why an address may not be fetched from, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return refusal_for_address(embedded, allow_private) or (None if ip.ipv4_mapped else "a tunnel address")
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved:
        return "a link-local, multicast or reserved address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "a broadcast address"
    if ip.is_global:
        return None
    if allow_private and (ip.is_private or ip.is_loopback or ip in ipaddress.ip_network("100.64.0.0/10")):
        return None
    return "a private or loopback address"


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
    """Fetch an image over http(s) under the rules in this module's docstring."""

    def __init__(self, allowed_domains: tuple[str, ...] = (), *, allow_private: bool = False,
                 timeout_s: float = 10.0, max_bytes: int = 10 * 1024 * 1024,
                 resolver: Resolver = system_resolver, ca_bundle: str | None = None) -> None:
        self.allowed_domains = tuple(d.strip().lower().rstrip(".") for d in allowed_domains if d.strip())
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.resolver = resolver
        self.ca_bundle = ca_bundle

    def check(self, url: str, *, label: str) -> tuple[str, str, int, list[str], str]:
        """Vet a URL without connecting: (scheme, host, port, vetted IPs, path+query) or an ``IntakeError``."""
        scheme, _, _ = url.partition(":")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            shown = scheme if re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", scheme) else "this"
            raise IntakeError(f"{label}: {shown} URLs are refused; send the image as a data: URL "
                              "(data:image/png;base64,...)")
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
            raise IntakeError(f"{label}: the image host {host} is not on this server's allowed image domains")
        addresses = self.resolver(host, port)
        if not addresses:
            raise IntakeError(f"{label}: the image host {host} could not be resolved")
        vetted: list[str] = []
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise IntakeError(f"{label}: the image host {host} resolved to an invalid address") from None
            why = refusal_for_address(ip, self.allow_private)
            if why:  # one bad address refuses the host: no round-robin into the private network
                raise IntakeError(f"{label}: the image host {host} resolves to {why}; refused")
            vetted.append(str(ip))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return scheme, host, port, vetted, target

    def fetch(self, url: str, *, label: str) -> FetchedImage:
        import httpx

        scheme, host, port, addresses, target = self.check(url, label=label)
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        deadline = time.monotonic() + self.timeout_s
        data = None
        verify = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(self.timeout_s),
                          verify=verify) as client:
            for ip in addresses:  # only vetted addresses; the next one only if this one cannot be connected to
                ip_host = f"[{ip}]" if ":" in ip else ip
                request = client.build_request(
                    "GET", f"{scheme}://{ip_host}:{port}{target}",
                    headers={"Host": host_header, "Accept": "image/png, image/jpeg, image/webp",
                             "User-Agent": "dermassist-image-fetcher"},
                    extensions={"sni_hostname": host} if scheme == "https" else {})
                try:
                    response = client.send(request, stream=True)
                except httpx.ConnectError as exc:
                    if _tls_verification_failed(exc):
                        raise IntakeError(f"{label}: the TLS certificate of {host} could not be verified") from None
                    continue
                except httpx.TimeoutException:
                    raise IntakeError(f"{label}: fetching from {host} timed out") from None
                except httpx.HTTPError:
                    raise IntakeError(f"{label}: the image could not be fetched from {host}") from None
                try:
                    data = self._read(response, host, label, deadline)
                except httpx.TimeoutException:
                    raise IntakeError(f"{label}: fetching from {host} timed out") from None
                except httpx.HTTPError:
                    raise IntakeError(f"{label}: the image could not be fetched from {host}") from None
                finally:
                    response.close()
                break
        if data is None:
            raise IntakeError(f"{label}: the image could not be fetched from {host} (connection failed)")
        return FetchedImage(data, host)

    def _read(self, response, host: str, label: str, deadline: float) -> bytes:
        if 300 <= response.status_code < 400:
            raise IntakeError(f"{label}: the image host {host} answered with a redirect; redirects are refused")
        if response.status_code != 200:
            raise IntakeError(f"{label}: the image host {host} answered {response.status_code}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise IntakeError(f"{label} is larger than {self._cap()}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise IntakeError(f"{label} is larger than {self._cap()}")
            if time.monotonic() > deadline:
                raise IntakeError(f"{label}: fetching from {host} timed out")
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
