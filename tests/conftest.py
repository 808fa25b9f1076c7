"""Test-wide setup: offline, an isolated DERMASSIST_HOME, and the tiny model built once per session.

Everything runs for real: the tiny random-weight model is built here (seconds, no hub), engines and servers are
started as users start them. Environment variables are set at import so CLI subprocesses inherit them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from support.images import lesion_image

# Never the user's real cache. DERMASSIST_TEST_HOME keeps one folder across runs (skips rebuilding model and KB).
os.environ["DERMASSIST_HOME"] = os.environ.get("DERMASSIST_TEST_HOME") or tempfile.mkdtemp(
    prefix="dermassist-test-home-")
for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False",
                   "ANONYMIZED_TELEMETRY": "False", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny *random-weight* Qwen2.5-VL, built once into the session's DERMASSIST_HOME.

    Deliberately not the packaged (trained) demo model: tests that compare backends or show that a LoRA changes the
    output need near-tied random logits, not a model that confidently writes one report."""
    from assistant.models.tiny import ensure_random_model

    return ensure_random_model()


@pytest.fixture(scope="session")
def tiny_lora(tiny_model, tmp_path_factory) -> Path:
    """A random LoRA adapter for the tiny model (it changes greedy output)."""
    from assistant.models.tiny import build_tiny_lora

    return build_tiny_lora(tiny_model, tmp_path_factory.mktemp("lora") / "lora")


@pytest.fixture(scope="session")
def tiny_vllm_server(tiny_model, tiny_lora):
    """One real vLLM OpenAI server for the session: the tiny model as `tiny`, its LoRA as `lora`."""
    from support import servers as serve_support
    from support.net import free_port

    server = serve_support.vllm_server(str(tiny_model), free_port(), loras=[f"lora={tiny_lora}"],
                                       log_name="vllm-tiny")
    yield server
    server.stop()


@pytest.fixture
def lesion_jpeg(tmp_path) -> Path:
    path = tmp_path / "lesion.jpg"
    lesion_image().save(path, format="JPEG", quality=90)
    return path
