"""Evaluation during training through the eval harness: saved weights -> the real pipeline -> the task's metrics.

The checkpoint is served exactly as a user would serve it (``build_pipeline`` with the transformers backend: the
base model plus the adapter, or the whole fine-tuned model), on the held-out validation split the data build wrote
(``<data>/val_task.yaml``), and scored by ``eval.runner.run_eval``: macro-F1, accuracy and schema validity for
report tasks, the VQA metrics for VQA tasks. On a GPU this loads a second copy of the base model while the
trainer holds the first; on large models evaluate less often (``eval_steps``) or set ``harness_eval=false`` and
run ``dermassist eval`` on the saved adapter afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.recipes import Prepared

ADAPTER_NAME = "finetuned"


@dataclass(frozen=True)
class HarnessPlan:
    task_file: Path  # the validation split as an eval task
    out_dir: Path
    prepared: Prepared
    run_config: str | None
    retrieval: dict[str, Any]  # the retrieval section the data was built with
    limit: int | None = None
    max_new_tokens: int | None = None

    def backend_section(self, weights: Path) -> dict[str, Any]:
        if self.prepared.peft_config is None:  # full fine-tuning: the saved folder is the model
            return {"backend": "transformers", "model": str(weights), "adapters": {}}
        return {"backend": "transformers", "model": self.prepared.base, "adapters": {ADAPTER_NAME: str(weights)},
                "quantization": self.prepared.quantization}

    def evaluate(self, weights: Path, step: int) -> dict[str, float]:
        from assistant.app.build import build_pipeline
        from assistant.app.config import load_app_config
        from eval.runner import EvalSettings, run_eval
        from eval.task import load_task

        overrides: dict[str, Any] = {"backend": self.backend_section(weights), "retrieval": self.retrieval}
        if self.max_new_tokens:
            overrides["generation"] = {"max_new_tokens": self.max_new_tokens}
        config = load_app_config(self.run_config, overrides)
        adapter = ADAPTER_NAME if config.backend.adapters else None
        pipeline = build_pipeline(config)
        try:
            settings = EvalSettings(task=load_task(self.task_file), out_dir=self.out_dir / f"step-{step}",
                                    model=str(config.backend.model), backend="transformers",
                                    adapter=str(weights) if adapter else None, adapter_name=adapter,
                                    retrieval=config.retrieval.enabled, limit=self.limit, progress=False)
            results = run_eval(settings, pipeline)
        finally:
            pipeline.close()
        return {f"eval_{name}": float(m.value) for name, m in results.metrics.items() if m.value is not None}
