"""Fine-tuning step cost on a GPU: peak memory and samples/s per method (LoRA, QLoRA) and batch size.

    .venv/bin/python bench/finetune_bench.py [--methods lora,qlora] [--batch-sizes 1,2,4,8] [--seq-len 2048]

The model is a full-size Qwen2.5-VL-3B built from its published configuration with **random weights** (no hub
needed): a training step's compute and memory do not depend on the weight values. Each step is a real forward and
backward pass through dermassist's recipe settings (LoRA r=16 on the language model, vision tower frozen, gradient
checkpointing, bf16; QLoRA: the same on a 4-bit NF4 double-quantised base) on one 448x448 image (256 image tokens)
plus text up to ``--seq-len`` tokens, the size of a report prompt and target with the real tokenizer. Prints a
Markdown table for docs/finetune.md. Needs CUDA (and bitsandbytes for QLoRA).
"""

from __future__ import annotations

import argparse
import time

# Qwen/Qwen2.5-VL-3B-Instruct config.json (published), the values that decide compute and memory.
QWEN2_5_VL_3B = {
    "text_config": {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                    "num_attention_heads": 16, "num_key_value_heads": 2, "max_position_embeddings": 128000,
                    "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
                    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0,
                                        "mrope_section": [16, 24, 24]}},
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                      "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                      "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2},
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "tie_word_embeddings": True,
}
IMAGE_SIDE = 448  # -> 32x32 patches of 14 px -> 256 tokens after the 2x2 merge


def build_model(method: str):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig, Qwen2_5_VLConfig

    from finetune.model import LANGUAGE_LORA

    config = Qwen2_5_VLConfig(**QWEN2_5_VL_3B)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    if method == "qlora":  # quantise the random bf16 weights the way from_pretrained would
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            del model
            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                       bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForImageTextToText.from_pretrained(tmp, quantization_config=quant, dtype=torch.bfloat16,
                                                                device_map={"": 0})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model = model.to("cuda")
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LANGUAGE_LORA, bias="none"))


def batch(batch_size: int, seq_len: int):
    import torch
    from transformers import Qwen2VLImageProcessor

    pixels = Qwen2VLImageProcessor(min_pixels=IMAGE_SIDE**2, max_pixels=IMAGE_SIDE**2)(
        images=[torch.rand(3, IMAGE_SIDE, IMAGE_SIDE) for _ in range(batch_size)], return_tensors="pt",
        do_rescale=False)
    n_image = int(pixels["image_grid_thw"][0].prod()) // 4
    text = torch.randint(0, 150000, (batch_size, seq_len - n_image - 2))
    ids = torch.cat([torch.full((batch_size, 1), QWEN2_5_VL_3B["vision_start_token_id"]),
                     torch.full((batch_size, n_image), QWEN2_5_VL_3B["image_token_id"]),
                     torch.full((batch_size, 1), QWEN2_5_VL_3B["vision_end_token_id"]), text], dim=1)
    return {"input_ids": ids.cuda(), "attention_mask": torch.ones_like(ids).cuda(), "labels": ids.cuda(),
            "pixel_values": pixels["pixel_values"].to("cuda", torch.bfloat16),
            "image_grid_thw": pixels["image_grid_thw"].cuda()}


def bench(method: str, batch_sizes: list[int], seq_len: int, steps: int) -> list[dict]:
    import torch

    model = build_model(method)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rows = []
    for bs in batch_sizes:
        inputs = batch(bs, seq_len)
        torch.cuda.reset_peak_memory_stats()
        try:
            for step in range(steps + 2):
                if step == 2:  # two warm-up steps
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(**inputs).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            rate = bs * steps / (time.perf_counter() - start)
            rows.append({"method": method, "batch": bs, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                         "samples_s": rate})
        except torch.cuda.OutOfMemoryError:
            rows.append({"method": method, "batch": bs, "peak_gib": None, "samples_s": None})
            torch.cuda.empty_cache()
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="lora,qlora")
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("error: this benchmark needs a CUDA GPU")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    rows = [row for method in args.methods.split(",") for row in bench(method, sizes, args.seq_len, args.steps)]
    print(f"GPU: {torch.cuda.get_device_name(0)}; Qwen2.5-VL-3B (random weights), sequence {args.seq_len} tokens "
          f"incl. 256 image tokens, LoRA r=16 on the language model, gradient checkpointing, bf16")
    print("| method | batch | peak memory GiB | samples/s |")
    print("|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "out of memory"
        rate = f"{r['samples_s']:.2f}" if r["samples_s"] is not None else "-"
        print(f"| {r['method']} | {r['batch']} | {peak} | {rate} |")


if __name__ == "__main__":
    main()
