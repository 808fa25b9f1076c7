"""``dermassist bench ...``: the benchmarks (``python -m bench``), from a source checkout.

The ``bench`` package sits beside the product, not in the installed wheel; this command only hands its
arguments over, so it costs nothing at start-up and says clearly when there is no checkout to run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from assistant.app.options import run_cli

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def bench(ctx: typer.Context) -> None:
    """Run the benchmarks: `dermassist bench all [--quick] [--write]` (see `dermassist bench --help`)."""

    def body() -> None:
        from assistant.core.errors import ConfigError

        if (Path.cwd() / "bench" / "__main__.py").is_file() and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # a console script's path does not include the checkout
        try:
            from bench.__main__ import main
        except ImportError:
            raise ConfigError("dermassist bench runs from a source checkout (its bench/ folder); run it from the "
                              "repository root") from None
        raise typer.Exit(main(list(ctx.args) or ["--help"]))

    run_cli(body)
