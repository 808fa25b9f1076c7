"""Classification metrics over integer-encoded labels.

``y_true`` holds class indices 0..K-1; ``y_pred`` holds class indices or ``-1`` for a prediction outside the
label set (unmapped text, another condition, a failed sample) — always wrong, never replaced by a random pick.
Everything is computed from one confusion matrix (bincount), so bootstrap resampling stays cheap.
"""

from __future__ import annotations

import numpy as np

OTHER = -1


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """K x (K+1) counts; the last column collects predictions outside the label set."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    p = np.where(p < 0, k, p)
    return np.bincount(t * (k + 1) + p, minlength=k * (k + 1)).reshape(k, k + 1)


def accuracy(y_true, y_pred) -> float | None:
    t = np.asarray(y_true)
    return float(np.mean(t == np.asarray(y_pred))) if t.size else None


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1, support per class; 0/0 precision or F1 is 0; recall of an absent class is nan."""
    k = cm.shape[0]
    tp = np.diag(cm[:, :k]).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm[:, :k].sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.full(k, np.nan), where=support > 0)
    r0 = np.nan_to_num(recall)
    denom = precision + r0
    f1 = np.divide(2 * precision * r0, denom, out=np.zeros(k), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}


def balanced_accuracy(cm: np.ndarray) -> float | None:
    """Mean recall over the classes present in the ground truth."""
    pc = per_class(cm)
    present = pc["support"] > 0
    return float(np.mean(pc["recall"][present])) if present.any() else None


def macro_f1(cm: np.ndarray) -> float | None:
    """Mean F1 over classes present in the ground truth or predicted (as scikit-learn's default)."""
    pc = per_class(cm)
    used = (pc["support"] > 0) | (pc["predicted"] > 0)
    return float(np.mean(pc["f1"][used])) if used.any() else None


def auroc(scores, positive) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None with one class only."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
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
