"""LoRA: the base model frozen in its training precision, low-rank adapters trained (on one device or many).

By default the adapters sit on the language model's attention and MLP projections only (vision tower frozen),
which is the adapter every backend serves: PEFT in transformers (``--adapter``) and vLLM's ``LoRARequest``.
"""

from __future__ import annotations

from finetune.model import load_model, lora_targets, resolve_base
from finetune.recipes import Prepared, model_dtype


class LoraRecipe:
    name = "lora"

    def check(self, config) -> None:
        """Runs anywhere: CPU (fp32), one GPU or many (bf16)."""

    def prepare(self, config) -> Prepared:
        base = resolve_base(config.model.model_name_or_path)
        model = load_model(base, model_dtype(config), attn_implementation=config.model.attn_implementation)
        return Prepared(model, base, lora_config(config))


def lora_config(config):
    """A PEFT ``LoraConfig`` from TRL's ``ModelConfig`` names (``lora_r``, ``lora_alpha``, ...)."""
    from peft import LoraConfig

    m = config.model
    return LoraConfig(r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout, bias="none",
                      target_modules=lora_targets(m.lora_target_modules, config.finetune.freeze_vision_tower),
                      modules_to_save=m.lora_modules_to_save, use_rslora=m.use_rslora, use_dora=m.use_dora,
                      task_type=m.lora_task_type)


RECIPE = LoraRecipe()
