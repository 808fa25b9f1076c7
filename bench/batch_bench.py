"""Batch throughput: the same N cases through every way dermassist can run them, in one run.

    .venv/bin/python bench/batch_bench.py [--n 32] [--model PATH_OR_ID] [--concurrency 32] [--retrieval]
                                          [--arms a,b,c,d,e] [--out results.json]

Arms (all greedy, same cases, same model, same pipeline: intake, retrieval if ``--retrieval``, constrained
generation, validation with its retry, grounding, safety):

* (a) transformers, one case at a time (``ReportPipeline.run`` in a loop);
* (b) transformers batched (``ReportPipeline.run_batch``: left-padded ``generate``, ``max_batch_size`` = N);
* (c) vLLM in-process, one case at a time;
* (d) vLLM in-process batched (``run_batch``: every request handed to the async engine at once);
* (e) the HTTP endpoint under ``--concurrency`` concurrent clients, ``dermassist serve --backend vllm`` and
  ``--backend transformers`` (server defaults for ``max_concurrency``).

It prints a Markdown table (cases/s and ratios) and checks that batched arms gave the same reports as their
one-at-a-time arms. One engine at a time: each arm's engine is closed before the next starts. Default model: the
tiny demo model (CPU; the numbers show scheduling and batching, not a real VLM's speed). Results are recorded in
docs/batch.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.common import free_port, stop_server, wait_ready  # noqa: E402 - after the path insert

CONTENT = ("findings", "differential", "diagnosis", "triage", "red_flags", "recommendations", "limitations")


def synthetic_cases(n: int) -> list:
    """N distinct cases: lesion photos that differ in size, skin tone and lesion colour; varied context."""
    from PIL import Image, ImageDraw

    from assistant.core.case import Case, ClinicalContext, Symptoms

    cases = []
    for i in range(n):
        w, h = 160 + 8 * (i % 7), 120 + 4 * (i % 5)
        img = Image.new("RGB", (w, h), (200 + 3 * (i % 9), 160 + i % 30, 130))
        ImageDraw.Draw(img).ellipse((w * 0.3, h * 0.3, w * 0.7, h * 0.7), fill=(80 + 5 * (i % 11), 50, 40))
        context = ClinicalContext(age=20 + (i * 7) % 70, body_site=("back", "arm", "face", "leg")[i % 4],
                                  symptoms=Symptoms(itch=i % 3 == 0, change=i % 5 == 0))
        cases.append(Case(images=[img], context=context))
    return cases


def _pipeline(backend: str, model: str, retrieval: bool, batch: int):
    from assistant.app.build import build_pipeline
    from assistant.app.config import load_app_config

    extra = {"dtype": "float32", "enforce_eager": True, "max_model_len": 8192} if backend == "vllm" else {}
    config = load_app_config(overrides={"backend": {"backend": backend, "model": model, "max_batch_size": batch,
                                                    **extra},
                                        "retrieval": {"enabled": retrieval}})
    return build_pipeline(config)


def _contents(outcomes) -> list:
    return [o.model_dump(mode="json", include=set(CONTENT)) if hasattr(o, "model_dump") else repr(o)
            for o in outcomes]


def in_process(backend: str, model: str, cases: list, retrieval: bool) -> list[dict]:
    """One engine: the one-at-a-time arm, then the batched arm, after a warm-up."""
    pipeline = _pipeline(backend, model, retrieval, len(cases))
    try:
        pipeline.run(cases[0])  # warm-up: grammar compile, first retrieval, kernels
        t0 = time.perf_counter()
        alone = []
        for case in cases:
            try:
                alone.append(pipeline.run(case))
            except Exception as exc:  # a case error counts as a finished case, as in a batch
                alone.append(exc)
        t1 = time.perf_counter()
        batched = pipeline.run_batch(cases)
        t2 = time.perf_counter()
    finally:
        pipeline.close()
    same = _contents(alone) == _contents(batched)
    return [_row(f"{backend} one at a time", alone, t1 - t0, None),
            _row(f"{backend} batched", batched, t2 - t1, same)]


def _row(arm: str, outcomes: list, seconds: float, same: bool | None) -> dict:
    errors = sum(not hasattr(o, "model_dump") for o in outcomes)
    tokens = sum(o.provenance.usage.completion_tokens for o in outcomes if hasattr(o, "provenance"))
    return {"arm": arm, "cases": len(outcomes), "seconds": round(seconds, 2), "cases_per_s": len(outcomes) / seconds,
            "gen_tok_per_s": tokens / seconds, "errors": errors, "same_as_one_at_a_time": same}


def endpoint(backend: str, model: str, cases: list, retrieval: bool, concurrency: int) -> dict:
    """``dermassist serve`` as a subprocess; ``concurrency`` clients send the N cases as report requests."""
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "dermassist"), "serve", "--backend", backend, "--model", model,
           "--port", str(port), "--dtype", "float32", "--log-level", "warning", "--max-queue", str(len(cases) + 8)]
    if backend == "vllm":
        cmd += ["--enforce-eager", "--max-model-len", "8192"]
    if not retrieval:
        cmd.append("--no-retrieval")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"batch-bench-serve-{backend}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc)
        requests = [_request(case) for case in cases]
        seconds, outcomes = asyncio.run(_drive(f"http://127.0.0.1:{port}/v1", requests[:1], 1))  # warm-up
        seconds, outcomes = asyncio.run(_drive(f"http://127.0.0.1:{port}/v1", requests, concurrency))
    finally:
        stop_server(proc)
        log.close()
    errors = sum(isinstance(o, Exception) for o in outcomes)
    tokens = sum(o.usage.completion_tokens for o in outcomes if not isinstance(o, Exception) and o.usage)
    return {"arm": f"endpoint ({backend}, {concurrency} clients)", "cases": len(cases), "seconds": round(seconds, 2),
            "cases_per_s": len(cases) / seconds, "gen_tok_per_s": tokens / seconds, "errors": errors,
            "same_as_one_at_a_time": None}


def _request(case) -> dict:
    buf = io.BytesIO()
    case.images[0].save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    context = case.context.model_dump(mode="json", exclude_defaults=True)
    symptoms = context.pop("symptoms", {})
    metadata = {k: str(v) for k, v in context.items()}
    if symptoms:
        metadata["symptoms"] = ",".join(k for k, v in symptoms.items() if v)
    return {"model": "dermassist-report", "metadata": metadata,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}


async def _drive(base_url: str, requests: list[dict], concurrency: int) -> tuple[float, list]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=3600)
    gate = asyncio.Semaphore(concurrency)

    async def one(kwargs: dict):
        async with gate:
            try:
                return await client.chat.completions.create(**kwargs)
            except Exception as exc:
                return exc

    t0 = time.perf_counter()
    outcomes = await asyncio.gather(*(one(r) for r in requests))
    seconds = time.perf_counter() - t0
    await client.close()
    return seconds, list(outcomes)


def table(rows: list[dict]) -> str:
    base = next((r["cases_per_s"] for r in rows if r["arm"] == "transformers one at a time"), None)
    vllm_one = next((r["cases_per_s"] for r in rows if r["arm"] == "vllm one at a time"), None)
    lines = ["| arm | cases | s | cases/s | gen tok/s | × transformers one at a time | × vLLM one at a time | "
             "errors | same reports as one at a time |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs_base = f"{r['cases_per_s'] / base:.2f}" if base else "-"
        vs_vllm = f"{r['cases_per_s'] / vllm_one:.2f}" if vllm_one else "-"
        same = {None: "-", True: "yes", False: "no"}[r["same_as_one_at_a_time"]]
        lines.append(f"| {r['arm']} | {r['cases']} | {r['seconds']:.1f} | {r['cases_per_s']:.3f} | "
                     f"{r['gen_tok_per_s']:.0f} | {vs_base} | {vs_vllm} | {r['errors']} | {same} |")
    return "\n".join(lines)


def run(results, model: str | None = None, quick: bool = False) -> None:
    """``python -m bench batch``: arms (a)-(d) as rows of the shared table (B = batched, A = one at a time)."""
    from bench.common import Row

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from assistant.models.tiny import default_model

    cases = synthetic_cases(8 if quick else 32)
    for backend in ("transformers", "vllm"):
        alone, batched = in_process(backend, model or str(default_model()[0]), cases, retrieval=False)
        results.add(Row("batch", f"{backend}: cases/s for {len(cases)} cases (same reports: "
                        f"{'yes' if batched['same_as_one_at_a_time'] else 'no'})", batched["cases_per_s"], "cases/s",
                        a=alone["cases_per_s"], a_label="one at a time", b_label="batched",
                        target=5.0 if backend == "vllm" else None, ratio_target=True, higher_is_better=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="cases per arm")
    parser.add_argument("--model", default=None, help="path or hub id (default: the tiny demo model)")
    parser.add_argument("--concurrency", type=int, default=32, help="endpoint clients at once")
    parser.add_argument("--retrieval", action="store_true", help="ground in the knowledge base (default: off)")
    parser.add_argument("--arms", default="a,b,c,d,e", help="a,b: transformers; c,d: vLLM; e: endpoint")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from assistant.models.tiny import default_model

    model = args.model or str(default_model()[0])
    cases = synthetic_cases(args.n)
    arms = set(args.arms.split(","))
    rows: list[dict] = []
    load = [os.getloadavg()[0]]

    def done(new: list[dict]) -> None:
        """Each arm's rows as soon as it ends (stderr, and --out): a long run that is stopped keeps what it measured."""
        rows.extend(new)
        for row in new:
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.out:
            args.out.write_text(json.dumps({"rows": rows, "n": args.n, "load": load}, indent=2))

    if arms & {"a", "b"}:
        done(in_process("transformers", model, cases, args.retrieval))
    if arms & {"c", "d"}:
        done(in_process("vllm", model, cases, args.retrieval))
    if "e" in arms:
        done([endpoint("vllm", model, cases, args.retrieval, args.concurrency)])
        done([endpoint("transformers", model, cases, args.retrieval, args.concurrency)])
    load.append(os.getloadavg()[0])
    print(table(rows))
    print(f"\n{args.n} cases per arm, retrieval {'on' if args.retrieval else 'off'}, 1-min load average "
          f"{load[0]:.1f} at start, {load[1]:.1f} at end, {os.cpu_count()} CPUs")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "n": args.n, "load": load}, indent=2))


if __name__ == "__main__":
    main()
