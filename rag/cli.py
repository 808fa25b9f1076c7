"""`dermassist kb ...` — build, extend, search and inspect the guideline knowledge base."""

import typer

app = typer.Typer(help="Guideline knowledge base: build, add, search, stats.", no_args_is_help=True)
