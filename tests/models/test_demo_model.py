"""The default model: the packaged (trained) demo when an install ships one — small and checked against its
checksums before use — else the tiny random model, each announced on stderr for what it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import assistant.models.tiny as tiny
from assistant.core.errors import ConfigError
from assistant.models.tiny import DEMO_MANIFEST, ensure_demo_model, ensure_random_model, is_tiny_model
from finetune.export import export_demo

COMMAND = "dermassist finetune --config finetune/configs/tiny/lora_synthetic.yaml export_demo=assistant/models/demo"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> Path:
    """A demo folder as `finetune ... export_demo=DIR` writes it (here from the random model: same files)."""
    return export_demo(tiny_model, tmp_path_factory.mktemp("demo") / "demo", {"command": COMMAND})


def test_an_exported_demo_is_small_checked_and_says_how_it_was_made(exported):
    assert ensure_demo_model(exported) == exported
    assert (exported / "model.safetensors").stat().st_size <= 20 * 2**20
    manifest = json.loads((exported / DEMO_MANIFEST).read_text())
    assert manifest["command"] == COMMAND
    assert set(manifest["sha256"]) >= {"model.safetensors", "config.json", "tokenizer.json"}


@pytest.mark.parametrize("damage, message", [
    ("flip", "model.safetensors does not match its sha256 checksum"),
    ("delete", "model.safetensors is missing"),
    ("manifest", "no valid DEMO_MODEL.json"),
])
def test_a_damaged_demo_is_a_clear_error(exported, tmp_path, damage, message):
    copy = Path(shutil.copytree(exported, tmp_path / "demo"))
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


def test_default_model_is_the_shipped_demo_else_the_random_model(exported, tmp_path, monkeypatch, tiny_model):
    monkeypatch.setattr(tiny, "DEMO_DIR", tmp_path / "not-shipped")
    path, warning = tiny.default_model()
    assert path == ensure_random_model() == tiny_model and is_tiny_model(path) and "MEANINGLESS" in warning
    monkeypatch.setattr(tiny, "DEMO_DIR", exported)
    assert tiny.default_model() == (exported, tiny.DEMO_WARNING) and "DEMO, NOT MEDICAL" in tiny.DEMO_WARNING
    broken = Path(shutil.copytree(exported, tmp_path / "broken"))
    (broken / "model.safetensors").unlink()
    monkeypatch.setattr(tiny, "DEMO_DIR", broken)
    with pytest.raises(ConfigError, match="damaged"):  # a shipped but damaged demo never falls back silently
        tiny.default_model()
