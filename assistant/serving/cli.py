"""``dermassist serve``: build the pipeline, then serve it over the OpenAI chat API.

Heavy imports (FastAPI, uvicorn, the backends) happen inside the command, so ``dermassist --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def serve(
    model: Annotated[str | None, typer.Option(
        help="local path or hub id (vllm/transformers), or the upstream's model name (openai; default: the "
             "upstream's first model). Without it: the tiny demo model (meaningless output)")] = None,
    backend: Annotated[str | None, typer.Option(
        help="vllm (in-process engine, GPU default) | transformers (CPU) | openai (an external server, --upstream)")]
    = None,
    upstream: Annotated[str | None, typer.Option(
        help="openai backend: the vLLM/OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1")] = None,
    upstream_api_key: Annotated[str | None, typer.Option(
        envvar="DERMASSIST_UPSTREAM_API_KEY", help="openai backend: the upstream's key")] = None,
    adapter: Annotated[list[str] | None, typer.Option(
        help="LoRA adapter NAME=PATH (openai: NAME=SERVED_NAME), repeatable; each is served as model id NAME")]
    = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config (assistant/configs/*.yaml)")] = None,
    host: Annotated[str, typer.Option(help="bind address; anything but loopback needs --api-key")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    api_key: Annotated[str | None, typer.Option(
        envvar="DERMASSIST_API_KEY", show_envvar=True,
        help="require 'Authorization: Bearer KEY' on every route but /health (prefer the env variable)")] = None,
    allow_image_domains: Annotated[str | None, typer.Option(
        help="comma list of domains http(s) image URLs may come from ('*.example.org' for subdomains); "
             "default: data: URLs only")] = None,
    allow_private_image_hosts: Annotated[bool, typer.Option(
        "--allow-private-image-hosts",
        help="let allowed image domains resolve to private/loopback addresses (on-prem PACS); "
             "link-local and cloud-metadata addresses stay refused")] = False,
    max_images: Annotated[int, typer.Option(min=1, max=4, help="images per request")] = 4,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="request body cap, MiB")] = 20.0,
    max_tokens: Annotated[int, typer.Option(min=16, help="cap on a request's max_tokens")] = 2048,
    max_concurrency: Annotated[int, typer.Option(min=1, help="requests processed at once")] = 4,
    max_queue: Annotated[int, typer.Option(min=0, help="requests waiting for a slot; beyond: 429")] = 64,
    image_ca_bundle: Annotated[Path | None, typer.Option(
        help="PEM file of CAs to trust for https image hosts (e.g. a hospital's private CA); default: system CAs",
        exists=True, dir_okay=False)] = None,
    image_fetch_timeout: Annotated[float, typer.Option(min=0.1, help="seconds per image URL fetch")] = 10.0,
    image_max_mb: Annotated[float, typer.Option(min=0.01, help="size cap per image, MiB")] = 10.0,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="do not ground in guidelines")] = False,
    chroma_url: Annotated[str | None, typer.Option(help="use a Chroma server for retrieval")] = None,
    dtype: Annotated[str | None, typer.Option(help="auto | float32 | bfloat16 | float16")] = None,
    max_model_len: Annotated[int | None, typer.Option(help="vllm: context length")] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="vllm: no CUDA graphs (CPU, tests)")]
    = False,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Serve dermassist over the OpenAI chat API (reports, grounded chat, LoRA adapters)."""
    from assistant.cli import run_cli

    def body():
        from assistant.errors import ConfigError
        from assistant.factory import build_pipeline
        from assistant.serving import logging as serving_logging
        from assistant.serving.config import ServeConfig

        if host not in LOOPBACK_HOSTS and not api_key:
            typer.echo(f"dermassist serve: WARNING: listening on {host} without an API key; anyone who can reach "
                       "this port can use it (set DERMASSIST_API_KEY)", err=True)
        backend_config, retrieval = _configs(model, backend, upstream, upstream_api_key, adapter or [], config,
                                             dtype, max_model_len, enforce_eager, no_retrieval, chroma_url)
        serve_config = ServeConfig(
            api_key=api_key or None,
            allow_image_domains=tuple(d.strip() for d in (allow_image_domains or "").split(",") if d.strip()),
            allow_private_image_hosts=allow_private_image_hosts, image_fetch_timeout_s=image_fetch_timeout,
            image_ca_bundle=str(image_ca_bundle) if image_ca_bundle else None,
            image_max_bytes=int(image_max_mb * 2**20), max_images=max_images,
            max_body_bytes=int(max_body_mb * 2**20), max_tokens=max_tokens, max_concurrency=max_concurrency,
            max_queue=max_queue)
        if max_images > backend_config.max_images:
            raise ConfigError(f"--max-images {max_images} is above the backend's max_images "
                              f"{backend_config.max_images}")
        serving_logging.configure(log_level)
        pipeline = build_pipeline(backend_config, retrieval=retrieval)
        _run(pipeline, serve_config, host, port, log_level)

    run_cli(body)


