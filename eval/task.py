"""Tasks as data: the YAML schema of ``eval/tasks/*.yaml`` and its loader.

A new task or dataset is a new YAML file (and, for a new file format, an adapter registered by name); the core
never changes. ``tests/test_eval_tasks.py`` loads and validates every task file.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assistant.core.case import Modality
from assistant.core.errors import ConfigError, first_error
from assistant.core.ontology import default_ontology
from eval.datasets import ADAPTERS
from eval.metrics import metrics_for

TASKS_DIR = Path(__file__).parent / "tasks"
TaskType = Literal["classification", "closed_vqa", "open_vqa", "report"]
SkinToneScale = Literal["fitzpatrick", "fst_group", "monk"]

PROMPT_FIELDS = {"question", "choices"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetSpec(_Strict):
    adapter: str = Field(description="registered adapter name (eval.datasets.ADAPTERS)")
    data: str | None = Field(None, description="default metadata file / folder; --data overrides")
    images_root: str | None = Field(None, description="default images folder; --images-root overrides")
    options: dict = Field(default_factory=dict, description="keyword options for the adapter")
    label_map: dict[str, str] = Field(default_factory=dict, description="dataset label -> condition id")
    unscored_labels: dict[str, str] = Field(default_factory=dict, description="dataset label -> why it is left "
                                            "out of label metrics on purpose (e.g. ISIC 2019 UNK)")
    labels_required: bool = Field(False, description="drop samples whose label does not map (else: counted wrong)")


class SkinToneSpec(_Strict):
    scales: list[SkinToneScale] = Field(default_factory=lambda: ["fitzpatrick", "fst_group", "monk"])
    estimate: bool = Field(False, description="estimate Fitzpatrick from the image (ITA) where no label exists")


class TaskConfig(_Strict):
    name: str
    version: str
    description: str = ""
    type: TaskType
    dataset: DatasetSpec
    modality: Modality = Modality.clinical
    labels: list[str] = Field(default_factory=list, description="the label set (condition ids); [] = as observed")
    prompt: str | None = Field(None, description="template with {question} / {choices}; report tasks: the question")
    metrics: list[str]
    headline: list[str] = Field(default_factory=list, description="metrics with bootstrap CIs; [] = all computed")
    skin_tone: SkinToneSpec = Field(default_factory=SkinToneSpec)
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for 95% CIs (0 = none)")
    seed: int = 0
    bertscore_model: str | None = Field(None, description="local model path for BERTScore; none = not computed")

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        if self.dataset.adapter not in ADAPTERS:
            raise ValueError(f"unknown dataset adapter {self.dataset.adapter!r}; choose from {ADAPTERS.names()}")
        allowed = metrics_for(self.type)
        bad = [m for m in self.metrics + self.headline if m not in allowed]
        if bad:
            raise ValueError(f"metric(s) {bad} not available for {self.type} tasks; choose from {allowed}")
        unknown = [i for i in [*self.labels, *self.dataset.label_map.values()] if i not in default_ontology()]
        if unknown:
            raise ValueError(f"unknown condition id(s) {sorted(set(unknown))} (see docs/kb-spec.md)")
        if self.prompt is not None:
            fields = {f for _, f, _, _ in string.Formatter().parse(self.prompt) if f}
            if fields - PROMPT_FIELDS:
                raise ValueError(f"prompt uses unknown field(s) {sorted(fields - PROMPT_FIELDS)}")
        if self.type in ("closed_vqa", "open_vqa") and self.prompt is None:
            raise ValueError("VQA tasks need a prompt template (e.g. '{question}')")
        return self


def task_files() -> list[Path]:
    return sorted(TASKS_DIR.glob("*.yaml"))


def load_task(name_or_file: str | Path) -> TaskConfig:
    """A task by registered name (``eval/tasks/<name>.yaml``) or by YAML file path."""
    path = Path(name_or_file)
    if not path.is_file():
        path = TASKS_DIR / f"{name_or_file}.yaml"
        if not path.is_file():
            names = ", ".join(p.stem for p in task_files())
            raise ConfigError(f"unknown task {str(name_or_file)!r}: not a file and not one of {names}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"task file {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"task file {path} must be a YAML mapping")
    try:
        return TaskConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"task file {path}: {first_error(err, root='task')}") from None
