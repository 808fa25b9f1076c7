"""Test-wide setup: offline, an isolated DERMASSIST_HOME, and the tiny model built once per session.

Everything runs for real: the tiny random-weight model is built here (seconds, no hub), engines and servers are
started as users start them. Environment variables are set at import so CLI subprocesses inherit them.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
from pathlib import Path

import pytest

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


def lesion_image(size=(320, 240), skin=(224, 180, 150), lesion=(90, 50, 40)):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, skin)
    w, h = size
    ImageDraw.Draw(img).ellipse((w * 0.35, h * 0.3, w * 0.65, h * 0.7), fill=lesion)
    return img


@pytest.fixture
def lesion_jpeg(tmp_path) -> Path:
    path = tmp_path / "lesion.jpg"
    lesion_image().save(path, format="JPEG", quality=90)
    return path


def jpeg_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
