"""``dermassist ui``: the clinician's chat UI (Gradio), on loopback by default.

It runs the report pipeline in this process with the shared model options (any backend, same config as every
command), or, with ``--endpoint``, is a thin client of a running ``dermassist serve``. Gradio is imported only
when the command runs, after its temporary folder and analytics switch are set.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer

from assistant.app.options import ModelFlags, model_options, run_cli
from assistant.core.errors import ConfigError


@model_options(server=True)
def ui(
    flags: ModelFlags,
    host: Annotated[str, typer.Option(help="bind address; beyond loopback, set --auth or --auth-file (else a warning)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 7860,
    auth: Annotated[str | None, typer.Option(help="USER:PASSWORD required to open the page (visible in ps: "
                                                   "prefer --auth-file)", show_default=False)] = None,
    auth_file: Annotated[Path | None, typer.Option(help="file of USER:PASSWORD lines (# comments allowed)")] = None,
    share: Annotated[bool, typer.Option(help="also publish a temporary public gradio.live link (needs auth and "
                                             "internet access; never on by default)")] = False,
    endpoint: Annotated[str | None, typer.Option(help="a running `dermassist serve`, e.g. http://127.0.0.1:8000/v1:"
                                                      " the UI becomes its client and loads no model")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="DERMASSIST_API_KEY", help="--endpoint's API key "
                                                "(default $DERMASSIST_API_KEY)", show_default=False)] = None,
) -> None:
    """Open the clinician UI: photos and context in, a grounded report and follow-up answers out."""

    def body() -> None:
        credentials = read_auth(auth, auth_file)
        if share and not credentials:
            raise ConfigError("--share publishes the UI on the internet: set --auth or --auth-file")
        if not credentials and not _is_loopback(host):
            typer.echo(f"dermassist ui: WARNING: listening on {host} without --auth: anyone who can reach this "
                       "address can use the UI", err=True)
        if endpoint and (flags.config or flags.overrides()):
            raise ConfigError("with --endpoint the server's own model and settings apply; drop the model options")
        workdir = Path(tempfile.mkdtemp(prefix="dermassist-ui-"))  # 0700: this user only
        try:
            serve(workdir, flags, host=host, port=port, credentials=credentials, share=share, endpoint=endpoint,
                  api_key=api_key)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    run_cli(body)


def serve(workdir: Path, flags: ModelFlags, *, host: str, port: int, credentials: list[tuple[str, str]],
          share: bool, endpoint: str | None, api_key: str | None) -> None:
    _log_to_stderr()
    # Gradio reads these when it is imported: uploads land in our private folder, and it phones no one.
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from assistant.core.intake import MAX_FILE_BYTES, PixelBudget
    from assistant.ui.app import UISettings, build_app, css, theme
    from assistant.ui.engine import CaseEngine, EndpointEngine, LocalEngine
    from assistant.ui.examples import write_examples

    engine: CaseEngine
    budget = PixelBudget()
    if endpoint:
        engine = EndpointEngine(endpoint, api_key)
    else:
        from assistant.app.build import build_pipeline

        config = flags.load()
        pipeline = build_pipeline(config)
        budget = pipeline.settings.pixel_budget
        engine = LocalEngine(pipeline, config.active_adapter())
    try:
        demo = build_app(engine, UISettings(sessions=workdir / "sessions", budget=budget),
                         write_examples(workdir / "examples"))
        demo.queue(default_concurrency_limit=1, max_size=64)
        try:
            demo.launch(server_name=host, server_port=port, auth=credentials or None, share=share,
                        max_file_size=MAX_FILE_BYTES, show_error=False, quiet=True, footer_links=["api"],
                        run_history=False, enable_monitoring=False, mcp_server=False, pwa=False, ssr_mode=False,
                        prevent_thread_lock=True, theme=theme(), css=css())
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or 'address in use'})") from None
        typer.echo(f"dermassist ui: open http://{_url_host(host)}:{port} (Ctrl-C to stop); reports from "
                   f"{engine.description}", err=True)
        _wait_for_signal()
        demo.close()
    finally:
        engine.close()


def _log_to_stderr() -> None:
    """The UI's own log lines (what happened, how long it took; never case data) go to stderr."""
    log = logging.getLogger("dermassist.ui")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("dermassist ui: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def read_auth(auth: str | None, auth_file: Path | None) -> list[tuple[str, str]]:
    """``USER:PASSWORD`` pairs from ``--auth`` and ``--auth-file`` (one per line, blank and # lines skipped)."""
    lines: list[tuple[str, str]] = []
    if auth:
        lines.append(("--auth", auth))
    if auth_file:
        if not auth_file.is_file():
            raise ConfigError(f"auth file not found: {auth_file}")
        for n, line in enumerate(auth_file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append((f"{auth_file.name} line {n}", line.strip()))
    pairs = []
    for where, value in lines:
        user, sep, password = value.partition(":")
        if not sep or not user.strip() or not password:
            raise ConfigError(f"{where}: expected USER:PASSWORD")
        pairs.append((user.strip(), password))
    return pairs


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM, so the caller's cleanup (temporary folder, engine) always runs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("dermassist ui: stopping", file=sys.stderr, flush=True)
