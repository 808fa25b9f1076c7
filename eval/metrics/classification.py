"""Classification metrics over integer-encoded classes, with scikit-learn's definitions.

``y_true`` holds label indices ``0..K-1``; ``y_pred`` holds indices into the run's class list: the K labels first,
then one class per condition predicted outside the label set, then ``unmapped`` (a prediction that maps to no
condition) and ``failed`` (no output). Those extra classes are always wrong, never replaced by a random pick, and
they count as classes where scikit-learn counts them (macro-F1 averages over every class in ``y_true`` or
``y_pred``). Everything comes from one confusion matrix (bincount), so bootstrap resamples stay cheap.
``tests/eval/test_eval_oracles.py`` checks each function against scikit-learn on seeded random predictions.
"""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """C x C counts, rows = truth, columns = prediction (``sklearn.metrics.confusion_matrix`` over range(C))."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true, y_pred) -> float | None:
    """``sklearn.metrics.accuracy_score``; None (not 0) for no samples."""
    t = np.asarray(y_true)
    return float(np.mean(t == np.asarray(y_pred))) if t.size else None


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1, support and predicted count per class, as
    ``sklearn.metrics.precision_recall_fscore_support(zero_division=0)``, except that the recall of a class with
    no true samples is nan (undefined) rather than 0."""
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.full_like(tp, np.nan), where=support > 0)
    denom = 2 * tp + (predicted - tp) + (support - tp)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}


def balanced_accuracy(cm: np.ndarray) -> float | None:
    """``sklearn.metrics.balanced_accuracy_score``: mean recall over the classes present in the truth."""
    pc = per_class(cm)
    present = pc["support"] > 0
    return float(np.mean(pc["recall"][present])) if present.any() else None


def macro_f1(cm: np.ndarray) -> float | None:
    """``sklearn.metrics.f1_score(average="macro", zero_division=0)`` with its default ``labels``: the mean F1 over
    every class present in the truth or the predictions — predictions outside the label set and failed samples
    included, each such class scoring F1 = 0."""
    pc = per_class(cm)
    used = (pc["support"] > 0) | (pc["predicted"] > 0)
    return float(np.mean(pc["f1"][used])) if used.any() else None


def auroc(scores, positive) -> float | None:
    """``sklearn.metrics.roc_auc_score`` (Mann-Whitney U with average ranks for ties); None with one class only."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s))
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b - 1) / 2 + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def baselines(y_true, k: int) -> dict[str, dict[str, float | None]]:
    """Trivial baselines on the evaluated labels: always the majority class (ties: first in label order), and
    uniform chance (expected accuracy 1/K; macro-F1 of the expected confusion matrix)."""
    t = np.asarray(y_true, dtype=np.int64)
    if t.size == 0 or k == 0:
        return {}
    counts = np.bincount(t, minlength=k)
    majority = int(np.argmax(counts))
    cm = confusion(t, np.full_like(t, majority), k)
    present = counts > 0
    prev = counts / counts.sum()
    chance_f1 = 2 * prev * (1 / k) / (prev + 1 / k)
    return {
        "majority": {"accuracy": accuracy(t, np.full_like(t, majority)), "balanced_accuracy": balanced_accuracy(cm),
                     "macro_f1": macro_f1(cm)},
        "chance": {"accuracy": 1 / k, "balanced_accuracy": 1 / k, "macro_f1": float(np.mean(chance_f1[present]))},
    }
