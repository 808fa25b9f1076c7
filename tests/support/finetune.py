"""Small fine-tuning configs for tests: the tiny random model on a few synthetic cases, CPU-sized."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def tiny_settings(synthetic: Path, output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A LoRA run on the tiny random model: no retrieval (short prompts), 2 steps, no evaluation."""
    settings: dict[str, Any] = {
        "recipe": "lora", "model_name_or_path": "tiny-random", "task": "synthetic_ham", "data": str(synthetic),
        "images_root": str(synthetic.parent / "images"), "retrieval": False, "val_fraction": 0.25,
        "test_fraction": 0.25, "output_dir": str(output_dir), "max_steps": 2, "per_device_train_batch_size": 1,
        "learning_rate": 3.0e-3, "lora_r": 8, "lora_alpha": 16, "gradient_checkpointing": False,
        "logging_steps": 1, "save_strategy": "no", "eval_strategy": "no", "report_to": "none", "seed": 0,
    }
    settings.update(overrides)
    return settings


def write_config(path: Path, settings: dict[str, Any], command: str | None = None) -> Path:
    header = f"# Run: {command or f'dermassist finetune --config {path}'}\n"
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path
