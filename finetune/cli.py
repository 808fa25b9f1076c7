"""`dermassist finetune` — train a LoRA / QLoRA / full fine-tune from a YAML config.

    dermassist finetune --config finetune/configs/tiny/lora_synthetic.yaml
    dermassist finetune --config finetune/configs/qwen2_5_vl/3b_lora.yaml max_steps=5 output_dir=runs/ft1
    accelerate launch --config_file finetune/accelerate/ddp.yaml -m finetune --config FILE   # several GPUs

Overrides are ``key=value`` with TRL / transformers argument names. A killed run resumes from its newest complete
checkpoint when started again. Errors are one line (``error: ...``, exit 1), never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.app.options import user_errors
from assistant.core.errors import ConfigError


@user_errors
def finetune(
    config: Annotated[Path, typer.Option("--config",
                                         help="fine-tuning config (finetune/configs/<model>/<method>.yaml)")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="key=value overrides, TRL / transformers names (e.g. max_steps=5 output_dir=runs/ft1 lora_r=32)",
        show_default=False)] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show the progress bar")] = True,
) -> None:
    """Fine-tune a vision LLM into a better report writer (TRL SFTTrainer + PEFT)."""
    from finetune.config import parse_config

    parsed = parse_config(config, overrides or [])
    from finetune.train import run

    try:
        summary = run(parsed, progress=progress)
    except ValueError as err:  # TRL / transformers reject a setting combination while building the trainer
        raise ConfigError(str(err).splitlines()[0]) from None
    if parsed.training.process_index != 0:
        return
    typer.echo(f"trained {summary.global_step} steps ({summary.recipe}) -> {summary.output_dir}")
    typer.echo(f"  weights: {summary.weights}")
    for label, value in (("merged", summary.merged), ("demo model", summary.demo),
                         ("best checkpoint", summary.best_checkpoint)):
        if value:
            typer.echo(f"  {label}: {value}")
    for name in ("eval_loss", "eval_accuracy", "eval_macro_f1", "eval_schema_validity"):
        if name in summary.eval_metrics:
            typer.echo(f"  {name}: {summary.eval_metrics[name]:.4f}")


def main() -> None:  # `python -m finetune` (what `accelerate launch -m finetune` runs on every process)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(finetune)
    app(prog_name="dermassist finetune")


if __name__ == "__main__":
    sys.exit(main())
