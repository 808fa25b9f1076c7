"""The house stays one-way and tidy: import contracts (import-linter), types on the kernel, pipeline and composition
root (mypy), and the explicit lint rule set (ruff). Each runs as users and CI would run it."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.paths import BIN, REPO


def _run(*cmd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_import_contracts_keep_the_house_one_way():
    proc = _run(str(BIN / "lint-imports"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "one-way house KEPT" in proc.stdout


@pytest.mark.slow
def test_kernel_pipeline_and_composition_root_type_check():
    proc = _run(str(BIN / "mypy"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_rule_set_is_clean():
    proc = _run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-4000:]
