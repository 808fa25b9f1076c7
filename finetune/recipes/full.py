"""Full fine-tuning, for small models: every language-model weight trained (the vision tower frozen by default).

It writes a whole model, not an adapter, and needs optimizer state for every weight (~16 bytes per parameter with
AdamW in fp32), so it refuses models above ``full_max_params``; use LoRA or QLoRA for those.
"""

from __future__ import annotations

from assistant.core.errors import ConfigError
from finetune.model import count_parameters, freeze_vision, load_model, resolve_base
from finetune.recipes import Prepared, model_dtype


class FullRecipe:
    name = "full"

    def check(self, config) -> None:
        """Runs anywhere; the size limit is checked once the model's parameter count is known."""

    def prepare(self, config) -> Prepared:
        base = resolve_base(config.model.model_name_or_path)
        model = load_model(base, model_dtype(config), attn_implementation=config.model.attn_implementation)
        _, total = count_parameters(model)
        if total > config.finetune.full_max_params:
            limit = config.finetune.full_max_params
            raise ConfigError(f"the full recipe is for small models: this one has {total / 1e9:.1f}B parameters "
                              f"(limit full_max_params={limit:.3g}); use recipe=lora or qlora")
        if config.finetune.freeze_vision_tower:
            freeze_vision(model)
        return Prepared(model, base)


RECIPE = FullRecipe()
