"""The ``dermassist`` command line: one app, one subcommand per job, each mounted from the module that owns it.

Every user-caused failure is a ``DermassistError`` printed as one line (``error: ...``, exit 1); anything else is a
bug, printed without internals (exit 2) unless ``DERMASSIST_DEBUG=1`` (``assistant.app.options.run_cli``). Heavy
libraries are imported inside the commands, so ``dermassist --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from assistant import __version__

app = typer.Typer(help="dermassist: grounded, structured dermatology reports from a vision LLM "
                       "(clinical decision support, not a diagnosis).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dermassist {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False) -> None:
    """dermassist command line."""


def _mount() -> None:
    """Each surface owns its command module; this is the only place that knows them all."""
    from assistant.batch.cli import batch
    from assistant.cli import bench, kb, report, tools
    from assistant.serving.cli import serve
    from assistant.ui.cli import ui
    from eval.cli import app as eval_app
    from finetune.cli import finetune

    app.command()(report.report)
    app.command("serve")(serve)
    app.command("ui")(ui)
    app.command("batch")(batch)
    app.add_typer(kb.app, name="kb")
    app.add_typer(eval_app, name="eval")
    app.command("finetune")(finetune)
    app.command("tiny-model")(tools.tiny_model)
    app.command()(tools.schema)
    app.command("vllm-args")(tools.vllm_args)
    app.command("bench", context_settings=bench.CONTEXT)(bench.bench)


_mount()


def main() -> None:
    app()
