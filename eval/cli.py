"""`dermassist eval ...` — score reports on benchmarks.

    dermassist eval --task synthetic_ham --data data/synthetic/metadata.csv            # the demo model
    dermassist eval --task synthetic_ham --replay outputs.jsonl --judge-url http://127.0.0.1:8001/v1 --judge-model M
    dermassist eval compare runs/a runs/b
    dermassist eval make-synthetic data/synthetic --n 140 --seed 0

Errors are printed as ``error: <message>`` on stderr with exit status 1, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from assistant.app.options import ModelFlags, model_options, run_cli, user_errors
from assistant.core.errors import ConfigError

app = typer.Typer(help="Evaluate models on dermatology benchmarks.", add_completion=False)


@app.callback(invoke_without_command=True)
@model_options()
def evaluate(
    ctx: typer.Context,
    flags: ModelFlags,
    task: str = typer.Option(None, "--task", help="task name (eval/tasks/<name>.yaml) or a task YAML file"),
    images_root: Path = typer.Option(None, "--images-root", help="folder the dataset's image names resolve in"),
    data: Path = typer.Option(None, "--data", help="dataset metadata file / folder (overrides the task's)"),
    limit: int = typer.Option(None, "--limit", min=1, help="evaluate N samples (see --sample)"),
    sample: str = typer.Option("stratified", "--sample", help="how --limit chooses: 'stratified' (seeded by the "
                               "task's seed, every label represented when N allows) or 'first' (the first N rows)"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="samples in flight (threads)"),
    out: Path = typer.Option(None, "--out", help="output folder (default runs/eval/<task>)"),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help="local encoder folder for BERTScore"),
    replay: Path = typer.Option(None, "--replay", help="score saved outputs: JSONL of sample_id + report | "
                                "answer | error (or an earlier run's cache.jsonl); no model is run"),
    judge_url: str = typer.Option(None, "--judge-url", help="LLM judge: OpenAI-compatible base URL (…/v1)"),
    judge_model: str = typer.Option(None, "--judge-model", help="LLM judge: the served model name"),
    judge_api_key: str = typer.Option(None, "--judge-api-key", envvar="DERMASSIST_JUDGE_API_KEY",
                                      help="LLM judge API key (or DERMASSIST_JUDGE_API_KEY)", show_default=False),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Run a task: dermassist eval --task NAME_OR_FILE [--model ... --backend ...] [options]."""
    if ctx.invoked_subcommand is not None:
        return

    def body():
        if not task:
            raise ConfigError("missing --task (a name from eval/tasks/ or a task YAML file); see dermassist eval "
                              "--help")
        if replay and (flags.backend or flags.base_url):
            raise ConfigError("--replay scores saved outputs: --backend and --base-url do not apply")
        if bool(judge_url) != bool(judge_model):
            raise ConfigError("the LLM judge needs both --judge-url and --judge-model")
        if sample not in ("stratified", "first"):
            raise ConfigError(f"--sample must be 'stratified' or 'first', not {sample!r}")
        config = flags.load()  # a bad config fails first, before any data or model is read
        judge = pipeline = None
        try:
            from eval.outputs import label_counts_line
            from eval.runner import EvalSettings, load_task_dataset, run_eval
            from eval.task import load_task

            cfg = load_task(task)
            load_task_dataset(cfg, data, images_root)  # fail on bad data before a model is loaded
            if judge_url:
                from eval.judge import Judge

                judge = Judge(judge_url, judge_model, judge_api_key)
                judge.check()  # fail on a judge that is down before a long run
            bert = None
            if bertscore_model or cfg.bertscore_model:
                from eval.metrics.bertscore import BertScorer

                bert = BertScorer(bertscore_model or cfg.bertscore_model)
            adapter_name = adapter = None
            if replay:
                from eval.replay import ReplayPipeline

                pipeline = ReplayPipeline(replay)
                model, backend = flags.model or pipeline.model_name(), "replay"
            else:
                from assistant.app.build import build_pipeline

                pipeline = build_pipeline(config)
                model, backend = pipeline.backend.config.model, pipeline.backend.name
                adapter_name = config.active_adapter()
                adapter = config.backend.adapters.get(adapter_name) if adapter_name else None
            settings = EvalSettings(task=cfg, out_dir=out or Path("runs") / "eval" / cfg.name, model=model,
                                    backend=backend, adapter=adapter, adapter_name=adapter_name, data=data,
                                    images_root=images_root, retrieval=config.retrieval.enabled, limit=limit,
                                    sample=sample, concurrency=concurrency, progress=progress)
            results = run_eval(settings, pipeline, bert, judge)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{type(err).__name__}: {err}") from None
        finally:
            for resource in (pipeline, judge):
                if resource is not None:
                    resource.close()
        r = results.run
        typer.echo(f"{r.task}: {r.n_samples} samples ({r.n_computed} computed, {r.n_cached} cached, "
                   f"{r.n_errors} errors) -> {settings.out_dir}")
        if (line := label_counts_line(results)) is not None:
            typer.echo(f"  {line}")
        for name, m in results.metrics.items():
            if m.value is not None:
                ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None else ""
                excluded = f" ({m.n_excluded} failed samples excluded)" if m.n_excluded else ""
                typer.echo(f"  {name}: {m.value:.3f}{ci} n={m.n}{excluded}")

    run_cli(body)


@app.command("compare")
@user_errors
def compare_cmd(run_a: Path = typer.Argument(..., help="run folder or results.json (baseline)"),
                run_b: Path = typer.Argument(..., help="run folder or results.json (candidate)"),
                n_boot: int = typer.Option(1000, "--bootstrap", min=0, help="paired bootstrap resamples")) -> None:
    """Print metric deltas (B - A) with paired-bootstrap 95% CIs."""
    from eval.compare import compare, format_comparison, load_run

    a, b = load_run(run_a), load_run(run_b)
    typer.echo(format_comparison(a, b, compare(a, b, n_boot)))


@app.command("make-synthetic")
@user_errors
def make_synthetic_cmd(out_dir: Path = typer.Argument(..., help="folder to write metadata.csv and images/ into"),
                       n: int = typer.Option(140, "--n", min=1, help="number of images"),
                       seed: int = typer.Option(0, "--seed", help="random seed (same seed, same files)")) -> None:
    """Write the synthetic HAM10000-style benchmark (procedural lesions on Fitzpatrick I-VI skin)."""
    from eval.synthetic import make_synthetic

    try:
        path = make_synthetic(out_dir, n=n, seed=seed)
    except (OSError, ValueError) as err:
        raise ConfigError(str(err)) from None
    typer.echo(f"wrote {n} images and {path}")


@app.command("tasks")
def tasks_cmd() -> None:
    """List the registered tasks."""
    from eval.task import load_task, task_files

    for p in task_files():
        t = load_task(p)
        typer.echo(f"{t.name:<20} v{t.version:<5} {t.type:<15} {t.dataset.adapter}")


def main() -> None:  # `python -m eval`
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app(prog_name="dermassist eval")


if __name__ == "__main__":
    sys.exit(main())
