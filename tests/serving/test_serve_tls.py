"""https image fetching: connect to the vetted IP, yet verify the certificate against the *name* (SNI + Host).

A real TLS server on loopback with certificates from a test CA; the fetcher's resolver maps the allowed test
name to 127.0.0.1 (with allow_private, as for an on-prem PACS behind a hospital CA).
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from assistant.core.errors import IntakeError
from assistant.serving.images import ImageFetcher
from support.images import png_bytes
from support.net import ImageHost

HOST = "derm-images.test"
BODY = png_bytes(size=(64, 48))


def _cert(subject: str, issuer_key, issuer_name, *, ca: bool, san: str | None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(folder: Path, name: str, key, cert) -> tuple[Path, Path]:
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _cert("dermassist test CA", None, None, ca=True, san=None)
    _write(folder, "ca", ca_key, ca_cert)
    for name, san in (("good", HOST), ("wrong", "other.test")):
        key, cert = _cert(san, ca_key, ca_cert.subject, ca=False, san=san)
        _write(folder, name, key, cert)
    return folder


@pytest.fixture
def tls_server(pki):
    servers = []

    def start(cert: str):
        snis: list[str | None] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
        context.sni_callback = lambda sock, name, ctx: snis.append(name)
        server = ImageHost(body=BODY, ssl_context=context)
        servers.append(server)
        return server, snis

    yield start
    for server in servers:
        server.close()


def _fetcher(ca_bundle: Path | None) -> ImageFetcher:
    return ImageFetcher((HOST,), allow_private=True, resolver=lambda host, port: ["127.0.0.1"],
                        ca_bundle=str(ca_bundle) if ca_bundle else None, timeout_s=5)


def test_https_fetch_verifies_the_name_while_connecting_to_the_vetted_ip(pki, tls_server):
    server, snis = tls_server("good")
    port = server.port
    fetched = _fetcher(pki / "ca.pem").fetch(f"https://{HOST}:{port}/lesion.png", label="image 1")
    assert fetched.data == BODY and fetched.host == HOST
    assert snis == [HOST] and server.hosts == [f"{HOST}:{port}"]


def test_certificate_for_another_name_is_refused(pki, tls_server):
    port = tls_server("wrong")[0].port
    with pytest.raises(IntakeError, match="the image host's TLS certificate could not be verified"):
        _fetcher(pki / "ca.pem").fetch(f"https://{HOST}:{port}/lesion.png", label="image 1")


def test_untrusted_ca_is_refused_with_system_cas(tls_server):
    port = tls_server("good")[0].port
    with pytest.raises(IntakeError, match="the image host's TLS certificate could not be verified"):
        _fetcher(None).fetch(f"https://{HOST}:{port}/lesion.png", label="image 1")


def test_without_a_bundle_the_system_ca_store_is_used(pki, tls_server, monkeypatch):
    """As documented: OpenSSL's default store (which SSL_CERT_FILE points elsewhere), not certifi's bundle — so a
    CA an operator installs system-wide is trusted without --image-ca-bundle."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki / "ca.pem"))
    port = tls_server("good")[0].port
    assert _fetcher(None).fetch(f"https://{HOST}:{port}/lesion.png", label="image 1").data == BODY
