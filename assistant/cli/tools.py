"""Small commands around the model: build the tiny test model, print the report schema, print a vLLM command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.app.options import run_cli


def tiny_model(
    directory: Annotated[Path, typer.Argument(help="output folder")],
    arch: Annotated[str, typer.Option(help="qwen2_vl | qwen2_5_vl")] = "qwen2_5_vl",
    lora: Annotated[Path | None, typer.Option(help="also write a random LoRA adapter here")] = None,
    seed: Annotated[int, typer.Option(help="weight seed")] = 0,
) -> None:
    """Build a tiny random-weight VLM (offline). Its reports are meaningless: it is for tests and demos."""

    def body() -> None:
        from assistant.core.errors import ConfigError
        from assistant.models.tiny import MEANINGLESS_WARNING, build_tiny_model

        if arch not in ("qwen2_vl", "qwen2_5_vl"):
            raise ConfigError(f"unknown --arch {arch!r}; choose qwen2_vl or qwen2_5_vl")
        out = build_tiny_model(directory, arch, lora_dir=lora, seed=seed)  # type: ignore[arg-type]
        typer.echo(f"tiny {arch} model written to {out}" + (f", LoRA adapter to {lora}" if lora else ""))
        typer.echo(MEANINGLESS_WARNING, err=True)

    run_cli(body)


def schema(output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None) -> None:
    """Print the Report JSON Schema (the packaged file is assistant/core/schema/report.schema.json)."""
    from assistant.core.report import report_json_schema

    text = json.dumps(report_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def vllm_args(
    model: Annotated[str, typer.Argument(help="model path or hub id")],
    adapter: Annotated[list[str] | None, typer.Option(
        "--adapter", "--lora", help="LoRA adapter NAME=PATH or PATH (named after its folder), repeatable")] = None,
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Print the command that starts a vLLM OpenAI server configured like dermassist's in-process engine."""

    def body() -> None:
        from assistant.app.options import parse_adapters
        from assistant.backends.vllm_backend import vllm_server_command

        loras = [f"{name}={path}" for name, path in parse_adapters(adapter or []).items()]
        typer.echo(" ".join(vllm_server_command(model, port=port, loras=loras)))

    run_cli(body)
