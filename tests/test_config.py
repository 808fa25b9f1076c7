"""Every packaged run config loads and validates; bad configs give one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import load_config
from assistant.errors import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "assistant" / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_starts_with_its_command(path):
    config = load_config(path)
    assert config.backend.model
    assert path.read_text().startswith(f"# dermassist report lesion.jpg --config assistant/configs/{path.name}")


@pytest.mark.parametrize("text, message", [
    ("backend: [unclosed", "not valid YAML"),
    ("backend:\n  model: m\n  backend: vllm\n  dtype: 3", "dtype"),
    ("backend:\n  model: m\nretrieval:\n  k: 500", "retrieval.k"),
    ("backend:\n  model: m\n  typo_field: 1", "typo_field"),
])
def test_bad_configs(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
