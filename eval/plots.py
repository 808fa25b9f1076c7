"""PNG plots (matplotlib, Agg backend): confusion matrix, reliability diagram, per-skin-tone bars."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eval.results import EvalResults


def confusion_figure(results: EvalResults):
    """The confusion matrix as a figure whose size grows with the number of labels and the length of their names,
    so no name or title is cut off (rows: labels; columns: labels + other / unmapped / failed)."""
    cm = np.array(results.confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k, cols = len(results.labels), results.confusion_columns or [*results.labels, "other"]
    longest = max(len(c) for c in cols)
    cell = 0.32 if k <= 40 else 0.24
    font = 7 if k <= 40 else 6
    label_in = 0.065 * font / 7 * longest  # inches taken by the longest tick label
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + label_in + cell * len(cols)),
                                    max(3.5, 1.6 + label_in + cell * k)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="equal")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(k), results.labels, fontsize=font)
    for i in range(k):
        for j in range(len(cols)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=font - 1,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted (other = a condition outside the label set)", fontsize=8)
    ax.set_ylabel("label", fontsize=8)
    title = f"{results.run.task}: confusion (colour: row-normalised; numbers: counts)"
    ax.set_title("\n".join(textwrap.wrap(title, width=max(30, int(8 * fig.get_figwidth())))), fontsize=9)
    fig.tight_layout()
    return fig


def confusion_plot(results: EvalResults, path: Path) -> Path | None:
    if not results.confusion or not results.labels:
        return None
    fig = confusion_figure(results)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def reliability_plot(results: EvalResults, path: Path) -> Path | None:
    if not results.calibration:
        return None
    bins = results.calibration
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centres = [(b.lo + b.hi) / 2 for b in bins]
    acc = [b.accuracy if b.accuracy is not None else 0.0 for b in bins]
    ax.bar(centres, acc, width=bins[0].hi - bins[0].lo, edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for c, b in zip(centres, bins, strict=False):
        if b.n:
            ax.text(c, 0.02, str(b.n), ha="center", fontsize=6)
    ece = results.metrics.get("ece")
    ax.set_title(f"Reliability (top differential likelihood); ECE={ece.value:.3f}" if ece and ece.value is not None
                 else "Reliability diagram", fontsize=9)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def skin_tone_plots(results: EvalResults, out_dir: Path) -> list[Path]:
    paths = []
    scales = sorted({g.scale for g in results.groups})
    for scale in scales:
        groups = [g for g in results.groups if g.scale == scale]
        metric = next(iter(groups[0].metrics), None)
        if metric is None:
            continue
        vals = [g.metrics[metric].value for g in groups]
        lo = [g.metrics[metric].ci_low for g in groups]
        hi = [g.metrics[metric].ci_high for g in groups]
        fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(groups), 3.5))
        x = np.arange(len(groups))
        heights = [v if v is not None else 0.0 for v in vals]
        err = np.array([
            [v - lo_ if v is not None and lo_ is not None else 0 for v, lo_ in zip(vals, lo, strict=True)],
            [hi_ - v if v is not None and hi_ is not None else 0 for v, hi_ in zip(vals, hi, strict=True)]])
        ax.bar(x, heights, yerr=err, capsize=3, color="#8c6d5a", edgecolor="black")
        ax.set_xticks(x, [f"{g.group}\nn={g.metrics[metric].n}" for g in groups], fontsize=7)
        est = " (ESTIMATED from image, ITA)" if groups[0].estimated else ""
        ax.set_title(f"{metric} by {scale}{est} (n = samples {metric} used)", fontsize=9)
        ax.set_ylim(0, 1)
        fig.tight_layout()
        path = out_dir / f"skin_tone_{scale}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
