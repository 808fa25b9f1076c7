"""Cold start stays cheap: each command, run in a fresh interpreter, imports only the libraries its work needs.

Judged by ``sys.modules`` after the command, never by time (speed lives in ``bench/``, see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.kb import built_store_dir
from support.net import free_port
from support.paths import REPO

# What a command must not pay for unless it uses it: model runtimes, the vector database, the servers, the UI.
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "xgrammar", "vllm", "chromadb", "onnxruntime",
         "scipy", "sklearn", "bm25s", "numba", "fastapi", "uvicorn", "gradio", "openai")
SEARCH_NEEDS = {"chromadb", "onnxruntime"}  # the vector store and the query encoder, nothing of torch

PROBE = """
import json, sys
from assistant.cli import app
try:
    app(sys.argv[1:], prog_name="dermassist")
    code = 0
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted(m for m in json.loads(os.environ["HEAVY"]) if m in sys.modules)
print("PROBE " + json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def run_probe(*args: str) -> tuple[int, set[str], str]:
    env = {**os.environ, "HEAVY": json.dumps(HEAVY), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", "import os\n" + PROBE, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env, check=False)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PROBE "))
    found = json.loads(line.removeprefix("PROBE "))
    return found["code"], set(found["heavy"]), proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "code"), [
    (["--help"], 0),
    (["kb", "--help"], 0),
    (["kb", "stats", "--store", "{store}"], 0),
    (["kb", "stats", "--store", "{missing}"], 1),
    (["kb", "search", "rash", "-k", "0", "--store", "{store}"], 1),
    (["kb", "search", "rash", "--condition", "not-a-disease", "--store", "{store}"], 1),
    (["report", "{missing}/lesion.jpg"], 1),
    (["serve", "--help"], 0),
    (["eval", "--help"], 0),
    (["bench", "--help"], 0),
], ids=lambda a: " ".join(a).replace("{store}", "S").replace("{missing}", "M") if isinstance(a, list) else "")
def test_help_stats_and_every_error_path_import_nothing_heavy(args, code, tmp_path):
    store = built_store_dir() if any("{store}" in a for a in args) else None  # --help needs no knowledge base
    args = [a.format(store=store, missing=tmp_path / "none") for a in args]
    exit_code, heavy, output = run_probe(*args)
    assert heavy == set(), output[-2000:]
    assert exit_code == code, output[-2000:]


def test_kb_search_embeds_without_torch():
    code, heavy, output = run_probe("kb", "search", "itchy silvery plaques on elbows and knees", "--store",
                                    str(built_store_dir()))
    assert code == 0 and "psoriasis#" in output.splitlines()[0], output[-2000:]
    assert heavy == SEARCH_NEEDS, output[-2000:]


def test_an_unreachable_chroma_server_fails_without_loading_models():
    code, heavy, output = run_probe("kb", "search", "rash", "--chroma-url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "is not reachable" in output
    assert heavy <= {"chromadb"}, output[-2000:]
