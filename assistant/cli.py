"""The `dermassist` command line: one app, one subcommand per job.

Every user-caused failure is a ``DermassistError`` and is printed as one line (`error: ...`, exit 1); anything
else is a bug and is printed without internals (exit 2) unless DERMASSIST_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from assistant import __version__
from assistant.errors import CaseError, DermassistError

app = typer.Typer(help="dermassist: grounded, structured dermatology reports from a vision LLM "
                       "(clinical decision support, not a diagnosis).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


class OutputFormat(StrEnum):
    json = "json"
    markdown = "markdown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dermassist {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False) -> None:
    """dermassist command line."""


def _backend_config(model: str | None, backend: str | None, base_url: str | None, api_key: str | None,
                    adapter: str | None, dtype: str | None, config_path: Path | None):
    """Merge --config and flags; with neither a model nor a config, fall back to the tiny demo model."""
    from assistant.backends.base import BackendConfig
    from assistant.config import load_config

    app_config = load_config(config_path) if config_path else None
    base = app_config.backend.model_dump() if app_config else {}
    if model:
        base["model"] = model
    if backend:
        base["backend"] = backend
    if base_url:
        base["base_url"] = base_url
    if api_key:
        base["api_key"] = api_key
    if dtype:
        base["dtype"] = dtype
    if not base.get("model"):
        from assistant.tiny_model import MEANINGLESS_WARNING, ensure_demo_model

        base["model"] = str(ensure_demo_model())
        typer.echo(MEANINGLESS_WARNING, err=True)
    adapter_name = None
    if adapter:
        is_path = base.get("backend", "transformers") != "openai"
        adapter_name = Path(adapter).name if is_path else adapter
        base.setdefault("adapters", {})[adapter_name] = adapter
    backend_config = BackendConfig.model_validate(base)
    retrieval = app_config.retrieval if app_config else None
    return backend_config, adapter_name, retrieval


def run_cli(fn):
    """Run a command body, turning errors into one clean line."""
    try:
        return fn()
    except DermassistError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug: say so without internals, unless debugging
        if os.environ.get("DERMASSIST_DEBUG"):
            raise
        typer.echo(f"error: internal error ({type(exc).__name__}); rerun with DERMASSIST_DEBUG=1 for details",
                   err=True)
        raise typer.Exit(2) from None


@app.command()
def report(
    images: Annotated[list[Path], typer.Argument(help="1-4 images of the same problem (JPEG, PNG, WebP)")],
    age: Annotated[Optional[int], typer.Option(help="age in years")] = None,
    sex: Annotated[Optional[str], typer.Option(help="female | male | other | unknown")] = None,
    fitzpatrick: Annotated[Optional[str], typer.Option(help="Fitzpatrick skin type I-VI (or 1-6)")] = None,
    site: Annotated[Optional[str], typer.Option(help="body site, e.g. 'left forearm'")] = None,
    duration: Annotated[Optional[str], typer.Option(help="e.g. '3 weeks'")] = None,
    symptoms: Annotated[Optional[str], typer.Option(help="comma list of itch,pain,bleeding,growth,change")] = None,
    history: Annotated[Optional[str], typer.Option(help="relevant history")] = None,
    medications: Annotated[Optional[str], typer.Option(help="comma-separated medications")] = None,
    question: Annotated[Optional[str], typer.Option(help="free-text question")] = None,
    modality: Annotated[str, typer.Option(help="clinical | dermoscopy | histopathology")] = "clinical",
    model: Annotated[Optional[str], typer.Option(help="local path or hub id, e.g. Qwen/Qwen2.5-VL-3B-Instruct")] = None,
    backend: Annotated[Optional[str], typer.Option(help="transformers | vllm | openai")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="openai backend: server URL, e.g. http://host:8000/v1")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="openai backend: API key (default $OPENAI_API_KEY)")] = None,
    adapter: Annotated[Optional[str], typer.Option(help="LoRA adapter folder (served name for openai)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="auto | float32 | bfloat16 | float16")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML run config (assistant/configs/*.yaml)")] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="do not ground in guidelines")] = False,
    chroma_url: Annotated[Optional[str], typer.Option(help="use a Chroma server for retrieval")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="json | markdown")] = OutputFormat.json,
    output: Annotated[Optional[Path], typer.Option(help="write the report here instead of stdout")] = None,
) -> None:
    """Write a structured, grounded report for one case."""

    def body():
        from assistant.case import Case, ClinicalContext, Symptoms
        from assistant.config import RetrievalConfig
        from assistant.factory import build_pipeline
        from assistant.render import report_markdown

        try:
            context = ClinicalContext(
                age=age, sex=sex or "unknown", fitzpatrick=fitzpatrick, body_site=site, duration=duration,
                symptoms=Symptoms.from_names((symptoms or "").split(",")), history=history,
                medications=medications, question=question)
            case = Case(images=list(images), modality=modality, context=context)
        except (ValidationError, ValueError) as exc:
            raise CaseError(_validation_message(exc)) from None
        backend_config, adapter_name, retrieval = _backend_config(model, backend, base_url, api_key, adapter,
                                                                  dtype, config)
        retrieval = retrieval or RetrievalConfig()
        retrieval = retrieval.model_copy(update={"enabled": retrieval.enabled and not no_retrieval,
                                                 **({"chroma_url": chroma_url} if chroma_url else {})})
        pipeline = build_pipeline(backend_config, retrieval=retrieval)
        try:
            result = pipeline.run(case, adapter=adapter_name)
        finally:
            pipeline.close()
        text = result.model_dump_json(indent=2) if output_format == OutputFormat.json else report_markdown(result)
        if output:
            output.write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
            typer.echo(f"dermassist: report written to {output}", err=True)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")

    run_cli(body)


@app.command("tiny-model")
def tiny_model(
    directory: Annotated[Path, typer.Argument(help="output folder")],
    arch: Annotated[str, typer.Option(help="qwen2_vl | qwen2_5_vl")] = "qwen2_5_vl",
    lora: Annotated[Optional[Path], typer.Option(help="also write a random LoRA adapter here")] = None,
    seed: Annotated[int, typer.Option(help="weight seed")] = 0,
) -> None:
    """Build a tiny random-weight VLM (offline). Its reports are meaningless: it is for tests and demos."""

    def body():
        from assistant.errors import ConfigError
        from assistant.tiny_model import MEANINGLESS_WARNING, build_tiny_model

        if arch not in ("qwen2_vl", "qwen2_5_vl"):
            raise ConfigError(f"unknown --arch {arch!r}; choose qwen2_vl or qwen2_5_vl")
        out = build_tiny_model(directory, arch, lora_dir=lora, seed=seed)  # type: ignore[arg-type]
        typer.echo(f"tiny {arch} model written to {out}" + (f", LoRA adapter to {lora}" if lora else ""))
        typer.echo(MEANINGLESS_WARNING, err=True)

    run_cli(body)


@app.command()
def schema(output: Annotated[Optional[Path], typer.Option(help="write here instead of stdout")] = None) -> None:
    """Print the Report JSON Schema (the packaged file is assistant/schema/report.schema.json)."""
    from assistant.report import report_json_schema

    text = json.dumps(report_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@app.command("vllm-args")
def vllm_args(
    model: Annotated[str, typer.Argument(help="model path or hub id")],
    lora: Annotated[Optional[list[str]], typer.Option(help="NAME=PATH, repeatable")] = None,
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Print the command that starts a vLLM OpenAI server configured like dermassist's in-process engine."""
    from assistant.backends.vllm_backend import vllm_server_command

    typer.echo(" ".join(vllm_server_command(model, port=port, loras=lora or [])))


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "case"
        return f"invalid case: {where}: {err['msg']}"
    return f"invalid case: {exc}"


def _mount_subapps() -> None:
    """Each surface owns its command module; they import heavy libraries only when a command runs."""
    from assistant.serving.cli import serve
    from eval.cli import app as eval_app
    from rag.cli import app as kb_app

    app.add_typer(kb_app, name="kb")
    app.add_typer(eval_app, name="eval")
    app.command("serve")(serve)


_mount_subapps()


def main() -> None:
    app()
