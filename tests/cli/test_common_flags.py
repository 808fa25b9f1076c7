"""Every command that runs a model accepts the same model/backend/adapter/config/generation flags (one definition
in assistant/app/options.py), and a bad value is the same one-line error everywhere."""

from __future__ import annotations

import subprocess

import pytest
import typer

from assistant.app.options import ModelFlags
from assistant.cli import app
from support.paths import BIN

SHARED = {"--config", "--model", "--backend", "--adapter", "--base-url", "--dtype", "--max-model-len",
          "--enforce-eager", "--no-retrieval", "--chroma-url", "--retrieval-k", "--max-new-tokens", "--temperature",
          "--seed"}
MODEL_COMMANDS = [("report",), ("serve",), ("eval",)]


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name] if name in getattr(command, "commands", {}) else command
    return command


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_model_command_has_the_shared_flags(path):
    names = {opt for param in _command(path).params for opt in param.opts}
    assert names >= SHARED, SHARED - names


def test_flag_table_matches_modelflags():
    params = {p.name for p in _command(("report",)).params}
    assert {f for f in ModelFlags.__dataclass_fields__} <= params


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_bad_config_is_one_line_everywhere(path, tmp_path, lesion_jpeg):
    bad = tmp_path / "bad.yaml"
    bad.write_text("generation:\n  max_new_tokens: 1\n")
    args = {"report": [str(lesion_jpeg)], "serve": [], "eval": ["--task", "synthetic_ham"]}[path[0]]
    proc = subprocess.run([str(BIN / "dermassist"), *path, *args, "--config", str(bad)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: bad.yaml: generation.max_new_tokens: Input should be greater than or equal to 16")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
