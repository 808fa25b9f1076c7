"""Write a run's folder: results.json, summary.md, plots and MODEL_CARD.md ("Model Cards for Model Reporting",
Mitchell et al., 2019)."""

from __future__ import annotations

from pathlib import Path

from eval.plots import confusion_plot, reliability_plot, skin_tone_plots
from eval.results import EvalResults, MetricValue


def fmt(m: MetricValue | None) -> str:
    if m is None or m.value is None:
        return "n/a"
    ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None and m.ci_high is not None else ""
    return f"{m.value:.3f}{ci}"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def metrics_table(results: EvalResults) -> list[str]:
    lines = ["| metric | value [95% CI] | n | excluded (failed, no score) |", "|---|---|---|---|"]
    lines += [f"| {name} | {fmt(m)} | {m.n} | {m.n_excluded or ''} |" for name, m in results.metrics.items()]
    if results.baselines:
        lines += ["", "Trivial baselines on the same labels:", "", "| baseline | metric | value |", "|---|---|---|"]
        for b, vals in results.baselines.items():
            lines += [f"| {b} | {k} | {_num(v)} |" for k, v in vals.items()]
    return lines


def groups_table(results: EvalResults) -> list[str]:
    if not results.groups:
        return ["No skin-tone labels (and no estimate requested): no per-group metrics."]
    lines = []
    for scale in dict.fromkeys(g.scale for g in results.groups):
        groups = [g for g in results.groups if g.scale == scale]
        names = list(groups[0].metrics)
        est = " — ESTIMATED from the image (ITA), not labelled" if groups[0].estimated else ""
        lines += [f"### {scale}{est}", "", "Each cell: value [95% CI] (n = the samples that metric used).", "",
                  "| group | samples | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        lines += [f"| {g.group} | {g.n} | " + " | ".join(f"{fmt(g.metrics[m])} (n={g.metrics[m].n})" for m in names)
                  + " |" for g in groups]
        fair = [f for f in results.fairness if f.scale == scale]
        if fair:
            lines += ["", "| metric | worst group | best group | gap (best - worst) | normalized range |",
                      "|---|---|---|---|---|"]
            lines += [f"| {f.metric} | {f.worst_group} ({_num(f.worst)}) | {f.best_group} ({_num(f.best)}) | "
                      f"{_num(f.gap)} | {_num(f.normalized_range)} |" for f in fair]
        lines.append("")
    return lines


def label_counts_line(results: EvalResults) -> str | None:
    """The headline of label coverage: how many samples were scored and how many labels were left out, and why."""
    r = results.run
    if r.n_labelled is None:
        return None
    left = r.n_label_unmapped + r.n_label_outside + r.n_label_unscored
    line = f"labels: {r.n_labelled} of {r.n_samples} samples scored"
    if left:
        line += (f"; NOT SCORED: {r.n_label_unmapped} label(s) that map to no condition, {r.n_label_outside} outside"
                 f" the label set, {r.n_label_unscored} unscored on purpose (see \"Labels left out\")")
    return line


def _provenance_lines(results: EvalResults) -> list[str]:
    r = results.run
    lines = []
    if r.replay_file:
        lines.append(f"- replayed outputs (no model run here): `{r.replay_file}` ({r.replay_fingerprint})")
    if (j := r.judge) is not None:
        lines.append(f"- LLM judge: `{j.model}` at {j.url} (final diagnosis / final answer only; prompt version"
                     f" {j.prompt_version}): {j.n_judged} verdicts ({j.n_called} asked now, {j.n_cached} cached),"
                     f" {j.n_unsure} unsure, {j.n_errors} that never validated (counted unsure)")
    return lines


def _labels_left_out(results: EvalResults) -> list[str]:
    lines = ["## Labels left out", ""]
    parts = [("Labels that map to no condition id (in the dataset file; left out of label metrics)",
              results.unknown_labels),
             ("Labels outside the task's label set (left out of label metrics)", results.outside_label_set),
             ("Labels the task leaves unscored on purpose", results.unscored_labels)]
    if not any(d for _, d in parts):
        return [*lines, "None: every label mapped into the label set.", ""]
    for title, found in parts:
        if found:
            lines += [f"{title}:", "", *[f"- `{k}`: {v}" for k, v in found.items()], ""]
    return lines


