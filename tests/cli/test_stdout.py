"""stdout carries only what the user asked for, on every backend: ``dermassist report --format json > r.json`` must
write a JSON document and nothing else (vLLM logged 90 INFO lines to stdout before it), ``dermassist kb search``
only its ranked list. Libraries' logs belong on stderr.

The transformers backend's report (retrieval on: chroma and sentence-transformers too) is held to the same rule by
``tests/cli/test_cli_report.py::test_json_report_with_retrieval_is_schema_valid_and_grounded``, which parses the
whole of its stdout as one JSON document; ``dermassist serve``'s stdout is checked empty by every server fixture in
``tests/serving``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from assistant.core.report import packaged_report_schema

pytestmark = pytest.mark.slow
DERMASSIST = str(Path(sys.executable).parent / "dermassist")


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([DERMASSIST, *args], capture_output=True, text=True, timeout=900, env=os.environ.copy(),
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_vllm_report_json_on_stdout_is_the_report_and_nothing_else(lesion_jpeg):
    proc = run("report", str(lesion_jpeg), "--format", "json", "--backend", "vllm", "--dtype", "float32",
               "--enforce-eager", "--max-model-len", "4096")
    report = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    jsonschema.validate(report, packaged_report_schema())
    assert report["provenance"]["backend"] == "vllm"
    assert "INFO" in proc.stderr and "EngineCore" in proc.stderr  # vLLM still logs, its engine process too: on stderr


def test_kb_search_prints_only_the_ranked_passages():
    proc = run("kb", "search", "itchy scaly plaque on the elbow", "-k", "3")
    lines = proc.stdout.splitlines()
    assert len(lines) == 6, proc.stdout
    for rank, (head, snippet) in enumerate(zip(lines[::2], lines[1::2], strict=True), start=1):
        assert re.fullmatch(rf"{rank}\. \d\.\d{{3}}  \S+  .+", head), head
        assert snippet.startswith("   ") and snippet.strip()
