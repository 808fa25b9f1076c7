"""``dermassist serve``: build the pipeline, then serve it over the OpenAI chat API.

Heavy imports (FastAPI, uvicorn, the backends) happen inside the command, so ``dermassist --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.app.options import ModelFlags, model_options, run_cli
from assistant.core.case import MAX_IMAGES_PER_CASE

if TYPE_CHECKING:
    from assistant.app.config import ServingConfig

API_KEY_ENV = "DERMASSIST_API_KEY"


@model_options(server=True)
def serve(
    flags: ModelFlags,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1); anything but loopback needs "
                                                  "an API key (or --insecure-no-auth)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    api_key: Annotated[str | None, typer.Option(
        envvar=API_KEY_ENV, show_envvar=True,
        help="require 'Authorization: Bearer KEY' on every route but /health (prefer the env variable); an "
             "empty key is refused")] = None,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth",
        help="serve without an API key although the host is not loopback or DERMASSIST_API_KEY is empty (only "
             "behind a proxy that authenticates)")] = False,
    allow_image_domains: Annotated[str | None, typer.Option(
        help="comma list of domains http(s) image URLs may come from ('*.example.org' for subdomains); "
             "default: data: URLs only")] = None,
    allow_private_image_hosts: Annotated[bool, typer.Option(
        "--allow-private-image-hosts",
        help="let allowed image domains resolve to private/loopback addresses (on-prem PACS); "
             "link-local and cloud-metadata addresses stay refused")] = False,
    max_images: Annotated[int | None, typer.Option(min=1, max=MAX_IMAGES_PER_CASE,
                                                   help="images per request")] = None,
    max_body_mb: Annotated[float | None, typer.Option(min=0.01, help="request body cap, MiB (default 20)")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=16, help="cap on a request's max_tokens (default 2048)")]
    = None,
    max_concurrency: Annotated[int | None, typer.Option(
        min=1, help="requests processed at once (default 4; 32 with the in-process vLLM engine, which batches "
                    "them)")] = None,
    max_queue: Annotated[int | None, typer.Option(min=0, help="requests waiting for a slot; beyond: 429 "
                                                              "(default 64)")] = None,
    image_ca_bundle: Annotated[Path | None, typer.Option(
        help="PEM file of CAs to trust for https image hosts (e.g. a hospital's private CA); default: system CAs",
        exists=True, dir_okay=False)] = None,
    image_fetch_timeout: Annotated[float | None, typer.Option(min=0.1, help="seconds per image URL fetch "
                                                                            "(default 10)")] = None,
    image_max_mb: Annotated[float | None, typer.Option(min=0.01, help="size cap per image, MiB (default 10)")]
    = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Serve dermassist over the OpenAI chat API (reports, grounded chat, LoRA adapters)."""

    def body() -> None:
        from assistant.app.build import build_pipeline
        from assistant.core.errors import ConfigError
        from assistant.serving import logging as serving_logging

        given = {key: value for key, value in (
            ("host", host), ("port", port), ("api_key", _api_key(api_key, insecure_no_auth)),
            ("insecure_no_auth", True if insecure_no_auth else None), ("max_images", max_images),
            ("max_tokens", max_tokens), ("max_concurrency", max_concurrency), ("max_queue", max_queue),
            ("image_fetch_timeout_s", image_fetch_timeout),
            ("image_ca_bundle", str(image_ca_bundle) if image_ca_bundle else None),
            ("max_body_bytes", int(max_body_mb * 2**20) if max_body_mb else None),
            ("image_max_bytes", int(image_max_mb * 2**20) if image_max_mb else None),
            ("allow_image_domains", tuple(d.strip() for d in allow_image_domains.split(",") if d.strip())
             if allow_image_domains is not None else None),
            ("allow_private_image_hosts", True if allow_private_image_hosts else None),
        ) if value is not None}
        config = flags.load(serving=given)
        serving = config.serving  # its validator refused an empty key, or no key off loopback, unless insecure
        if serving.insecure_no_auth and not serving.api_key:
            typer.echo(f"dermassist serve: WARNING: --insecure-no-auth: anyone who can reach {serving.host} can use "
                       "this server", err=True)
        if serving.max_images > config.backend.max_images:
            raise ConfigError(f"--max-images {serving.max_images} is above the backend's max_images "
                              f"{config.backend.max_images}")
        serving_logging.configure(log_level)
        pipeline = build_pipeline(config)
        _run(pipeline, serving.for_backend(pipeline.backend.name), log_level)

    run_cli(body)


def _api_key(given: str | None, insecure_no_auth: bool) -> str | None:
    """The key as given. Click reads an *empty* DERMASSIST_API_KEY as "not set", which would silently turn auth off:
    an empty (or blank) key is passed on as "", which the serving config refuses unless --insecure-no-auth."""
    if given is None and API_KEY_ENV in os.environ:
        given = os.environ[API_KEY_ENV]
    if given is not None and not given.strip():
        return None if insecure_no_auth else ""
    return given


def _run(pipeline, serve_config: ServingConfig, log_level: str) -> None:
    import uvicorn

    from assistant.serving.app import create_app
    from assistant.serving.service import ServingService

    service = ServingService(pipeline, serve_config)
    app = create_app(service)
    ids = ", ".join(card.id for card in service.models().data)
    host, port = serve_config.host, serve_config.port
    shown = f"[{host}]" if ":" in host else host
    print(f"dermassist serve: http://{shown}:{port}/v1 (models: {ids}; backend {pipeline.backend.name})",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level.lower(),
                    timeout_graceful_shutdown=30, server_header=False)
    finally:
        service.close()  # idempotent; also covers a port that could not be bound
