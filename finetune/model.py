"""Model pieces the recipes share: which base to load, which modules LoRA adapts, what "vision tower" means.

Module names follow transformers 5 for the supported families: Qwen2-VL / Qwen2.5-VL (``model.language_model``,
``model.visual`` with its ``merger``) and Gemma 3 / MedGemma (``model.language_model``, ``model.vision_tower``,
``model.multi_modal_projector``).
"""

from __future__ import annotations

import re
from pathlib import Path

from assistant.core.errors import ConfigError
from assistant.models.tiny import DEMO_INIT_STD, TEST_INIT_STD

# The tiny random models dermassist builds offline (assistant.models.tiny), by name in configs: (arch, init std).
# ``tiny-demo-base`` is the demo model's base: the same architecture, initialised so that training can learn to see.
TINY_BASES = {"tiny-random": ("qwen2_5_vl", TEST_INIT_STD), "tiny-random-qwen2_5_vl": ("qwen2_5_vl", TEST_INIT_STD),
              "tiny-random-qwen2_vl": ("qwen2_vl", TEST_INIT_STD), "tiny-demo-base": ("qwen2_5_vl", DEMO_INIT_STD)}
LANGUAGE_LORA = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VISION_LORA = (r".*(visual|vision_tower|multi_modal_projector).*\."
               r"(qkv|proj|q_proj|k_proj|v_proj|out_proj|fc1|fc2|gate_proj|up_proj|down_proj|linear|mlp\.0|mlp\.2)")
VISION_TOWER = re.compile(r"(^|\.)(visual|vision_tower)\.")
PROJECTOR = re.compile(r"(^|\.)(merger|multi_modal_projector)\.")


def resolve_base(name_or_path: str | None) -> str:
    """A hub id or folder as given; ``tiny-random[-<arch>]`` builds (once) the tiny random model and names it."""
    if not name_or_path:
        raise ConfigError("no base model: set `model_name_or_path` (a hub id, a local folder or tiny-random)")
    if name_or_path in TINY_BASES:
        from assistant.models.tiny import ensure_random_model

        arch, init_std = TINY_BASES[name_or_path]
        return str(ensure_random_model(arch, init_std=init_std))  # type: ignore[arg-type]
    return name_or_path


def lora_targets(explicit: list[str] | None, freeze_vision_tower: bool) -> str | list[str]:
    """The modules LoRA adapts: the config's list, else the language model (plus the vision side when unfrozen).

    Adapters on the language model only are what vLLM's ``LoRARequest`` serves by default; an adapter that also
    covers the vision tower needs vLLM's ``enable_tower_connector_lora`` (or a merge into the base).
    """
    if explicit:
        return explicit
    return LANGUAGE_LORA if freeze_vision_tower else f"({LANGUAGE_LORA}|{VISION_LORA})"


def freeze_vision(model) -> int:
    """Freeze the vision encoder (not its projector into the language model); returns the parameters frozen."""
    frozen = 0
    for name, param in model.named_parameters():
        if VISION_TOWER.search(name) and not PROJECTOR.search(name):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


def load_model(path: str, dtype, *, attn_implementation: str | None = None, **kwargs):
    """``AutoModelForImageTextToText`` from a hub id or folder; a missing model is a one-line ``ConfigError``."""
    from transformers import AutoModelForImageTextToText

    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, **extra, **kwargs)
    except OSError as exc:
        raise ConfigError(f"cannot load base model {Path(path).name or path!r}: {str(exc).splitlines()[0]}") from None


def load_processor(path: str):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path)
    except OSError as exc:
        raise ConfigError(f"cannot load the processor of {path!r}: {str(exc).splitlines()[0]}") from None
    if not hasattr(processor, "image_processor"):
        raise ConfigError(f"{path!r} has no image processor (is torchvision importable? run ./install.sh)")
    return processor
