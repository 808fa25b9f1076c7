"""The recipes on the real training path (TRL SFTTrainer on the tiny model, CPU): every trainable weight moves, frozen
weights do not, the loss covers the assistant turn only, and the prompt is token for token what inference sends."""

from __future__ import annotations

import json

import torch

from assistant.core.errors import ConfigError
from assistant.core.intake import load_images
from assistant.core.messages import report_messages, to_hf_messages
from eval.datasets import load_dataset
from finetune.config import machine_defaults, parse_config
from finetune.data.records import case_context
from finetune.recipes import RECIPES
from finetune.train import prepare_run
from support.finetune import tiny_settings, write_config


def prepared(tmp_path, synthetic, **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = parse_config(write_config(tmp_path / "c.yaml", tiny_settings(synthetic, tmp_path / "out", **overrides)))
    return prepare_run(config, progress=False)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_lora_trains_every_adapter_weight_and_nothing_else(tmp_path, synthetic_small):
    run = prepared(tmp_path, synthetic_small)
    model = run.trainer.model
    before = snapshot(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert all("language_model" in name for name in trainable)  # vision tower frozen by default
    assert next(model.parameters()).dtype == torch.float32  # fp32 on CPU
    run.trainer.train()
    after = dict(model.named_parameters())
    moved = {name for name in before if not torch.equal(before[name], after[name].detach())}
    assert moved == trainable


def test_full_recipe_freezes_the_vision_tower_unless_asked(tmp_path, synthetic_small):
    run = prepared(tmp_path, synthetic_small, recipe="full", gradient_checkpointing=True)
    model = run.trainer.model
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".visual." in name and ".merger." not in name for name in frozen)
    before = snapshot(model)
    run.trainer.train()
    assert model.is_gradient_checkpointing
    for name, param in model.named_parameters():
        changed = not torch.equal(before[name], param.detach())
        assert changed == param.requires_grad or "embed_tokens" in name, name  # unused token rows may stay put
    unfrozen = prepared(tmp_path / "u", synthetic_small, recipe="full", freeze_vision_tower=False)
    assert all(p.requires_grad for p in unfrozen.trainer.model.parameters())


def test_lora_on_the_vision_tower_when_unfrozen(tmp_path, synthetic_small):
    run = prepared(tmp_path, synthetic_small, freeze_vision_tower=False)
    names = [n for n, p in run.trainer.model.named_parameters() if p.requires_grad]
    assert any(".visual." in n for n in names) and any("language_model" in n for n in names)


def test_loss_on_the_assistant_turn_only_and_the_inference_prompt(tmp_path, synthetic_small):
    run = prepared(tmp_path, synthetic_small)
    record = run.data.records("train")[0]
    batch = run.trainer.data_collator([{"images": record.images, "prompt": json.dumps(record.prompt),
                                        "completion": json.dumps(record.completion)}])
    processor = run.trainer.processing_class
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    learned = ids[labels != -100]
    target = record.completion[0]["content"][0]["text"]
    assert processor.tokenizer.decode(learned) == target + "<|im_end|>\n"  # the report and the end of the turn
    n_prompt = int((labels == -100).sum())
    assert bool((labels[:n_prompt] == -100).all())  # the prompt (system, context, image) carries no loss
    # the prompt part is exactly what the transformers backend tokenizes for the same case at inference
    sample = next(s for s in load_dataset("ham10000", synthetic_small).samples if f"synthetic_ham:{s.id}" == record.id)
    messages = report_messages(case_context(sample, None), "dermoscopy", load_images(list(sample.images)), [])
    inference = processor.apply_chat_template(to_hf_messages(messages), add_generation_prompt=True, tokenize=True,
                                              return_dict=True, return_tensors="pt")
    assert ids[:n_prompt].tolist() == inference["input_ids"][0].tolist()
    assert torch.equal(batch["pixel_values"], inference["pixel_values"])


def test_precision_follows_the_machine_and_qlora_needs_cuda(tmp_path, synthetic_small):
    defaults = machine_defaults()
    assert defaults["bf16"] is False and defaults["use_cpu"] is True  # this machine has no GPU: fp32
    config = parse_config(write_config(tmp_path / "q.yaml", tiny_settings(synthetic_small, tmp_path, recipe="qlora")))
    try:
        RECIPES.get("qlora").prepare(config)
    except ConfigError as err:
        assert "needs a CUDA GPU" in str(err)
    else:
        raise AssertionError("qlora must refuse a machine without CUDA")
