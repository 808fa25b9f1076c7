"""Server settings: the limits and the image policy. Every field has a safe default; ``dermassist serve`` flags
set them (see docs/serving.md for the trade-offs)."""

from __future__ import annotations

from dataclasses import dataclass

REPORT_MODEL = "dermassist-report"
CHAT_MODEL = "dermassist-chat"


@dataclass(frozen=True)
class ServeConfig:
    api_key: str | None = None  # when set, required on every route but /health (constant-time comparison)
    # Images: data: URLs always; http(s) only for these domains ("host" exact, "*.example.org" for subdomains).
    allow_image_domains: tuple[str, ...] = ()
    allow_private_image_hosts: bool = False  # on-prem PACS on private/loopback addresses; metadata IPs: never
    image_ca_bundle: str | None = None  # PEM file of CAs to trust for https image hosts (a hospital's private CA)
    image_fetch_timeout_s: float = 10.0
    image_max_bytes: int = 10 * 1024 * 1024
    max_images: int = 4  # per request (the pipeline's own limit is 4 per case)
    max_body_bytes: int = 20 * 1024 * 1024
    max_tokens: int = 2048  # cap on a request's max_tokens
    max_messages: int = 64
    max_text_chars: int = 32_000  # all message text together; the model's context is the real bound
    # Concurrency: at most max_concurrency requests run; max_queue more wait; beyond that 429.
    max_concurrency: int = 4
    max_queue: int = 64
    stream_chunk_chars: int = 128
