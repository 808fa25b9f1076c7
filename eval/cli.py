"""`dermassist eval ...` — score reports on benchmarks."""

import typer

app = typer.Typer(help="Evaluate models on dermatology benchmarks.", no_args_is_help=True)
