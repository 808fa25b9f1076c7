"""End to end, as a user runs it: make-synthetic, then `dermassist eval` (as `python -m eval`) with the tiny
random model through two backends — transformers and vLLM-CPU, in-process engines. The tiny model writes random
reports: assert files and structure, never accuracy. The vLLM run also checks resume (--limit, then the rest) and
that replaying its cache (--replay) reproduces its scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.results import EvalResults
from support.paths import REPO

pytestmark = pytest.mark.slow
ROOT = REPO
FILES = ["results.json", "summary.md", "MODEL_CARD.md", "confusion_matrix.png", "reliability_diagram.png",
         "skin_tone_fitzpatrick.png", "skin_tone_fst_group.png", "skin_tone_fitzpatrick_estimated.png"]


def cli(*args, timeout=900):
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", "eval", *map(str, args)], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    cli("make-synthetic", root, "--n", 8, "--seed", 0)  # every skin type I-VI at least once
    return root


def check_outputs(out: Path, n: int) -> EvalResults:
    for name in FILES:
        assert (out / name).is_file(), name
    res = EvalResults.read(out / "results.json")
    assert res.run.n_samples == n and len(res.records) == n and res.run.prompt_version
    assert res.run.dataset_fingerprint.startswith("sha256:")
    assert {"accuracy", "balanced_accuracy", "macro_f1", "schema_validity", "ece"} <= set(res.metrics)
    acc = res.metrics["accuracy"]
    assert acc.ci_low is not None and acc.ci_high is not None and acc.n == n
    groups = [g for g in res.groups if g.scale == "fitzpatrick"]
    assert [g.group for g in groups] == ["I", "II", "III", "IV", "V", "VI"] and sum(g.n for g in groups) == n
    assert any(g.metrics["accuracy"].ci_low is not None for g in groups if g.n)
    assert any(f.scale == "fitzpatrick" and f.metric == "accuracy" for f in res.fairness)
    card = (out / "MODEL_CARD.md").read_text()
    assert "fitzpatrick" in card and "tiny random-weight demo model" in card
    for rec in res.records:
        assert rec.status == "ok" or rec.error  # failures are recorded, not fatal
    return res


def common(synthetic, out, model):
    return ["--task", "synthetic_ham", "--data", synthetic / "metadata.csv", "--images-root", synthetic / "images",
            "--model", model, "--out", out, "--no-retrieval", "--no-progress"]


def test_transformers_backend(synthetic, tiny_model, tmp_path):
    # transformers on CPU is slow with random weights (~10-40 s/report): a few samples suffice for structure
    cli(*common(synthetic, tmp_path, tiny_model), "--backend", "transformers", "--limit", 3)
    res = check_outputs(tmp_path, 3)
    assert res.run.backend == "transformers" and res.run.n_computed == 3


def test_vllm_backend_and_resume(synthetic, tiny_model, tmp_path):
    args = [*common(synthetic, tmp_path, tiny_model), "--backend", "vllm", "--dtype", "float32", "--enforce-eager",
            "--concurrency", 2]
    cli(*args, "--limit", 3)
    first = check_outputs(tmp_path, 3)
    assert first.run.n_computed == 3
    cli(*args)
    res = check_outputs(tmp_path, 8)
    assert res.run.backend == "vllm" and res.run.n_cached == 3 and res.run.n_computed == 5
    lines = [json.loads(x) for x in (tmp_path / "cache.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and len({x["sample_id"] for x in lines}) == 8
    # results anyone can replay: the run's cache scored again with --replay gives the same numbers
    cli("--task", "synthetic_ham", "--data", synthetic / "metadata.csv", "--images-root", synthetic / "images",
        "--replay", tmp_path / "cache.jsonl", "--model", tiny_model, "--out", tmp_path / "replayed", "--no-progress")
    replayed = check_outputs(tmp_path / "replayed", 8)
    assert replayed.run.backend == "replay" and replayed.run.replay_fingerprint.startswith("sha256:")
    assert {k: m.value for k, m in replayed.metrics.items()} == {k: m.value for k, m in res.metrics.items()}
    assert [r.prediction for r in replayed.records] == [r.prediction for r in res.records]
