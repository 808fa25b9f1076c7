"""Test-wide setup: offline, an isolated DERMASSIST_HOME, and the tiny model built once per session.

Everything runs for real: the tiny random-weight model is built here (seconds, no hub), engines and servers are
started as users start them. Environment variables are set at import so CLI subprocesses inherit them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import lesion_image

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="dermassist-test-home-"))
os.environ.setdefault("DERMASSIST_HOME", str(_SESSION_HOME))
for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False",
                   "ANONYMIZED_TELEMETRY": "False", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Qwen2.5-VL plus a random LoRA adapter (``tiny_model.parent / 'lora'``)."""
    from assistant.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_model(root / "qwen2_5_vl", "qwen2_5_vl", lora_dir=root / "lora")


@pytest.fixture(scope="session")
def tiny_lora(tiny_model) -> Path:
    return tiny_model.parent / "lora"


@pytest.fixture
def lesion_jpeg(tmp_path) -> Path:
    path = tmp_path / "lesion.jpg"
    lesion_image().save(path, format="JPEG", quality=90)
    return path
