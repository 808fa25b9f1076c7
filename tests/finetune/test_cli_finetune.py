"""`dermassist finetune` as a user runs it (real subprocesses): progress, TensorBoard, checkpoints, harness evaluation,
an adapter every backend serves, a merged model, resume after a real SIGKILL, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from assistant.core.report import packaged_report_schema
from support.finetune import tiny_settings, write_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
DERMASSIST = str(BIN / "dermassist")


def dermassist(*args, timeout=1500) -> subprocess.CompletedProcess:
    return subprocess.run([DERMASSIST, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_small, tiny_model):
    """One short real run: 4 steps, evaluation (loss + harness) before training and at steps 2 and 4, the best
    adapter kept, merged."""
    root = tmp_path_factory.mktemp("ft")
    settings = tiny_settings(synthetic_small, root / "out", max_steps=4, eval_strategy="steps", eval_steps=2,
                             save_strategy="steps", save_steps=2, load_best_model_at_end=True,
                             metric_for_best_model="eval_loss", greater_is_better=False, harness_eval_limit=1,
                             harness_max_new_tokens=32, report_to="tensorboard", merge_adapter=True,
                             eval_on_start=True)
    config = write_config(root / "tiny.yaml", settings)
    proc = dermassist("finetune", "--config", config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "out", proc


def test_run_reports_progress_and_writes_the_adapter(trained):
    out, proc = trained
    assert proc.stdout.startswith(f"trained 4 steps (lora) -> {out}")
    assert "Traceback" not in proc.stderr
    bar = proc.stderr.replace("\r", "\n").splitlines()
    progress = [line for line in bar if line.startswith("finetune:") and "loss=" in line]
    assert progress and any("4/4" in line for line in progress)
    assert any("<" in line and ("s/step" in line or "step/s" in line) for line in progress)  # ETA and rate
    assert "{'loss'" not in proc.stdout + proc.stderr  # no raw log dicts
    adapter = out / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    summary = json.loads((out / "finetune_summary.json").read_text())
    assert summary["global_step"] == 4 and summary["best_checkpoint"].endswith(("checkpoint-2", "checkpoint-4"))
    assert {"eval_loss", "eval_macro_f1", "eval_schema_validity", "eval_accuracy"} <= set(summary["eval_metrics"])
    assert (out / "data" / "DATASET_CARD.md").is_file() and (out / "data" / "test_task.yaml").is_file()


def test_harness_ran_on_the_validation_split_and_tensorboard_has_the_numbers(trained):
    out, _ = trained
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for step in (0, 2, 4):
        results = json.loads((out / "harness" / f"step-{step}" / "results.json").read_text())
        assert results["run"]["task"] == "synthetic_ham_val" and results["run"]["n_samples"] == 1
        assert {"macro_f1", "schema_validity"} <= set(results["metrics"])
    events = EventAccumulator(str(next(out.glob("runs/*")))).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "eval/macro_f1", "eval/schema_validity"} <= tags
    assert [e.step for e in events.Scalars("eval/macro_f1")] == [0, 2, 4]


def test_training_lowers_the_held_out_loss(trained):
    """The real (if small) improvement CI can afford: the validation split's loss, measured before training by
    `eval_on_start`, is lower after 4 steps. (Not the issue's accuracy bar: docs/finetune.md says where that stands.)"""
    out, _ = trained
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    losses = {e.step: e.value for e in EventAccumulator(str(next(out.glob("runs/*")))).Reload().Scalars("eval/loss")}
    assert sorted(losses) == [0, 2, 4]
    assert losses[4] < losses[0]


def test_adapter_serves_in_transformers_via_the_cli(trained, tiny_model, lesion_jpeg):
    out, _ = trained
    proc = dermassist("report", lesion_jpeg, "--model", tiny_model, "--adapter", f"derm={out / 'adapter'}",
                      "--no-retrieval", "--max-new-tokens", "600", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    jsonschema.validate(report, packaged_report_schema())
    assert report["provenance"]["adapter"] == "derm"


def test_adapter_serves_in_vllm_and_the_merged_model_loads(trained, tiny_model, lesion_jpeg):
    out, _ = trained
    from assistant.backends.base import BackendConfig
    from assistant.backends.registry import create_backend
    from assistant.core.case import Case
    from assistant.pipeline.pipeline import GenerationSettings, PipelineSettings, ReportPipeline

    settings = PipelineSettings(generation=GenerationSettings(max_new_tokens=600))
    pipeline = ReportPipeline(create_backend(BackendConfig(
        backend="vllm", model=str(tiny_model), adapters={"derm": str(out / "adapter")}, dtype="float32",
        enforce_eager=True, max_model_len=4096, enable_prefix_caching=False)), settings=settings)
    try:
        report = pipeline.run(Case(images=[lesion_jpeg]), adapter="derm")  # vLLM's LoRARequest
    finally:
        pipeline.close()
    jsonschema.validate(json.loads(report.model_dump_json()), packaged_report_schema())
    assert report.provenance.adapter == "derm" and report.provenance.backend == "vllm"
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    proc = dermassist("report", lesion_jpeg, "--model", merged, "--no-retrieval", "--max-new-tokens", "600",
                      timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    jsonschema.validate(json.loads(proc.stdout), packaged_report_schema())


def test_resumes_from_the_last_checkpoint_after_a_real_sigkill(tmp_path, synthetic_small, tiny_model):
    out = tmp_path / "out"
    config = write_config(tmp_path / "resume.yaml", tiny_settings(synthetic_small, out, max_steps=12,
                                                                  save_strategy="steps", save_steps=2))
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen([DERMASSIST, "finetune", "--config", str(config), "--no-progress"], stdout=log,
                             stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 1200
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)  # kill -9: no cleanup, no final save
    assert first.wait(timeout=60) == -signal.SIGKILL
    assert not (out / "finetune_summary.json").exists() and not (out / "checkpoint-12").exists()
    second = dermassist("finetune", "--config", config, "--no-progress")
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = [line for line in second.stderr.splitlines() if "resuming from checkpoint-" in line]
    assert resumed, second.stderr[-2000:]
    step = int(resumed[0].rsplit("checkpoint-", 1)[1].split()[0])
    summary = json.loads((out / "finetune_summary.json").read_text())
    assert step >= 2 and summary["global_step"] == 12 and summary["resumed_from"].endswith(f"checkpoint-{step}")
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    logged = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged == sorted(logged) and logged[-1] == 12  # the history continues from the checkpoint


@pytest.mark.parametrize("overrides, message", [
    (["recipe=qlora"], "error: the qlora recipe needs a CUDA GPU"),
    (["recipe=dora"], "error: unknown fine-tuning recipe 'dora'; choose from full, lora, qlora"),
    (["max_stepz=2"], "error: unknown setting 'max_stepz'"),
    (["task=no_such_task"], "error: unknown task 'no_such_task'"),
])
def test_errors_are_one_line(tmp_path, synthetic_small, overrides, message):
    config = write_config(tmp_path / "c.yaml", tiny_settings(synthetic_small, tmp_path / "out"))
    proc = dermassist("finetune", "--config", config, "--no-progress", *overrides)
    assert proc.returncode == 1 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[0].startswith(message) and "Traceback" not in proc.stderr
