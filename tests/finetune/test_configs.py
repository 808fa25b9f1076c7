"""Every shipped fine-tuning and accelerate config: it starts with the command that runs it and validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core.errors import ConfigError
from eval.task import load_task
from finetune.config import CONFIGS_DIR, parse_config, read_config_file
from finetune.recipes import RECIPES
from support.paths import REPO

CONFIGS = sorted(CONFIGS_DIR.glob("*/*.yaml"))
ACCELERATE = sorted((REPO / "finetune" / "accelerate").glob("*.yaml"))
REQUIRED = {"qwen2_5_vl/3b_lora.yaml", "qwen2_5_vl/3b_qlora.yaml", "qwen2_5_vl/7b_lora.yaml",
            "qwen2_5_vl/7b_qlora.yaml", "qwen2_vl/2b_lora.yaml", "qwen2_vl/2b_qlora.yaml", "medgemma/4b_lora.yaml",
            "tiny/lora_synthetic.yaml"}


def test_the_promised_configs_ship():
    assert {p.relative_to(CONFIGS_DIR).as_posix() for p in CONFIGS} >= REQUIRED


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIGS_DIR).as_posix())
def test_config_starts_with_its_command_and_validates(path: Path):
    rel = path.relative_to(REPO).as_posix()
    lines = path.read_text().splitlines()
    assert lines[0] == f"# Run: dermassist finetune --config {rel}"
    assert lines[1].startswith(f"# Override: dermassist finetune --config {rel} ")
    parsed = parse_config(path)
    ft = parsed.finetune
    assert ft.recipe in RECIPES and parsed.model.model_name_or_path
    for task in [ft.task, *(t.split("=")[0] for t in ft.mix_tasks)]:
        load_task(task)
    if ft.recipe == "qlora":
        assert parsed.model.bnb_4bit_quant_type == "nf4" and parsed.model.use_bnb_nested_quant
    if parsed.training.load_best_model_at_end:
        assert parsed.training.eval_strategy == parsed.training.save_strategy == "steps"
    assert parsed.training.bf16 is False and parsed.training.use_cpu  # precision follows this (CPU) machine
    # the override example in the second line parses too
    overrides = lines[1].split(f"--config {rel} ", 1)[1].split()
    again = parse_config(path, overrides)
    assert again.training.max_steps == 5 and again.training.output_dir == "runs/ft1"


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_start_with_their_command_and_load(path: Path):
    from accelerate.commands.config.config_args import load_config_from_file

    command = f"# Run: accelerate launch --config_file finetune/accelerate/{path.name} -m finetune "
    assert path.read_text().startswith(command)
    config = load_config_from_file(str(path))
    assert config.num_processes >= 2 and config.mixed_precision == "bf16"
    assert {p.name for p in ACCELERATE} >= {"ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml"}


@pytest.mark.parametrize("overrides, message", [
    (["max_stepz=3"], "unknown setting 'max_stepz' in the command line (did you mean 'max_steps'?)"),
    (["learning_rate=fast"], "invalid float value: 'fast'"),
    (["balance=weird"], "invalid choice: 'weird'"),
    (["max_steps"], "overrides are key=value"),
])
def test_bad_overrides_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        parse_config(CONFIGS_DIR / "tiny" / "lora_synthetic.yaml", overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: lora\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="unknown setting 'learning_rat' in bad.yaml"):
        parse_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        parse_config(tmp_path / "missing.yaml")


def test_overrides_win_over_the_file_and_lists_split_on_commas():
    parsed = parse_config(CONFIGS_DIR / "qwen2_5_vl" / "3b_lora.yaml",
                          ["learning_rate=1e-5", "lora_r=4", "lora_target_modules=q_proj,v_proj", "seed=7",
                           "mix_tasks=skincap,mmskin_vqa"])
    assert parsed.training.learning_rate == 1e-5 and parsed.training.seed == 7
    assert parsed.model.lora_r == 4 and parsed.model.lora_target_modules == ["q_proj", "v_proj"]
    assert parsed.finetune.mix_tasks == ["skincap", "mmskin_vqa"]
    assert parsed.command().endswith("seed=7 mix_tasks=skincap,mmskin_vqa")
