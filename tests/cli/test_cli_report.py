"""`dermassist report` as a user runs it: a real subprocess on the default (tiny, built-on-first-use) model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from assistant.core.report import packaged_report_schema

pytestmark = pytest.mark.slow
DERMASSIST = str(Path(sys.executable).parent / "dermassist")


def run(*args: str, check_ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([DERMASSIST, *args], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    if check_ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_json_report_with_retrieval_is_schema_valid_and_grounded(lesion_jpeg):
    proc = run("report", str(lesion_jpeg), "--age", "70", "--site", "scalp", "--symptoms", "bleeding,growth",
               "--fitzpatrick", "2", "--question", "Could this be a skin cancer?", "--format", "json")
    report = json.loads(proc.stdout)
    jsonschema.validate(report, packaged_report_schema())
    assert "MEANINGLESS" in proc.stderr  # the tiny demo model says what it is
    retrieved = set(report["grounding"]["retrieved_ids"])
    assert retrieved and report["provenance"]["retrieval_store_version"]
    cited = {c["id"] for c in report["citations"]}
    assert cited and cited <= retrieved  # the decoder can only cite retrieved passages
    for item in report["differential"]:
        assert set(item["citation_ids"]) <= retrieved
    assert report["triage"]["urgency"] in ("soon", "urgent", "emergency")  # bleeding + growth always escalate
    assert any(a["rule"] == "warning-symptoms" for a in report["safety"])


def test_red_flag_flags_reach_the_safety_layer_and_the_report(lesion_jpeg):
    """A febrile child with a non-blanching rash is an emergency whatever the (random) model writes."""
    from assistant.pipeline.safety.schema import default_rule_set

    proc = run("report", str(lesion_jpeg), "--no-retrieval", "--age", "3", "--fever", "--non-blanching",
               "--not-pregnant", "--fitzpatrick", "V", "--monk", "8", "--format", "json")
    report = json.loads(proc.stdout)
    jsonschema.validate(report, packaged_report_schema())
    assert report["context"]["red_flag_answers"] == {"fever": True, "non_blanching_rash": True, "pregnant": False}
    assert report["context"]["fitzpatrick"] == "V" and report["context"]["monk"] == 8
    assert report["triage"]["urgency"] == "emergency"
    rule = next(a for a in report["safety"] if a["rule"] == "meningococcal-disease")
    assert rule["level"] == "emergency" and rule["action"] == "emergency_sepsis"
    if report["model_triage"]["urgency"] != "emergency":  # the random model may itself say emergency
        assert report["triage"]["action"] == default_rule_set().actions.actions["emergency_sepsis"].text
        assert report["superseded"][0] == {"kind": "action", "text": report["model_triage"]["action"]}


def test_markdown_report_is_readable(lesion_jpeg, tmp_path):
    out = tmp_path / "report.md"
    proc = run("report", str(lesion_jpeg), "--format", "markdown", "--no-retrieval", "--output", str(out))
    text = out.read_text()
    assert "report written to" in proc.stderr
    for heading in ("# Dermatology decision-support report", "**Triage:", "## Findings", "## Differential diagnosis",
                    "## Limitations", "## Sources", "not a diagnosis"):
        assert heading in text
    assert "not grounded in guidelines" in text  # --no-retrieval is visible to the reader


@pytest.mark.parametrize("content, message", [
    (b"this is not an image", "error: image 1 is not a recognised image file"),
    (b"", "error: image 1 is empty"),
])
def test_corrupt_image_is_one_line_and_no_traceback(tmp_path, content, message):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    proc = run("report", str(bad), "--no-retrieval", check_ok=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines and lines[0].startswith(message)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--fitzpatrick", "7"], "Fitzpatrick type must be I-VI"),
    (["--monk", "12"], "Monk skin tone must be 1-10"),
    (["--symptoms", "itch,sneezing"], "unknown symptom(s) sneezing"),
    (["--backend", "tgi"], "unknown backend 'tgi'"),
    (["--backend", "openai"], "needs --base-url"),
])
def test_bad_options_are_clear_errors(lesion_jpeg, args, message):
    proc = run("report", str(lesion_jpeg), "--no-retrieval", *args, check_ok=False)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_image_path(tmp_path):
    proc = run("report", str(tmp_path / "missing.jpg"), "--no-retrieval", check_ok=False)
    assert proc.returncode == 1 and "error: image 1: no such file: missing.jpg" in proc.stderr


def test_tiny_model_command_builds_a_loadable_model_and_adapter(tmp_path, lesion_jpeg):
    proc = run("tiny-model", str(tmp_path / "m"), "--arch", "qwen2_vl", "--lora", str(tmp_path / "a"))
    assert "MEANINGLESS" in proc.stderr
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "a" / "adapter_config.json").is_file()
    proc = run("report", str(lesion_jpeg), "--model", str(tmp_path / "m"), "--adapter", str(tmp_path / "a"),
               "--no-retrieval")
    report = json.loads(proc.stdout)
    assert report["provenance"]["adapter"] == "a" and report["provenance"]["model"] == "m"  # folder name, never a path


def test_schema_command_prints_the_packaged_schema():
    assert json.loads(run("schema").stdout) == packaged_report_schema()


def test_photo_quality_advice_is_a_stderr_warning_and_a_report_limitation(tiny_vllm_server, tmp_path):
    from support.skin import fitzpatrick_rgb, png, skin_photo

    blurred = tmp_path / "blurred.png"
    blurred.write_bytes(png(skin_photo(fitzpatrick_rgb("VI"), blur=3.0)))
    proc = run("report", str(blurred), "--backend", "openai", "--base-url", f"{tiny_vllm_server.base}/v1",
               "--model", "tiny", "--no-retrieval", "--format", "json")
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: image 1 looks blurred: retake it in focus")
    report = json.loads(proc.stdout)  # stdout is the report alone
    assert warnings[0].removeprefix("warning: ") in report["limitations"]
