"""QLoRA: the base model loaded in 4-bit NF4 with double quantisation (bitsandbytes), LoRA adapters in bf16.

CUDA only: bitsandbytes' 4-bit training path needs a GPU (on CPU, 4-bit backward fails with gradient
checkpointing), so on any other machine this recipe stops with a one-line error before loading anything.
"""

from __future__ import annotations

from assistant.core.errors import ConfigError
from finetune.model import load_model, resolve_base
from finetune.recipes import Prepared
from finetune.recipes.lora import lora_config


def require_cuda_bitsandbytes() -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("the qlora recipe needs a CUDA GPU (bitsandbytes 4-bit training); use recipe=lora here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("the qlora recipe needs bitsandbytes: pip install 'dermassist[gpu]'") from None


class QLoraRecipe:
    name = "qlora"

    def check(self, config) -> None:
        require_cuda_bitsandbytes()

    def prepare(self, config) -> Prepared:
        self.check(config)
        from accelerate import PartialState

        model, base = load_quantized(config, device_map={"": PartialState().local_process_index})
        return Prepared(model, base, lora_config(config), quantization="4bit")


def load_quantized(config, device_map):
    """The base in 4-bit NF4 (double quantisation per the config), prepared for k-bit training: (model, base path).

    Separate from the CUDA check so the loading path can be exercised on a CPU where bitsandbytes is installed
    (docs/finetune.md, "On a GPU"); training through it is only supported on CUDA.
    """
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    m, training = config.model, config.training
    compute = torch.bfloat16 if training.bf16 else torch.float16
    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=m.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=m.use_bnb_nested_quant, bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=m.bnb_4bit_quant_storage)
    base = resolve_base(m.model_name_or_path)
    model = load_model(base, compute, attn_implementation=m.attn_implementation, quantization_config=quantization,
                       device_map=device_map)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=training.gradient_checkpointing)
    return model, base

RECIPE = QLoraRecipe()
