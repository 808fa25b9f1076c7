"""`dermassist eval ...` — score reports on benchmarks.

    dermassist eval --task synthetic_ham --data data/synthetic/metadata.csv --model demo --backend transformers
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

from assistant.errors import DermassistError

app = typer.Typer(help="Evaluate models on dermatology benchmarks.", add_completion=False)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _resolve_model(model: str) -> str:
    if model in ("demo", "tiny"):
        from assistant.tiny_model import ensure_demo_model

        return str(ensure_demo_model())
    return model


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    task: str = typer.Option(None, "--task", help="task name (eval/tasks/<name>.yaml) or a task YAML file"),
    model: str = typer.Option(None, "--model", help="model path / hub id / served name; 'demo' = tiny model"),
    backend: str = typer.Option(None, "--backend", help="transformers (default) | vllm | openai"),
    base_url: str = typer.Option(None, "--base-url", help="openai backend: e.g. http://127.0.0.1:8000/v1"),
    adapter: str = typer.Option(None, "--adapter", help="LoRA adapter path (or served adapter name for openai)"),
    images_root: Path = typer.Option(None, "--images-root", help="folder the dataset's image names resolve in"),
    data: Path = typer.Option(None, "--data", help="dataset metadata file / folder (overrides the task's)"),
    limit: int = typer.Option(None, "--limit", min=1, help="evaluate only the first N samples"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="samples in flight (threads)"),
    out: Path = typer.Option(None, "--out", help="output folder (default runs/eval/<task>)"),
    no_retrieval: bool = typer.Option(False, "--no-retrieval", help="reports without guideline retrieval"),
    dtype: str = typer.Option("auto", "--dtype", help="auto | float32 | bfloat16 | float16"),
    enforce_eager: bool = typer.Option(False, "--enforce-eager", help="vLLM: no CUDA graphs / compilation"),
    max_model_len: int = typer.Option(None, "--max-model-len", help="vLLM: context length"),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help="local encoder folder for BERTScore"),
    replay: Path = typer.Option(None, "--replay", help="score saved outputs: JSONL of sample_id + report | "
                                "answer | error (or an earlier run's cache.jsonl); no model is run"),
    judge_url: str = typer.Option(None, "--judge-url", help="LLM judge: OpenAI-compatible base URL (…/v1)"),
    judge_model: str = typer.Option(None, "--judge-model", help="LLM judge: the served model name"),
    judge_api_key: str = typer.Option(None, "--judge-api-key", envvar="DERMASSIST_JUDGE_API_KEY",
                                      help="LLM judge API key (or DERMASSIST_JUDGE_API_KEY)", show_default=False),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Run a task: dermassist eval --task NAME_OR_FILE --model ... --backend ... [options]."""
    if ctx.invoked_subcommand is not None:
        return
    if not task:
        _fail("missing --task (a name from eval/tasks/ or a task YAML file); see dermassist eval --help")
    if replay and (backend or base_url):
        _fail("--replay scores saved outputs: --backend and --base-url do not apply")
    if not model and not replay:
        _fail("missing --model (a model path, hub id or served model name; 'demo' for the tiny model)")
    if bool(judge_url) != bool(judge_model):
        _fail("the LLM judge needs both --judge-url and --judge-model")
    backend = "replay" if replay else backend or "transformers"
    judge = pipeline = None
    try:
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
        adapter_name = None
        if replay:
            from eval.replay import ReplayPipeline

            pipeline = ReplayPipeline(replay)
            model = model or pipeline.model_name()
        else:
            pipeline, adapter_name = _build_pipeline(model, backend, base_url, adapter, dtype, enforce_eager,
                                                     max_model_len, retrieval=not no_retrieval)
        settings = EvalSettings(task=cfg, out_dir=out or Path("runs") / "eval" / cfg.name, model=model,
                                backend=backend, adapter=adapter, adapter_name=adapter_name, data=data,
                                images_root=images_root, retrieval=not no_retrieval, limit=limit,
                                concurrency=concurrency, progress=progress)
        results = run_eval(settings, pipeline, bert, judge)
    except DermassistError as err:
        _fail(str(err))
    except (OSError, ValueError) as err:
        _fail(f"{type(err).__name__}: {err}")
    finally:
        for resource in (pipeline, judge):
            if resource is not None:
                resource.close()
    r = results.run
    typer.echo(f"{r.task}: {r.n_samples} samples ({r.n_computed} computed, {r.n_cached} cached, "
               f"{r.n_errors} errors) -> {settings.out_dir}")
    for name, m in results.metrics.items():
        if m.value is not None:
            ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None else ""
            typer.echo(f"  {name}: {m.value:.3f}{ci}")


def _build_pipeline(model: str, backend: str, base_url: str | None, adapter: str | None, dtype: str,
                    enforce_eager: bool, max_model_len: int | None, retrieval: bool):
    from assistant.backends.base import BackendConfig
    from assistant.factory import build_pipeline

    adapters, adapter_name = {}, None
    if adapter:
        adapter_name = Path(adapter).name if backend != "openai" else adapter
        adapters = {adapter_name: adapter}
    extra = {"max_model_len": max_model_len} if max_model_len else {}
    config = BackendConfig(backend=backend, model=_resolve_model(model), adapters=adapters, dtype=dtype,
                           base_url=base_url, enforce_eager=enforce_eager, **extra)
    return build_pipeline(config, retrieval=retrieval), adapter_name


@app.command("compare")
def compare_cmd(run_a: Path = typer.Argument(..., help="run folder or results.json (baseline)"),
                run_b: Path = typer.Argument(..., help="run folder or results.json (candidate)"),
                n_boot: int = typer.Option(1000, "--bootstrap", min=0, help="paired bootstrap resamples")) -> None:
    """Print metric deltas (B - A) with paired-bootstrap 95% CIs."""
    from eval.compare import compare, format_comparison, load_run

    try:
        a, b = load_run(run_a), load_run(run_b)
    except DermassistError as err:
        _fail(str(err))
    typer.echo(format_comparison(a, b, compare(a, b, n_boot)))


@app.command("make-synthetic")
def make_synthetic_cmd(out_dir: Path = typer.Argument(..., help="folder to write metadata.csv and images/ into"),
                       n: int = typer.Option(140, "--n", min=1, help="number of images"),
                       seed: int = typer.Option(0, "--seed", help="random seed (same seed, same files)")) -> None:
    """Write the synthetic HAM10000-style benchmark (procedural lesions on Fitzpatrick I-VI skin)."""
    from eval.synthetic import make_synthetic

    try:
        path = make_synthetic(out_dir, n=n, seed=seed)
    except (OSError, ValueError) as err:
        _fail(str(err))
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