def summary_md(results: EvalResults, plots: list[Path]) -> str:
    r = results.run
    lines = [
        f"# {r.task} v{r.task_version} — {r.model}" + (f" + {r.adapter}" if r.adapter else ""),
        "",
        f"- task type: {r.task_type}; dataset: {r.dataset_adapter} `{r.dataset_path}` ({r.dataset_fingerprint})",
        f"- backend: {r.backend}; prompt version: {r.prompt_version}; retrieval: {r.retrieval}",
        f"- git commit: {r.git_commit or 'unknown'}; seed: {r.seed}; bootstrap resamples: {r.bootstrap}",
        f"- samples: {r.n_samples} (computed now: {r.n_computed}, from cache: {r.n_cached}); errors: {r.n_errors};"
        f" skipped while loading: {r.n_skipped}" + (f"; --limit {r.limit} ({r.sample})" if r.limit else ""),
        *([f"- **{line}**"] if (line := label_counts_line(results)) else []),
        *_provenance_lines(results),
        "",
        "## Metrics",
        "",
        *metrics_table(results),
        "",
        "## Per skin-tone group",
        "",
        *groups_table(results),
    ]
    if results.per_class:
        lines += ["## Per class", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {v.precision:.3f} | {_num(v.recall)} | {v.f1:.3f} | {v.support} |"
                  for c, v in results.per_class.items()]
        lines.append("")
    lines += _labels_left_out(results)
    if results.noncanonical_ids:
        lines += ["## Non-canonical condition ids in the outputs", "",
                  "Normalised through the ontology (or left unmapped, which scores wrong):", ""]
        lines += [f"- `{k}`: {v}" for k, v in results.noncanonical_ids.items()]
        lines.append("")
    if results.metric_definitions:
        lines += ["## Metric definitions", ""]
        lines += [f"- **{k}**: {v}" for k, v in results.metric_definitions.items()]
        lines.append("")
    if results.errors_by_kind:
        lines += ["## Errors", "", *[f"- {k}: {v}" for k, v in results.errors_by_kind.items()], ""]
        first = [rec for rec in results.records if rec.status == "error"][:5]
        lines += [f"  - `{rec.id}`: {rec.error}" for rec in first]
        lines.append("")
    judge_errors = [rec for rec in results.records if rec.judge_error][:5]
    if judge_errors:
        lines += ["## Judge errors", "", *[f"- `{rec.id}`: {rec.judge_error}" for rec in judge_errors], ""]
    if results.skipped:
        lines += ["## Skipped while loading", ""]
        lines += [f"- `{s['id']}`: {s['reason']}" for s in results.skipped[:20]]
        if len(results.skipped) > 20:
            lines.append(f"- … and {len(results.skipped) - 20} more (see results.json)")
        lines.append("")
    if plots:
        lines += ["## Plots", "", *[f"![{p.stem}]({p.name})" for p in plots], ""]
    return "\n".join(lines)


DEMO_WARNING = ("> **This run used the tiny random-weight demo model: every number below is meaningless.** It shows"
                " that the harness works end to end, not how any real model performs.")


def _is_demo_model(model: str) -> bool:
    from assistant.models.tiny import is_tiny_model

    return model in ("demo", "tiny") or is_tiny_model(model)


def model_card(results: EvalResults) -> str:
    r = results.run
    headline = [f"- **{k}**: {fmt(v)} (n={v.n})" for k, v in results.metrics.items()]
    return "\n".join([
        f"# Model card: {r.model}" + (f" + adapter {r.adapter}" if r.adapter else ""),
        "",
        "Following *Model Cards for Model Reporting* (Mitchell et al., 2019). Generated by `dermassist eval`"
        f" on {r.finished_at:%Y-%m-%d}; numbers are from task **{r.task} v{r.task_version}** only.",
        "",
        *([DEMO_WARNING, ""] if _is_demo_model(r.model) else []),
        "## Model details",
        "",
        f"- Model: `{r.model}`; adapter: `{r.adapter or 'none'}`; backend: {r.backend}",
        *_provenance_lines(results),
        f"- dermassist {r.dermassist_version}, prompt version {r.prompt_version}, "
        f"git commit {r.git_commit or 'unknown'}",
        f"- Retrieval-grounded reports: {'yes' if r.retrieval else 'no'}",
        "",
        "## Intended use",
        "",
        "- Clinical decision support for qualified clinicians: a structured, cited description, differential and"
        " triage suggestion for skin images, to be reviewed by a clinician.",
        "- Research on dermatology vision-language models, including fairness across skin tones.",
        "",
        "## Out-of-scope use",
        "",
        "- Diagnosis without clinician review; direct-to-patient use; deciding to *not* refer a lesion.",
        "- Populations, image types or conditions not represented in the evaluation data below.",
        "- Treatment or dosing decisions.",
        "",
        "## Factors",
        "",
        "- Skin tone (Fitzpatrick I-VI, grouped 12/34/56, Monk 1-10 where labelled; image-based ITA estimates are"
        " marked as estimated), image modality, condition.",
        "",
        "## Metrics",
        "",
        "Headline metrics with percentile-bootstrap 95% confidence intervals (fixed seed"
        f" {r.seed}, {r.bootstrap} resamples):",
        "",
        *headline,
        "",
        *metrics_table(results)[len(results.metrics) + 2:],
        "",
        "## Evaluation data",
        "",
        f"- {r.dataset_adapter}: `{r.dataset_path}` (fingerprint {r.dataset_fingerprint}), {r.n_samples} samples"
        f" evaluated, {r.n_skipped} skipped while loading, {r.n_errors} failed (counted wrong).",
        *([f"- {line}."] if (line := label_counts_line(results)) else []),
        "",
        "## Quantitative analyses: per skin-tone group",
        "",
        *groups_table(results),
        "## Ethical considerations",
        "",
        "- Skin-tone groups can be small: read the confidence intervals before the point estimates; a gap with"
        " overlapping intervals is not evidence of parity.",
        "- Labels in public datasets skew to lighter skin; performance on darker skin is often less certain.",
        "",
        "## Caveats and recommendations",
        "",
        "- Results hold for this task, dataset version, prompt version and backend only.",
        "- Unmapped predictions and failed samples count as wrong; labels that did not map are counted above,"
        " listed in summary.md and excluded from label metrics. AUROC and ECE cannot use failed samples (no"
        " score): their number is given next to those metrics.",
        "- A synthetic benchmark measures plumbing and learnability, not clinical performance.",
        "",
    ])


def write_outputs(results: EvalResults, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results.write(out_dir / "results.json")
    plots = [p for p in (confusion_plot(results, out_dir / "confusion_matrix.png"),
                         reliability_plot(results, out_dir / "reliability_diagram.png")) if p]
    plots += skin_tone_plots(results, out_dir)
    (out_dir / "summary.md").write_text(summary_md(results, plots), encoding="utf-8")
    (out_dir / "MODEL_CARD.md").write_text(model_card(results), encoding="utf-8")
    return [out_dir / "results.json", out_dir / "summary.md", out_dir / "MODEL_CARD.md", *plots]
