"""The command-line plumbing every command shares: the model/backend/adapter/config/generation options, their
merge into an ``AppConfig``, and the one error → exit-status wrapper.

A command opts in with ``@model_options()`` and receives the options as one ``flags: ModelFlags`` argument::

    @app.command()
    @model_options()
    def report(images: list[Path], flags: ModelFlags) -> None:
        config = flags.load()                      # YAML < DERMASSIST_* env < these flags
        pipeline = build_pipeline(config)
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from assistant.app.config import AppConfig, load_app_config
from assistant.core.errors import ConfigError, DermassistError

F = TypeVar("F", bound=Callable[..., Any])

PANEL = "Model and configuration"


@dataclass(frozen=True)
class ModelFlags:
    """The shared options as given on the command line (None: not given, the config file or default decides)."""

    config: Path | None = None
    model: str | None = None
    backend: str | None = None
    adapter: tuple[str, ...] = ()
    base_url: str | None = None
    backend_api_key: str | None = None
    dtype: str | None = None
    max_model_len: int | None = None
    enforce_eager: bool = False
    no_retrieval: bool = False
    chroma_url: str | None = None
    retrieval_k: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The flags as nested config sections; only what was given, so the file and environment fill the rest."""
        backend: dict[str, Any] = {key: value for key, value in (
            ("model", self.model), ("backend", self.backend), ("base_url", self.base_url),
            ("api_key", self.backend_api_key), ("dtype", self.dtype), ("max_model_len", self.max_model_len),
        ) if value is not None}
        if self.enforce_eager:
            backend["enforce_eager"] = True
        adapters = parse_adapters(self.adapter)
        if adapters:
            backend["adapters"] = adapters
        generation = {key: value for key, value in (
            ("max_new_tokens", self.max_new_tokens), ("temperature", self.temperature), ("seed", self.seed),
        ) if value is not None}
        retrieval: dict[str, Any] = {"chroma_url": self.chroma_url} if self.chroma_url else {}
        if self.no_retrieval:
            retrieval["enabled"] = False
        if self.retrieval_k is not None:
            retrieval["k"] = self.retrieval_k
        out: dict[str, Any] = {name: section for name, section in (
            ("backend", backend), ("generation", generation), ("retrieval", retrieval)) if section}
        if adapters:
            out["adapter"] = list(adapters)[-1]  # the last --adapter given is the one reports use
        return out

    def load(self, **extra: Any) -> AppConfig:
        """The ``AppConfig`` for this command: config file < environment < these flags < ``extra`` sections."""
        overrides = self.overrides()
        for section, values in extra.items():
            overrides[section] = {**overrides.get(section, {}), **values} if isinstance(values, dict) else values
        return load_app_config(self.config, overrides)


def parse_adapters(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after its folder); for the openai backend PATH is the served name."""
    adapters: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep:
            name, target = Path(item.rstrip("/")).name, item
        name, target = name.strip(), target.strip()
        if not name or not target:
            raise ConfigError(f"--adapter must be NAME=PATH or PATH, got {item!r}")
        adapters[name] = target
    return adapters


def _options(server: bool) -> list[tuple[str, Any, Any]]:
    """(parameter name, Annotated type, default) of each shared option. ``server``: ``dermassist serve``, whose own
    ``--api-key`` protects the server, so the backend's key is only ``--upstream-api-key`` there."""
    opt = functools.partial(typer.Option, rich_help_panel=PANEL)
    key_names = ("--upstream-api-key",) if server else ("--api-key", "--upstream-api-key")
    base_url_names = ("--upstream", "--base-url") if server else ("--base-url", "--upstream")
    return [
        ("config", Annotated[Path | None, opt("--config", help="YAML run config (assistant/configs/*.yaml); "
                                                             "flags override it")], None),
        ("model", Annotated[str | None, opt("--model", help="local path or hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct),"
                                                           " or the served name (openai); default: the tiny demo "
                                                           "model (meaningless output)")], None),
        ("backend", Annotated[str | None, opt("--backend", help="transformers | vllm | openai (default: openai with "
                                                               "--base-url, vllm on a CUDA machine, else "
                                                               "transformers)")], None),
        ("adapter", Annotated[list[str] | None, opt("--adapter", help="LoRA adapter NAME=PATH or PATH (named after "
                                                                     "its folder); openai: NAME=SERVED_NAME; "
                                                                     "repeatable")], None),
        ("base_url", Annotated[str | None, opt(*base_url_names, help="openai backend: the OpenAI-compatible server, "
                                                                     "e.g. http://127.0.0.1:8001/v1")], None),
        ("backend_api_key", Annotated[str | None, opt(*key_names, envvar="DERMASSIST_UPSTREAM_API_KEY",
                                                      help="openai backend: the server's API key (default "
                                                           "$OPENAI_API_KEY)", show_default=False)], None),
        ("dtype", Annotated[str | None, opt("--dtype", help="auto | float32 | bfloat16 | float16")], None),
        ("max_model_len", Annotated[int | None, opt("--max-model-len", help="vllm: context length")], None),
        ("enforce_eager", Annotated[bool, opt("--enforce-eager", help="vllm: no CUDA graphs (CPU, tests)")], False),
        ("no_retrieval", Annotated[bool, opt("--no-retrieval", help="do not ground in guidelines")], False),
        ("chroma_url", Annotated[str | None, opt("--chroma-url", help="use a Chroma server for retrieval")], None),
        ("retrieval_k", Annotated[int | None, opt("--retrieval-k", min=1, max=20,
                                                  help="guideline passages in the prompt")], None),
        ("max_new_tokens", Annotated[int | None, opt("--max-new-tokens", min=16, help="report token budget")], None),
        ("temperature", Annotated[float | None, opt("--temperature", min=0.0, max=2.0,
                                                    help="0 = greedy (default)")], None),
        ("seed", Annotated[int | None, opt("--seed", help="sampling seed")], None),
    ]


def model_options(*, server: bool = False) -> Callable[[F], F]:
    """Add the shared options to a Typer command; it receives them as ``flags: ModelFlags``."""
    names = {f.name for f in fields(ModelFlags)}

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "flags"]
        shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                  for name, annotation, default in _options(server)]
        assert names == {p.name for p in shared}, "ModelFlags and the option table disagree"

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            given["adapter"] = tuple(given["adapter"] or ())
            return fn(*args, flags=ModelFlags(**given), **kwargs)

        command.__signature__ = signature.replace(parameters=[*own, *shared])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *shared]}
        return command  # type: ignore[return-value]

    return decorate


def run_cli(body: Callable[[], Any]) -> Any:
    """Run a command body: a ``DermassistError`` is one line ``error: …`` (exit 1); anything else is a bug, shown
    without internals (exit 2) unless ``DERMASSIST_DEBUG=1``."""
    try:
        return body()
    except DermassistError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("DERMASSIST_DEBUG"):
            raise
        typer.echo(f"error: internal error ({type(exc).__name__}); rerun with DERMASSIST_DEBUG=1 for details",
                   err=True)
        raise typer.Exit(2) from None



def user_errors(fn: F) -> F:
    """``run_cli`` as a decorator, for commands without shared options."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        return run_cli(lambda: fn(*args, **kwargs))

    return command  # type: ignore[return-value]
