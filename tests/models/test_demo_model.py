"""The packaged demo model: small, checked against its checksums before use, and trained — its first report is a
coherent report about a synthetic lesion class (still a demo, not medical)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from assistant.core.ontology import default_ontology
from assistant.models.tiny import DEMO_DIR, DEMO_MANIFEST, ensure_demo_model, ensure_random_model, is_tiny_model
from eval.task import load_task
from finetune.data.targets import load_targets
from support.paths import REPO


def test_the_shipped_demo_is_small_checked_and_says_how_it_was_made():
    path = ensure_demo_model()
    assert path == DEMO_DIR and not is_tiny_model(path)  # trained, not the random test model
    assert (path / "model.safetensors").stat().st_size <= 20 * 2**20
    manifest = json.loads((path / DEMO_MANIFEST).read_text())
    assert manifest["command"].startswith("dermassist finetune --config finetune/configs/tiny/lora_synthetic.yaml")
    assert set(manifest["sha256"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    tracked = subprocess.run(["git", "ls-files", "assistant/models/demo/model.safetensors"], cwd=REPO,
                             capture_output=True, text=True).stdout.strip()
    ignored = subprocess.run(["git", "check-ignore", "-q", "assistant/models/demo/model.safetensors"], cwd=REPO)
    assert tracked or ignored.returncode == 1  # .gitignore's *.safetensors has an exception for this one file


@pytest.mark.parametrize("damage, message", [
    ("flip", "model.safetensors does not match its sha256 checksum"),
    ("delete", "model.safetensors is missing"),
    ("manifest", "no valid DEMO_MODEL.json"),
])
def test_a_damaged_demo_is_a_clear_error(tmp_path, damage, message):
    copy = Path(shutil.copytree(DEMO_DIR, tmp_path / "demo"))
    weights = copy / "model.safetensors"
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01
        weights.write_bytes(bytes(data))
    elif damage == "delete":
        weights.unlink()
    else:
        (copy / DEMO_MANIFEST).write_text("{not json")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        ensure_demo_model(copy)


def test_random_model_is_still_built_for_tests(tiny_model):
    assert tiny_model == ensure_random_model() and is_tiny_model(tiny_model)


@pytest.mark.slow
def test_first_report_is_coherent_about_a_synthetic_class():
    cmd = [str(Path(sys.executable).parent / "dermassist"), "report", str(REPO / "docs/example-lesion.jpg"), "--format",
           "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEMO, NOT MEDICAL" in proc.stderr
    report = json.loads(proc.stdout)
    labels = load_task("synthetic_ham").labels
    diagnosis = report["diagnosis"]["condition_id"]
    assert diagnosis in labels  # a synthetic lesion class, by its ontology name
    assert report["differential"][0]["condition_id"] == diagnosis
    expected = load_targets().findings_for(diagnosis, default_ontology()).model_dump()
    assert report["findings"] == expected  # the findings describe that same class
    assert "not a diagnosis" in report["disclaimer"]
