"""Fine-tuning recipes, one module per method (torchtune's habit: copy and modify a recipe, no inheritance).

A recipe only decides how the model is loaded and what is trained; the data, the TRL ``SFTTrainer`` run, resume,
evaluation and export are shared (``finetune.train``). Recipes are looked up by name in ``RECIPES`` (the
``recipe:`` key of a config); a new method is one module plus one ``RECIPES.register(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from assistant.core.registry import Registry


@dataclass
class Prepared:
    """What a recipe hands the trainer: the model, and the LoRA config when it trains an adapter."""

    model: Any
    base: str  # the base model folder or hub id (adapters are applied to it when serving)
    peft_config: Any | None = None
    quantization: str = "none"  # the base's load-time quantization, as BackendConfig spells it


class Recipe(Protocol):
    name: str

    def check(self, config: Any) -> None:
        """Refuse what cannot run here (before any data is built or weights are read)."""
        ...

    def prepare(self, config: Any) -> Prepared:
        """Load the base model for ``config`` (a ``finetune.config.ParsedConfig``) ready for ``SFTTrainer``."""
        ...


RECIPES: Registry[Recipe] = Registry("fine-tuning recipe", {
    "lora": "finetune.recipes.lora:RECIPE",
    "qlora": "finetune.recipes.qlora:RECIPE",
    "full": "finetune.recipes.full:RECIPE",
})


def model_dtype(config: Any):
    """The model's dtype: ``dtype`` from the config when set, else bf16 / fp16 when training in it, else fp32."""
    import torch

    explicit = getattr(config.model, "dtype", None)
    if explicit and explicit != "auto":
        return getattr(torch, explicit)
    if config.training.bf16:
        return torch.bfloat16
    return torch.float16 if config.training.fp16 else torch.float32
