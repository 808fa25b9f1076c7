"""``dermassist batch MANIFEST --out DIR``: a report (or an error record) for every case of a manifest.

Rerunning the same command resumes: finished cases are skipped, the rest run, each case ends up in
``reports.jsonl`` exactly once (see ``assistant.batch.store``). Heavy imports happen inside the command.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.app.options import ModelFlags, model_options, run_cli

if TYPE_CHECKING:
    from assistant.app.config import AppConfig
    from assistant.batch.engines import Engine
    from assistant.batch.outputs import RunInfo


class EngineName(StrEnum):
    local = "local"
    ray = "ray"


class OnChangeOption(StrEnum):
    refuse = "refuse"
    update = "update"


@model_options()
def batch(
    manifest: Annotated[Path, typer.Argument(help="a folder of images (one case per image or per sub-folder), a "
                                                  ".csv or a .jsonl manifest, or a dataset file (--format)")],
    flags: ModelFlags,
    out: Annotated[Path, typer.Option("--out", help="output folder (created; rerun with the same folder to "
                                                    "resume)")],
    fmt: Annotated[str, typer.Option("--format", help="auto | folder | csv | jsonl | an eval dataset format "
                                                      "(ham10000, isic2019, ddi, fitzpatrick17k, …)")] = "auto",
    images_root: Annotated[Path | None, typer.Option(help="where image paths are resolved; images outside it are "
                                                          "refused (default: the manifest's folder)")] = None,
    column: Annotated[list[str] | None, typer.Option(help="FIELD=COLUMN: read FIELD (id, image, images, age, sex, "
                                                          "body_site, symptoms, …) from COLUMN; repeatable")] = None,
    modality: Annotated[str, typer.Option(help="clinical | dermoscopy | histopathology, for cases that do not "
                                               "say")] = "clinical",
    batch_size: Annotated[int, typer.Option(min=1, max=256, help="cases generated together (one engine batch; "
                                                                 "transformers pads them)")] = 16,
    engine: Annotated[EngineName, typer.Option(help="local: this process · ray: a Ray Data actor pool")]
    = EngineName.local,
    ray_address: Annotated[str | None, typer.Option(help="a running Ray cluster (default: start a private local "
                                                         "one)")] = None,
    ray_actors: Annotated[int, typer.Option(min=1, help="ray: actors, one model engine each")] = 2,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="run the cases that ended in an error "
                                                                      "again")] = False,
    on_change: Annotated[OnChangeOption, typer.Option(help="the manifest changed since the folder was started: "
                                                           "refuse, or update (keep unchanged cases, redo the "
                                                           "rest)")] = OnChangeOption.refuse,
    max_retries: Annotated[int, typer.Option(min=0, help="backend unavailable: retries without progress before "
                                                         "the run stops")] = 5,
    retry_wait: Annotated[float, typer.Option(min=0.0, help="seconds before the first retry (doubles)")] = 2.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="progress bar on stderr")] = True,
) -> None:
    """Reports for every case of a manifest: resumable, exactly once, batched on the engine."""

    def body() -> None:
        from assistant.batch.manifest import parse_columns, read_manifest
        from assistant.batch.store import ResultStore
        from assistant.core.case import Modality
        from assistant.core.errors import ConfigError

        try:
            default_modality = Modality(modality.strip().lower())
        except ValueError:
            raise ConfigError("--modality must be clinical, dermoscopy or histopathology") from None
        # Manifest, folder and setup are checked before any model loads: a bad manifest, a folder in use or a
        # changed setup is a one-line error in seconds.
        cases = read_manifest(manifest, fmt=fmt, images_root=images_root, columns=parse_columns(column or []),
                              modality=default_modality)
        setup = _Setup(flags.load(backend={"max_batch_size": batch_size}))
        store = ResultStore(out)
        try:
            plan, info = _start(store, cases, setup.identity, batch_size=batch_size, retry_errors=retry_errors,
                                on_change=on_change.value)
            runner_engine = (setup.ray_engine(batch_size, ray_actors, ray_address) if engine == EngineName.ray
                             else setup.local_engine(batch_size))
            try:
                _run(store, cases, plan, info, runner_engine, max_retries=max_retries, retry_wait=retry_wait,
                     progress=progress)
            finally:
                runner_engine.close()
        finally:
            store.close()

    run_cli(body)


class _Setup:
    """The resolved setup (model, backend, adapter, prompts, knowledge base) before any model loads."""

    def __init__(self, config: AppConfig) -> None:
        import prompts
        from assistant.app.build import build_retriever, resolve_backend_config

        self.config = config
        self.adapter = config.active_adapter()
        self.backend = resolve_backend_config(config)
        self.retriever = build_retriever(config.retrieval)
        self.identity = dict(model=self.backend.display_name, backend=self.backend.backend, adapter=self.adapter,
                             prompt_version=prompts.PROMPT_VERSION, kb_version=self.retriever.version)

    def local_engine(self, batch_size: int) -> Engine:
        from assistant.app.build import build_pipeline
        from assistant.batch.engines import LocalEngine

        pipeline = build_pipeline(self.config, backend=self.backend, retriever=self.retriever)
        return LocalEngine(pipeline, self.adapter, batch_size)

    def ray_engine(self, batch_size: int, actors: int, address: str | None) -> Engine:
        """Every actor gets the driver's resolved config: the same model path (demo model included), adapter,
        prompts and knowledge base."""
        from assistant.batch.ray_engine import RayEngine
        from assistant.pipeline.pipeline import PipelineSettings

        resolved = self.config.model_dump(mode="json")
        resolved["backend"].update(backend=self.backend.backend, model=self.backend.model)
        return RayEngine(resolved, self.adapter, batch_size=batch_size, actors=actors,
                         budget=PipelineSettings().pixel_budget, address=address)


def _start(store, manifest, identity: dict, *, batch_size: int, retry_errors: bool, on_change: str):
    """Check the folder against this run (same setup; manifest unchanged or ``--on-change update``), decide what is
    left to do, and mark the run as started in run.json."""
    from assistant import __version__
    from assistant.batch import outputs, runner
    from assistant.core.errors import ConfigError

    previous = outputs.read_run_info(store.out)
    if previous is not None and previous.identity() != identity:
        raise ConfigError(f"{store.out} holds reports from another setup (model {previous.model}, backend "
                          f"{previous.backend}, adapter {previous.adapter}, prompts {previous.prompt_version}, "
                          f"knowledge base {previous.kb_version}); resume with the same settings or use a new --out")
    plan = runner.plan(store, manifest, previous.manifest_fingerprint if previous else None,
                       on_change=on_change, retry_errors=retry_errors)  # type: ignore[arg-type]
    info = outputs.RunInfo(
        dermassist_version=__version__, manifest=str(manifest.source), manifest_kind=manifest.kind,
        manifest_fingerprint=manifest.fingerprint, batch_size=batch_size, status="running",
        counts=outputs.counts(store, manifest), runs=previous.runs if previous else [], **identity)
    outputs.write_run_info(store.out, info)
    print(f"dermassist batch: {len(manifest.cases)} cases, {plan.done} already done"
          + (f", {plan.retried_errors} error(s) to retry" if plan.retried_errors else "")
          + (f", {plan.dropped_changed} changed" if plan.dropped_changed else ""), file=sys.stderr, flush=True)
    return plan, info


def _run(store, manifest, plan, info: RunInfo, engine: Engine, *, max_retries: int, retry_wait: float,
         progress: bool) -> None:
    from assistant.batch import outputs, runner
    from assistant.batch.store import now

    invocation = outputs.Invocation(started_at=now(), engine=engine.name)
    info.runs.append(invocation)
    state = None
    try:
        state = runner.run(engine, store, plan.todo, total=len(manifest.cases), max_retries=max_retries,
                           retry_wait_s=retry_wait, progress=progress)
    finally:
        _finish(store, manifest, info, invocation, state)
    if state.stopped:
        raise runner.BackendGone(f"stopped: {state.stopped}; {info.counts.pending} case(s) not done — rerun the "
                                 "same command to resume")
    print(f"dermassist batch: {info.counts.ok} reports, {info.counts.error} errors in {state.seconds:.1f} s "
          f"→ {store.out / 'index.html'}", file=sys.stderr, flush=True)


def _finish(store, manifest, info: RunInfo, invocation, state) -> None:
    """Summaries and run.json, whatever happened (completed, stopped, interrupted)."""
    from assistant.batch import outputs
    from assistant.batch.store import now

    invocation.finished_at = now()
    if state is None:
        invocation.status, invocation.stop_reason = "interrupted", "interrupted before the run finished"
    else:
        invocation.computed, invocation.retries = state.computed, state.retries
        invocation.seconds = round(state.seconds, 2)
        invocation.cases_per_s = round(state.computed / state.seconds, 3) if state.seconds and state.computed \
            else None
        invocation.status = "stopped" if state.stopped else "complete"
        invocation.stop_reason = state.stopped
    info.counts = outputs.counts(store, manifest)
    info.status = "complete" if invocation.status == "complete" and not info.counts.pending else invocation.status
    outputs.write_summaries(store, manifest, info)