def _configs(model, backend, upstream, upstream_api_key, adapters, config_path, dtype, max_model_len,
             enforce_eager, no_retrieval, chroma_url):
    from assistant.backends.base import BackendConfig
    from assistant.config import RetrievalConfig, load_config
    from assistant.errors import ConfigError

    app_config = load_config(config_path) if config_path else None
    base = app_config.backend.model_dump(exclude_unset=True) if app_config else {}
    for key, value in (("model", model), ("backend", backend), ("base_url", upstream),
                       ("api_key", upstream_api_key), ("dtype", dtype), ("max_model_len", max_model_len)):
        if value:
            base[key] = value
    if enforce_eager:
        base["enforce_eager"] = True
    base.setdefault("backend", "openai" if upstream else "vllm" if _has_cuda() else "transformers")
    if upstream and base["backend"] != "openai":
        raise ConfigError("--upstream is for --backend openai (an external vLLM/OpenAI-compatible server)")
    for item in adapters:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--adapter must be NAME=PATH, got {item!r}")
        base.setdefault("adapters", {})[name.strip()] = path.strip()
    if not base.get("model"):
        if base["backend"] == "openai":
            base["model"] = _upstream_model(base.get("base_url"), base.get("api_key"))
        else:
            from assistant.tiny_model import MEANINGLESS_WARNING, ensure_demo_model

            base["model"] = str(ensure_demo_model())
            typer.echo(MEANINGLESS_WARNING, err=True)
    backend_config = BackendConfig.model_validate(base)
    retrieval = app_config.retrieval if app_config else RetrievalConfig()
    retrieval = retrieval.model_copy(update={"enabled": retrieval.enabled and not no_retrieval,
                                             **({"chroma_url": chroma_url} if chroma_url else {})})
    return backend_config, retrieval


def _upstream_model(base_url: str | None, api_key: str | None) -> str:
    """The first model an OpenAI-compatible upstream lists (what a single-model vLLM server serves)."""
    import os

    import httpx

    from assistant.errors import BackendError, ConfigError

    if not base_url:
        raise ConfigError("--backend openai needs --upstream (e.g. http://127.0.0.1:8001/v1)")
    key = api_key or os.environ.get("OPENAI_API_KEY")
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", timeout=10, trust_env=False,
                             headers={"Authorization": f"Bearer {key}"} if key else {})
        response.raise_for_status()
        return response.json()["data"][0]["id"]
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        raise BackendError(f"could not list the models of the upstream {base_url}; pass --model") from None


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _run(pipeline, serve_config, host: str, port: int, log_level: str) -> None:
    import uvicorn

    from assistant.serving.app import create_app
    from assistant.serving.service import ServingService

    service = ServingService(pipeline, serve_config)
    app = create_app(service)
    ids = ", ".join(card.id for card in service.models().data)
    shown = f"[{host}]" if ":" in host else host
    print(f"dermassist serve: http://{shown}:{port}/v1 (models: {ids}; backend {pipeline.backend.name})",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level.lower(),
                    timeout_graceful_shutdown=30, server_header=False)
    finally:
        service.close()  # idempotent; also covers a port that could not be bound
