"""One fine-tuning run, whatever the recipe: data -> model -> TRL ``SFTTrainer`` -> resume -> evaluate -> export.

The recipe (``finetune.recipes``) only loads the model; everything here is shared. Every process of a distributed
run executes this: the data and the tiny base model are built by the main process first, the others reuse them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.core.errors import ConfigError
from finetune.config import ParsedConfig

SUMMARY = "finetune_summary.json"


@dataclass
class Summary:
    output_dir: str
    recipe: str
    base: str
    command: str
    global_step: int
    world_size: int
    resumed_from: str | None
    weights: str  # the adapter (LoRA, QLoRA) or the model (full)
    merged: str | None = None
    demo: str | None = None
    data: str = ""
    best_checkpoint: str | None = None
    best_metric: float | None = None
    metric_for_best_model: str | None = None
    eval_metrics: dict[str, float] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")


def complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint a killed run finished writing (its ``trainer_state.json``, written last, parses)."""
    found = []
    for path in output_dir.glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        state = path / "trainer_state.json"
        if step.isdigit() and state.is_file():
            try:
                json.loads(state.read_text(encoding="utf-8"))
            except ValueError:
                continue
            found.append((int(step), path))
    return max(found)[1] if found else None


def _resume_point(config: ParsedConfig, output_dir: Path) -> Path | None:
    explicit = config.training.resume_from_checkpoint
    if explicit:
        path = Path(explicit)
        if not (path / "trainer_state.json").is_file():
            raise ConfigError(f"resume_from_checkpoint {explicit} is not a complete checkpoint folder")
        return path
    return complete_checkpoint(output_dir) if config.finetune.auto_resume else None


def retrieval_section(ft) -> dict[str, Any]:
    """The ``retrieval:`` overrides the data was built with, so evaluation prompts match training prompts."""
    return {"enabled": ft.retrieval, **({"k": ft.retrieval_k} if ft.retrieval_k is not None else {})}


@dataclass
class Run:
    """A trainer ready to start, with what it was built from."""

    config: ParsedConfig
    trainer: Any
    prepared: Any  # finetune.recipes.Prepared
    data: Any  # finetune.data.build.BuiltData
    train_samples: int


def prepare_run(config: ParsedConfig, *, progress: bool = True) -> Run:
    """Data, model and ``SFTTrainer`` for ``config`` (nothing trained yet)."""
    from trl import SFTTrainer

    from finetune.callbacks import HarnessEvaluation, replace_progress_callbacks
    from finetune.collator import IntakeCollator, hf_dataset
    from finetune.data.build import build_data
    from finetune.harness import HarnessPlan
    from finetune.model import load_processor
    from finetune.recipes import RECIPES

    ft, training = config.finetune, config.training
    output_dir = Path(training.output_dir)
    recipe = RECIPES.get(ft.recipe)
    recipe.check(config)
    data_dir = Path(ft.data_dir) if ft.data_dir else output_dir / "data"
    with training.main_process_first(desc="building the SFT data"):
        data = build_data(ft, data_dir, progress=progress and training.process_index == 0)
    train_records, val_records = data.records("train"), data.records("val")
    evaluating = training.eval_strategy != "no"
    if evaluating and not val_records:
        raise ConfigError("evaluation is on (eval_strategy) but the validation split is empty; raise val_fraction")
    with training.main_process_first(desc="loading the base model"):
        prepared = recipe.prepare(config)
    processor = load_processor(prepared.base)
    trainer = SFTTrainer(model=prepared.model, args=training, train_dataset=hf_dataset(train_records),
                         eval_dataset=hf_dataset(val_records) if evaluating else None, processing_class=processor,
                         data_collator=IntakeCollator(processor, training.max_length), peft_config=prepared.peft_config)
    replace_progress_callbacks(trainer, progress)
    if evaluating and ft.harness_eval and data.eval_task("val").is_file():
        plan = HarnessPlan(task_file=data.eval_task("val"), out_dir=output_dir / "harness", prepared=prepared,
                           run_config=ft.run_config, retrieval=retrieval_section(ft),
                           limit=ft.harness_eval_limit, max_new_tokens=ft.harness_max_new_tokens)
        trainer.add_callback(HarnessEvaluation(trainer, plan.evaluate))
    return Run(config, trainer, prepared, data, len(train_records))


def run(config: ParsedConfig, *, progress: bool = True) -> Summary:
    """Train (resuming a killed run), keep the best weights, merge / export as configured."""
    from finetune.model import count_parameters

    prepared_run = prepare_run(config, progress=progress)
    trainer, prepared = prepared_run.trainer, prepared_run.prepared
    resume = _resume_point(config, Path(config.training.output_dir))
    trainable, total = count_parameters(trainer.model)
    if config.training.process_index == 0:
        print(f"dermassist: {config.finetune.recipe} on {Path(prepared.base).name or prepared.base}: {trainable:,} of "
              f"{total:,} parameters trainable; {prepared_run.train_samples} training samples"
              + (f"; resuming from {resume.name}" if resume else ""), file=sys.stderr, flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return _finish(config, trainer, prepared, prepared_run.data, resume)


def _finish(config: ParsedConfig, trainer, prepared, data, resume: Path | None) -> Summary:
    from finetune.export import export_demo, merge_adapter
    from finetune.recipes import model_dtype

    ft, training = config.finetune, config.training
    output_dir = Path(training.output_dir)
    weights = output_dir / ("adapter" if prepared.peft_config is not None else "model")
    trainer.save_model(str(weights))  # the best checkpoint's weights when load_best_model_at_end is set
    state = trainer.state
    evals = [entry for entry in state.log_history if any(k.startswith("eval_") for k in entry)]
    summary = Summary(output_dir=str(output_dir), recipe=ft.recipe, base=prepared.base, command=config.command(),
                      global_step=state.global_step, world_size=training.world_size,
                      resumed_from=str(resume) if resume else None, weights=str(weights), data=str(data.dir),
                      best_checkpoint=state.best_model_checkpoint,
                      best_metric=state.best_metric, metric_for_best_model=training.metric_for_best_model,
                      eval_metrics={k: v for entry in evals for k, v in entry.items() if k.startswith("eval_")})
    trainer.accelerator.wait_for_everyone()
    if training.process_index == 0:
        merged = weights
        if prepared.peft_config is not None and (ft.merge_adapter or ft.export_demo):
            merged = merge_adapter(prepared.base, weights, output_dir / "merged", model_dtype(config))
            summary.merged = str(merged)
        if ft.export_demo:
            info: dict[str, Any] = {"command": config.command(), "seed": training.seed, "recipe": ft.recipe,
                                    "global_step": state.global_step, "data_fingerprint": data.card.fingerprint,
                                    "eval_metrics": summary.eval_metrics}
            summary.demo = str(export_demo(merged, Path(ft.export_demo), info))
        summary.write(output_dir / SUMMARY)
    return summary
