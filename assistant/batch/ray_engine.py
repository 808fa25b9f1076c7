"""``--engine ray``: the same job as a Ray Data pipeline, scaled out over a cluster.

    read (the driver's parsed manifest) → intake (Ray tasks: read, check and clean images; thumbnails)
      → reports (an actor pool, one model engine per actor: retrieval, batched generation, validation with its
        retry, grounding, safety — ``ReportPipeline.run_batch``) → write (the driver, the only writer)

Each actor builds its pipeline once from the driver's resolved config (same model, adapter, prompts, knowledge
base) and takes Ray Data batches of ``batch_size`` cases; it runs two batches at once so an engine that batches
continuously (vLLM) never drains between them. Images cross process boundaries as the clean PNG pixels, so an
actor sees exactly the pixels a local run sees (and the same report comes out). Results stream back to the driver
as they finish and are recorded by the same runner, so the exactly-once rule is the local one.

vLLM's own Ray Data LLM processor (``ray.data.llm``) is not used: it reserves one GPU per engine and returns raw
completions, while a dermassist case needs its validation retry, grounding and safety layer per case on any backend
(transformers, vLLM, an OpenAI-compatible server); an actor running our vLLM backend gets the same continuous
batching.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from assistant.batch.manifest import BatchCase
from assistant.batch.work import CaseResult, Prepared, intake, report_chunk
from assistant.core.errors import BackendError, ConfigError, DermassistError
from assistant.core.intake import PixelBudget

ENV_PREFIXES = ("DERMASSIST_", "HF_", "TRANSFORMERS_", "VLLM_", "TOKENIZERS_", "OMP_", "PYTHONPATH",
                "ANONYMIZED_TELEMETRY", "GRADIO_", "DO_NOT_TRACK")
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # a local cluster only carries cases, PNGs and reports
ACTOR_START_TIMEOUT_S = 1800  # loading a large model on a busy node takes minutes
INTAKE_CPUS = 0.25  # decoding a few images: light, and it must fit beside actors that hold whole CPUs


def _intake_row(row: dict[str, Any]) -> dict[str, Any]:
    """Ray task: one case's images read and cleaned (or its error), as PNG bytes of the clean pixels."""
    case = BatchCase.model_validate_json(row["case"])
    prepared = intake(case, PixelBudget(max_pixels=int(row["max_pixels"]), min_side=int(row["min_side"])))
    return {"case": row["case"], "clean": [img.png_bytes() for img in prepared.images],
            "thumbnail": prepared.thumbnail or b"",
            "problem": "" if prepared.error is None else f"{prepared.error.kind}\0{prepared.error}"}


class ReportActor:
    """One model engine per actor; a Ray Data batch of cleaned cases in, one result row per case out."""

    def __init__(self, config: dict[str, Any], adapter: str | None) -> None:
        from assistant.app.build import build_pipeline
        from assistant.app.config import load_app_config

        self.pipeline = build_pipeline(load_app_config(None, config))
        self.adapter = adapter

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        prepared = []
        for case_json, clean, thumbnail, problem in zip(batch["case"], batch["clean"], batch["thumbnail"],
                                                        batch["problem"], strict=True):
            case = BatchCase.model_validate_json(case_json)
            if problem:
                kind, _, message = str(problem).partition("\0")
                prepared.append(Prepared(case=case, thumbnail=bytes(thumbnail) or None, error=_Failure(kind, message)))
            else:
                item = intake(case, self.pipeline.settings.pixel_budget, [bytes(png) for png in clean])
                prepared.append(item)
        results = report_chunk(self.pipeline, prepared, self.adapter)
        return {"result": [r.model_dump_json(exclude={"thumbnail"}) for r in results],
                "thumbnail": [r.thumbnail or b"" for r in results]}


class RayEngine:
    name = "ray"

    def __init__(self, config: dict[str, Any], adapter: str | None, *, batch_size: int, actors: int,
                 budget: PixelBudget, address: str | None = None, cpus_per_actor: float = 1.0) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--engine ray needs Ray: pip install 'dermassist[scale]'") from None
        self.config = config
        self.adapter = adapter
        self.batch_size = batch_size
        self.actors = actors
        self.budget = budget
        self.cpus_per_actor = cpus_per_actor
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        kwargs: dict[str, Any] = dict(runtime_env={"env_vars": env}, log_to_driver=False, include_dashboard=False,
                                      configure_logging=False)
        if address:
            kwargs["address"] = address
        else:  # a private loopback cluster, sized for the actors plus the intake tasks, torn down in close()
            kwargs.update(num_cpus=max(2, int(actors * cpus_per_actor) + 1),
                          object_store_memory=LOCAL_OBJECT_STORE_BYTES, _node_ip_address="127.0.0.1")
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot start or reach the Ray cluster{f' at {address}' if address else ''}: "
                              f"{str(exc).splitlines()[0][:200]}") from None
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # ours is the one progress bar (stderr)
        context.print_on_execution_start = False
        # Work starts when the whole pool is up (so it spreads over every engine), and an actor that cannot start
        # (no GPU free, a model that does not load) fails the run instead of leaving it waiting.
        context.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S

    def process(self, cases: Sequence[BatchCase], stop: threading.Event) -> Iterator[CaseResult]:
        import ray.data

        rows = [{"case": c.model_dump_json(), "max_pixels": self.budget.max_pixels, "min_side": self.budget.min_side}
                for c in cases]
        dataset = (
            ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), len(rows) // self.batch_size + 1)))
            .map(_intake_row, num_cpus=INTAKE_CPUS)
            .map_batches(ReportActor, fn_constructor_kwargs={"config": self.config, "adapter": self.adapter},
                         batch_size=self.batch_size, num_cpus=self.cpus_per_actor,
                         compute=ray.data.ActorPoolStrategy(size=self.actors, max_tasks_in_flight_per_actor=2),
                         max_concurrency=2)
        )
        rows_out = iter(dataset.iter_rows())
        while not stop.is_set():  # leaving the iterator stops the dataset; unrecorded cases run in the next pass
            try:
                row = next(rows_out, None)
            except Exception as exc:  # an actor that cannot start, a lost node: Ray raises it here
                raise BackendError(f"the Ray pipeline failed: {_first_line(exc)}") from None
            if row is None:
                return
            result = CaseResult.model_validate_json(row["result"])
            result.thumbnail = bytes(row["thumbnail"]) or None
            yield result

    def close(self) -> None:
        import ray

        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    """Ray wraps a worker's exception in a long report; its last non-empty line names the cause."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]


class _Failure(DermassistError):
    """An intake error as it came back from a Ray task: its kind and message, recorded as the case's error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
