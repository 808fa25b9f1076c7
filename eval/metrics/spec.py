"""What a metric is to the harness: a spec in the metric registry, in the lm-evaluation-harness style.

A spec names the metric, how per-sample values become one number (``aggregation``), whether higher is better,
what it needs from the records (``needs``: ground-truth labels, a report, a judge verdict, …), which task types may
ask for it, and its definition with the reference implementation it equals (written into ``results.json``). Its
``compute`` works on index arrays over the run's ``Columns``, so one function serves the whole run, every skin-tone
group and every bootstrap resample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from eval.metrics.columns import Columns

TASK_TYPES = ("classification", "report", "closed_vqa", "open_vqa")
LABEL_TASKS = frozenset({"classification", "report"})


@dataclass(frozen=True)
class Computed:
    value: float | None
    n: int
    n_excluded: int = 0


@dataclass(frozen=True)
class MetricSpec:
    name: str
    aggregation: str  # mean | confusion | top_k | roc_auc | binned | corpus_bleu
    higher_is_better: bool
    needs: frozenset[str]  # label | report | malignancy | answer | references | delta_weights | bertscore | judge
    task_types: frozenset[str]
    definition: str  # one sentence, naming the reference implementation the tests compare against
    compute: Callable[[Columns, np.ndarray], Computed]
    per_group: bool = False  # also computed in every skin-tone group
    headline_for: frozenset[str] = frozenset()  # task types where it gets bootstrap CIs by default
