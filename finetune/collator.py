"""The batch builder: TRL's vision-language collator, fed images through dermassist's own intake.

SFT records hold image *paths*; each batch loads them with ``assistant.core.intake.load_images`` (EXIF orientation,
RGB, metadata stripped, the inference pixel budget) before TRL's ``DataCollatorForVisionLanguageModeling`` renders
the chat template, expands the image tokens and masks the prompt: the loss is on the assistant turn only
(``completion_only_loss``), and the model sees pixels exactly as it will at inference.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.core.intake import PixelBudget, load_images


class IntakeCollator:
    def __init__(self, processor, max_length: int | None = None, budget: PixelBudget | None = None) -> None:
        from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

        self.budget = budget or PixelBudget()
        self.inner = DataCollatorForVisionLanguageModeling(processor=processor, max_length=max_length,
                                                           completion_only_loss=True)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = [{"images": [img.image for img in load_images(list(ex["images"]), self.budget)],
                  "prompt": json.loads(ex["prompt"]), "completion": json.loads(ex["completion"])}
                 for ex in examples]
        return self.inner(batch)


def hf_dataset(records):
    """SFT records as the ``datasets.Dataset`` SFTTrainer takes (messages as JSON text: no Arrow struct merging)."""
    from datasets import Dataset

    return Dataset.from_list([{"images": r.images, "prompt": json.dumps(r.prompt),
                               "completion": json.dumps(r.completion)} for r in records])
