"""Trainer callbacks: a progress bar that shows the loss, and the eval harness run at every evaluation.

transformers' own progress callback prints every log dict to stdout (``tqdm.write``) and its printer callback
``print()``s them; dermassist keeps stdout for what the user asked for, so both are replaced by one bar on stderr
with steps, rate, ETA and the latest loss. The numbers themselves go to TensorBoard (``report_to``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import TrainerCallback

SHOWN = {"loss": "loss", "eval_loss": "eval_loss", "eval_macro_f1": "macro_f1", "eval_schema_validity": "valid"}


class ProgressBar(TrainerCallback):
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.postfix: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if self.enabled and state.is_world_process_zero:
            from tqdm import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="finetune", unit="step",
                            file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        for key, label in SHOWN.items():
            if isinstance(logs.get(key), int | float):
                self.postfix[label] = f"{logs[key]:.4g}"
        self.bar.set_postfix(self.postfix, refresh=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def replace_progress_callbacks(trainer, enabled: bool) -> None:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(ProgressBar(enabled))


class HarnessEvaluation(TrainerCallback):
    """At each evaluation: save the weights, run the eval harness on the validation split, add its metrics.

    The metrics (``eval_macro_f1``, ``eval_schema_validity``, ...) join the evaluation's own (``eval_loss``) before
    the trainer picks the best checkpoint, so ``metric_for_best_model: macro_f1`` keeps the adapter that writes the
    best reports, and they are logged to TensorBoard like every other number. In a multi-process run every rank
    saves (sharded weights need all of them), the main process evaluates and shares the result.
    """

    def __init__(self, trainer, evaluate) -> None:
        self.trainer = trainer
        self.evaluate = evaluate  # (weights_dir, step) -> {"eval_<metric>": value}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        weights = Path(args.output_dir) / "harness" / f"step-{state.global_step}" / "weights"
        self.trainer.save_model(str(weights))
        self.trainer.accelerator.wait_for_everyone()
        scores = self.evaluate(weights, state.global_step) if state.is_world_process_zero else {}
        if args.world_size > 1:
            from accelerate.utils import broadcast_object_list

            shared = [scores]
            broadcast_object_list(shared, from_process=0)
            scores = shared[0]
        if metrics is not None:
            metrics.update(scores)
        self.trainer.log(dict(scores))
