"""Fine-tuning settings: dermassist's own (``FinetuneArguments``) beside TRL's ``SFTConfig`` and ``ModelConfig``.

As in TRL's ``trl/scripts/sft.py``, one ``TrlParser`` over the three dataclasses merges a flat YAML file and the
command line once: the file's values become the defaults, ``key=value`` overrides them, and every name is the
library's own (``max_steps``, ``learning_rate``, ``output_dir`` from transformers / TRL; ``lora_r``,
``load_in_4bit`` from TRL's ``ModelConfig``). Before the file is read, the machine decides precision: bf16 on a GPU
that supports it, fp32 on CPU. A key no dataclass knows is an error that names it, never silently ignored.
"""

from __future__ import annotations

import argparse
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.app import config as app_config
from assistant.core.errors import ConfigError

CONFIGS_DIR = Path(__file__).parent / "configs"


@dataclass
class FinetuneArguments:
    """What dermassist adds to TRL's arguments: the recipe, the data, and what happens around training."""

    recipe: str = field(default="lora", metadata={"help": "lora | qlora | full (finetune.recipes.RECIPES)"})
    task: str | None = field(default=None, metadata={
        "help": "eval task (name in eval/tasks or a task YAML) whose dataset becomes the training data"})
    data: str | None = field(default=None, metadata={"help": "dataset file/folder; default: the task's"})
    images_root: str | None = field(default=None, metadata={"help": "images folder; default: the task's"})
    mix_tasks: list[str] = field(default_factory=list, metadata={
        "help": "more tasks mixed in as VQA / caption turns: NAME or NAME=DATA (comma-separated on the command line)"})
    max_samples: int | None = field(default=None, metadata={"help": "use at most N samples per task (first N)"})
    synthetic_n: int = field(default=0, metadata={
        "help": "create the synthetic benchmark (eval.synthetic) with N images at `data` when it is missing"})
    synthetic_seed: int = field(default=0, metadata={"help": "seed of the synthetic benchmark"})
    data_dir: str | None = field(default=None, metadata={
        "help": "where the SFT data and its dataset card go; default <output_dir>/data"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of patients/lesions held out for validation"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of patients/lesions held out for testing"})
    split_seed: int = field(default=0, metadata={"help": "seed of the patient/lesion split"})
    balance: Literal["none", "class", "class_skin_tone"] = field(default="none", metadata={
        "help": "re-draw the training split so each class (or class x skin-tone group) weighs the same"})
    retrieval: bool = field(default=True, metadata={
        "help": "ground prompts in the passages the retriever returns (as inference does)"})
    retrieval_k: int | None = field(default=None, metadata={"help": "passages per prompt; default: the run config's"})
    run_config: str | None = field(default=None, metadata={
        "help": "dermassist run config (assistant/configs/*.yaml) for the retrieval store and settings"})
    freeze_vision_tower: bool = field(default=True, metadata={
        "help": "train the language model only (LoRA: adapters on the language model; full: vision tower frozen)"})
    full_max_params: float = field(default=4.5e9, metadata={
        "help": "the full recipe refuses models above this many parameters (use LoRA or QLoRA)"})
    harness_eval: bool = field(default=True, metadata={
        "help": "at each evaluation, also run the eval harness on the validation split (macro-F1, schema validity)"})
    harness_eval_limit: int | None = field(default=None, metadata={"help": "harness: first N validation samples"})
    harness_max_new_tokens: int | None = field(default=None, metadata={"help": "harness: report token budget"})
    auto_resume: bool = field(default=True, metadata={
        "help": "resume from the newest complete checkpoint in output_dir (a killed run continues)"})
    merge_adapter: bool = field(default=False, metadata={
        "help": "also write the base model with the best adapter merged in (<output_dir>/merged)"})
    export_demo: str | None = field(default=None, metadata={
        "help": "write the merged model as dermassist's packaged demo model into this folder"})


@dataclass(frozen=True)
class ParsedConfig:
    """The three argument sets of one run, plus where they came from."""

    finetune: FinetuneArguments
    training: Any  # trl.SFTConfig
    model: Any  # trl.ModelConfig
    path: Path | None
    overrides: tuple[str, ...]

    def command(self) -> str:
        parts = ["dermassist finetune"] + ([f"--config {self.path}"] if self.path else []) + list(self.overrides)
        return " ".join(parts)


def _parser():
    from transformers import HfArgumentParser
    from trl import ModelConfig, SFTConfig

    return HfArgumentParser((FinetuneArguments, SFTConfig, ModelConfig), exit_on_error=False)


def known_keys() -> set[str]:
    return {action.dest for action in _parser()._actions if action.dest != "help"}


def read_config_file(path: Path) -> dict[str, Any]:
    return app_config.read_config_file(path, "argument names to values")


def _argv(overrides: list[str], list_keys: set[str]) -> list[str]:
    """``key=value`` items as the ``--key value`` arguments argparse reads (lists: comma-separated)."""
    argv: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip().removeprefix("--")
        if not sep or not key:
            raise ConfigError(f"overrides are key=value (e.g. max_steps=5), got {item!r}")
        argv.append(f"--{key}")
        argv += [v for v in value.split(",") if v] if key in list_keys else [value]
    return argv


def _check_keys(keys: list[str], known: set[str], where: str) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown setting {key!r} in {where}{hint}; settings are TRL SFTConfig / "
                              "transformers TrainingArguments, TRL ModelConfig or FinetuneArguments names")


def machine_defaults() -> dict[str, Any]:
    """Precision and device from the machine: bf16 on a GPU that supports it, fp32 on CPU."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": False, "use_cpu": not cuda, "max_length": None, "report_to": ["tensorboard"],
            "dataloader_num_workers": 0}


def parse_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> ParsedConfig:
    """File values < ``key=value`` overrides; machine defaults below both. One-line ``ConfigError`` on problems."""
    parser = _parser()
    known = {a.dest for a in parser._actions if a.dest != "help"}
    list_keys = {a.dest for a in parser._actions if a.nargs in ("+", "*")}
    file_values = read_config_file(path) if path else {}
    env = file_values.pop("env", {}) or {}
    _check_keys(list(file_values), known, path.name if path else "the config")
    argv = _argv(list(overrides), list_keys)
    _check_keys([a[2:] for a in argv if a.startswith("--")], known, "the command line")
    for key, value in {**machine_defaults(), **file_values}.items():
        parser.set_defaults(**{key: value})
    for key, value in env.items():
        os.environ.setdefault(str(key), str(value))
    try:
        ft, training, model, *rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except (argparse.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid fine-tuning setting: {str(exc).splitlines()[0]}") from None
    if rest and rest[0]:
        raise ConfigError(f"unexpected command-line values {' '.join(rest[0])!r}; overrides are key=value")
    return ParsedConfig(ft, training, model, path, tuple(overrides))
