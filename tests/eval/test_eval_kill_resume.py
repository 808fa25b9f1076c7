"""A real kill: `dermassist eval` is SIGKILLed mid-run, then rerun; finished samples come from the cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.results import EvalResults

pytestmark = pytest.mark.slow
DERMASSIST = str(Path(sys.executable).parent / "dermassist")


def _cache_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_rerun_after_sigkill_resumes_from_the_cache(tmp_path, tiny_model):
    data = tmp_path / "synthetic"
    subprocess.run([DERMASSIST, "eval", "make-synthetic", str(data), "--n", "8", "--seed", "5"], check=True,
                   capture_output=True, timeout=300)
    out = tmp_path / "run"
    args = [DERMASSIST, "eval", "--task", "synthetic_ham", "--data", str(data / "metadata.csv"), "--images-root",
            str(data / "images"), "--model", str(tiny_model), "--backend", "transformers", "--no-retrieval",
            "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cache = out / "cache.jsonl"
    deadline = time.monotonic() + 300
    while _cache_lines(cache) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed; use more samples"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = _cache_lines(cache)
    assert 2 <= done_before < 8 and not (out / "results.json").exists()

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    results = EvalResults.read(out / "results.json")
    assert results.run.n_samples == 8
    # every sample completed before the kill is reused (a line torn by the kill, if any, is recomputed)
    assert results.run.n_cached >= done_before - 1 and results.run.n_cached + results.run.n_computed == 8
    assert _cache_lines(cache) >= 8
