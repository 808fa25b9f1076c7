"""How far the QLoRA recipe runs without a GPU: its own 4-bit loading path on the tiny model, on CPU.

    pip install bitsandbytes && .venv/bin/python bench/qlora_cpu_check.py

``dermassist finetune`` refuses ``recipe=qlora`` without CUDA (bitsandbytes' 4-bit training is only supported
there). This check calls the recipe's ``load_quantized`` directly with ``device_map=cpu``: the base is loaded in
4-bit NF4 with double quantisation, prepared for k-bit training, wrapped in the recipe's LoRA, and one forward and
backward pass runs. It prints what it found (quantised layers, quant type, trainable parameters, loss, finite
gradients); it says nothing about CUDA kernels, memory or speed (bench/finetune_bench.py, on a GPU).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import yaml


def main() -> None:
    import bitsandbytes as bnb
    from peft import get_peft_model

    from finetune.config import parse_config
    from finetune.recipes.lora import lora_config
    from finetune.recipes.qlora import load_quantized

    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "qlora.yaml"
        settings = {"recipe": "qlora", "model_name_or_path": "tiny-random", "task": "synthetic_ham",
                    "output_dir": tmp, "bnb_4bit_quant_type": "nf4", "use_bnb_nested_quant": True, "lora_r": 8,
                    "lora_alpha": 16, "gradient_checkpointing": False, "report_to": "none"}
        config_file.write_text(f"# Run: python bench/qlora_cpu_check.py\n{yaml.safe_dump(settings)}", encoding="utf-8")
        config = parse_config(config_file)
    model, _ = load_quantized(config, device_map={"": "cpu"})
    quantised = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    state = quantised[0].weight.quant_state
    model = get_peft_model(model, lora_config(config))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ids = torch.randint(10, 200, (1, 32))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    finite = all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    print(f"4-bit layers: {len(quantised)}; quant type: {state.quant_type}; double quantisation: {state.nested}; "
          f"trainable (LoRA) parameters: {trainable}; loss: {float(loss):.3f}; gradients finite: {finite}")


if __name__ == "__main__":
    main()
