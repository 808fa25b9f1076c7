"""CLI cold start: each command as a user runs it (a fresh ``dermassist`` process), wall time to its exit.

Commands alternate round by round, so the machine's load drifts onto all of them alike. ``report`` is split with
its own provenance: setup = the process's wall time minus the pipeline's own total (intake, retrieval,
generation, checks) — the imports, config, store and model loading a user waits for before generation starts
(and the process's exit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, Results, Row, clock, median

KB_SEARCH_S = 2.0
REPORT_SETUP_S = 2.0


def _dermassist(*args: str, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = clock()
    proc = subprocess.run([str(Path(sys.executable).parent / "dermassist"), *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=900, check=False)
    elapsed = clock() - started
    if proc.returncode != 0:
        raise SystemExit(f"dermassist {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return elapsed, proc


def run(results: Results, rounds: int = 5) -> None:
    from assistant.models.tiny import default_model
    from bench.kb_bench import store_for
    from bench.report_bench import lesion_image

    default_model()
    store = str(store_for(1_000))  # a real store written by kb build's path (the retrieval section's 1k store)
    image = Path(tempfile.mkdtemp(prefix="bench-start-")) / "lesion.jpg"
    lesion_image().save(image, format="JPEG", quality=90)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "DERMASSIST_RETRIEVAL__STORE": store}
    commands = {
        "dermassist --help": ["--help"],
        "kb stats": ["kb", "stats", "--store", store],
        "kb search": ["kb", "search", "itchy silvery plaques on elbows and knees", "--store", store],
        "report (transformers)": ["report", str(image), "--site", "back", "--symptoms", "change"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    setup: list[float] = []
    names = list(commands)
    _dermassist("--help", env=env)  # first run of the session pays for .pyc files: not a user's cold start
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            elapsed, proc = _dermassist(*commands[name], env=env)
            walls[name].append(elapsed)
            if name.startswith("report"):
                setup.append(elapsed - json.loads(proc.stdout)["provenance"]["timings"]["total_ms"] / 1000)
    for name in names:
        results.add(Row("CLI cold start", name, median(walls[name]), "s",
                        target=KB_SEARCH_S if name == "kb search" else None,
                        why="" if name != "kb search" else "see the import breakdown below"))
    results.add(Row("CLI cold start", "report: import + setup before generation", median(setup), "s",
                    target=REPORT_SETUP_S, note="transformers backend, tiny model, retrieval on",
                    why="importing torch + transformers and loading the model (see below)"))
    results.notes.append(import_breakdown(env))


def import_breakdown(env: dict) -> str:
    """Where a cold ``kb search`` and a cold ``report`` spend their import time (``python -X importtime``)."""
    script = ("import assistant.cli, rag.retriever, chromadb, onnxruntime, tokenizers; "
              "import torch, transformers")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", script], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600, check=False)
    cumulative: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, raw = line.removeprefix("import time:").split("|")
        if raw.startswith("  ") or not cum.strip().isdigit():
            continue  # imported by another package: counted in its parent's cumulative time
        cumulative[raw.strip()] = int(cum) / 1e6
    top = ["assistant.cli", "rag.retriever", "chromadb", "onnxruntime", "tokenizers", "torch", "transformers"]
    shown = ", ".join(f"{name} {cumulative[name]:.2f} s" for name in top if name in cumulative)
    return f"Import time in a fresh interpreter (top-level packages, cumulative, first import wins): {shown}."
