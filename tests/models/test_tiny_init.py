"""The demo's base model: the tests' tiny architecture, initialised at a scale where fine-tuning can learn to see.

At transformers' default init (std 0.02) on a 64/128-wide model, fine-tuning never learned image -> class; at
std 0.1 it did (docs/finetune.md, "Learning, and the demo model"). Only the demo's base changes: the tests' random
model (and every test that relies on its near-tied logits) keeps the default."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from assistant.models.tiny import DEMO_INIT_STD, TEST_INIT_STD, ensure_random_model
from finetune.model import resolve_base


def _weights_std(path, name: str) -> float:
    return float(load_file(str(path / "model.safetensors"))[name].std())


def test_the_demo_base_is_the_test_architecture_at_a_larger_init(tiny_model):
    demo = Path(resolve_base("tiny-demo-base"))
    assert str(demo) == str(ensure_random_model(init_std=DEMO_INIT_STD)) != str(tiny_model)
    assert resolve_base("tiny-random") == str(tiny_model) == str(ensure_random_model(init_std=TEST_INIT_STD))
    config, test_config = (json.loads((p / "config.json").read_text()) for p in (demo, tiny_model))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert config["text_config"][key] == test_config["text_config"][key]
    assert config["text_config"]["initializer_range"] == config["vision_config"]["initializer_range"] == DEMO_INIT_STD
    q_proj, patch = "model.layers.0.self_attn.q_proj.weight", "visual.patch_embed.proj.weight"  # as saved
    for name in (q_proj, patch):  # both towers really start at the larger scale, the tests' model at the default
        assert abs(_weights_std(demo, name) - DEMO_INIT_STD) < 0.01
        assert abs(_weights_std(tiny_model, name) - TEST_INIT_STD) < 0.005
    shapes = {k: tuple(v.shape) for k, v in load_file(str(demo / "model.safetensors")).items()}
    assert shapes == {k: tuple(v.shape) for k, v in load_file(str(tiny_model / "model.safetensors")).items()}
