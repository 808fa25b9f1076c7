"""The endpoint's cost: ``dermassist serve --upstream`` vs calling the same vLLM server directly, on loopback.

One vLLM OpenAI server (dermassist's structured-outputs settings) and one ``dermassist serve`` in front of it.
The direct requests carry exactly the messages the endpoint sends upstream (system prompt, instructions, clinical
context, the image as the endpoint re-encodes it; for reports the decoding schema), so both sides ask the model
for the same work and the difference is the endpoint: HTTP hop, parsing, intake, prompt building, checks.
(A raw user message is much shorter than dermassist's prompt; the table's note gives both token counts: that
difference is model work a user asked for, not overhead.)

Rounds alternate direct and endpoint batches (A, B, then B, A): the old script measured all of one target and
then all of the other, so the machine's drift decided its ratios (0.54x, 0.89x, 0.60x for the same code).
The endpoint process's CPU time per request is read from /proc.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, Results, Row, free_port, median, stop_server, wait_ready

CHAT_OVERHEAD = 1.05
CHAT_THROUGHPUT = 0.95
QUESTION = "What is this itchy scaly plaque on the elbow, and what should be done next?"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _png_url() -> tuple[str, object]:
    from PIL import Image

    img = Image.new("RGB", (160, 120), (196, 128, 112))
    img.paste((92, 52, 40), (50, 40, 100, 80))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), buf.getvalue()


def same_prompts(png: bytes, retrieval: bool) -> dict:
    """The messages dermassist sends upstream for the chat and report workloads (no retrieval: no passages)."""
    from assistant.backends.openai_backend import openai_messages
    from assistant.core.case import ClinicalContext, Modality
    from assistant.core.intake import load_image
    from assistant.core.messages import chat_messages, report_messages
    from assistant.core.report import draft_json_schema

    if retrieval:
        raise SystemExit("--retrieval: compare with the endpoint's own retrieval off (the direct side has none)")
    image = load_image(png, label="image 1")
    context = ClinicalContext(question=QUESTION)
    return {"chat": openai_messages(chat_messages(QUESTION, images=[image], context=ClinicalContext())),
            "report": openai_messages(report_messages(context, Modality.clinical, [image], [])),
            "schema": draft_json_schema([])}


async def _batch(client, kwargs: dict, n: int, concurrency: int) -> tuple[list[float], float, list[int]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    prompt_tokens: list[int] = []

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            response = await client.chat.completions.create(**kwargs)
            latencies.append(time.perf_counter() - started)
            if response.usage:
                prompt_tokens.append(response.usage.prompt_tokens)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return latencies, time.perf_counter() - started, prompt_tokens


async def _workloads(upstream: str, endpoint: str, serve_pid: int, args) -> list[dict]:
    import openai

    url, png = _png_url()
    prompts = same_prompts(png, args.retrieval)
    raw = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                        {"type": "text", "text": QUESTION}]}]
    direct = openai.AsyncOpenAI(base_url=upstream, api_key="EMPTY", max_retries=0, timeout=900)
    ours = openai.AsyncOpenAI(base_url=endpoint, api_key=args.api_key, max_retries=0, timeout=900)
    report_format = {"type": "json_schema", "json_schema": {"name": "dermassist_report", "schema": prompts["schema"],
                                                            "strict": True}}
    sampling = {"temperature": 0.0, "seed": 0}
    plans = [
        ("chat", args.requests, args.concurrency,
         dict(model="upstream", messages=prompts["chat"], max_tokens=args.chat_tokens, **sampling),
         dict(model="dermassist-chat", messages=raw, max_tokens=args.chat_tokens)),
        ("report", args.report_requests, args.report_concurrency,
         dict(model="upstream", messages=prompts["report"], max_tokens=1536, response_format=report_format,
              **sampling),
         dict(model="dermassist-report", messages=raw)),
    ]
    rows = []
    for name, n, concurrency, direct_kwargs, endpoint_kwargs in plans:
        if n <= 0:
            continue
        raw_tokens = (await direct.chat.completions.create(
            model="upstream", messages=raw, max_tokens=1, **sampling)).usage.prompt_tokens
        sides = {"direct": (direct, direct_kwargs), "endpoint": (ours, endpoint_kwargs)}
        for client, kwargs in sides.values():  # warm-up: grammars, caches, connections
            await _batch(client, kwargs, 2, 2)
        per = max(1, n // args.rounds)
        got = {side: {"lat": [], "wall": 0.0, "ok": 0, "prompt": []} for side in sides}
        cpu = 0.0
        for r in range(args.rounds):
            for side in ("direct", "endpoint") if r % 2 == 0 else ("endpoint", "direct"):
                client, kwargs = sides[side]
                before = _cpu_s(serve_pid)
                latencies, wall, prompt = await _batch(client, kwargs, per, concurrency)
                if side == "endpoint":
                    cpu += _cpu_s(serve_pid) - before
                got[side]["lat"] += latencies
                got[side]["wall"] += wall
                got[side]["ok"] += len(latencies)
                got[side]["prompt"] += prompt
        rows.append({"workload": name, "concurrency": concurrency, "requests": got["direct"]["ok"],
                     "raw_prompt_tokens": raw_tokens,
                     "serve_cpu_ms_per_request": 1000 * cpu / max(1, got["endpoint"]["ok"]),
                     **{f"{side}_{key}": value for side in sides for key, value in (
                         ("p50_ms", 1000 * median(got[side]["lat"])),
                         ("rps", got[side]["ok"] / got[side]["wall"]),
                         ("prompt_tokens", median(got[side]["prompt"]) if got[side]["prompt"] else None))}})
    await direct.close()
    await ours.close()
    return rows


def run(results: Results, model: str | None = None, requests: int = 32, concurrency: int = 8, chat_tokens: int = 32,
        report_requests: int = 8, report_concurrency: int = 4, rounds: int = 4, retrieval: bool = False) -> None:
    import argparse

    from assistant.backends.vllm_backend import vllm_server_command

    args = argparse.Namespace(requests=requests, concurrency=concurrency, chat_tokens=chat_tokens,
                              report_requests=report_requests, report_concurrency=report_concurrency,
                              rounds=rounds, retrieval=retrieval, api_key="bench-key")
    if not model:
        from assistant.models.tiny import ensure_random_model

        model = str(ensure_random_model())
    logs = Path(tempfile.mkdtemp(prefix="dermassist-bench-"))
    up_port, ep_port = free_port(), free_port()
    env = {**os.environ, "DERMASSIST_API_KEY": args.api_key, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    cmd = vllm_server_command(model, port=up_port, extra=["--enforce-eager", "--max-model-len", "8192",
                                                          "--served-model-name", "upstream", "--disable-log-stats"])
    upstream = subprocess.Popen(cmd, stdout=open(logs / "vllm.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                env=env, start_new_session=True)
    endpoint = None
    try:
        wait_ready(f"http://127.0.0.1:{up_port}/v1/models", upstream)
        endpoint = subprocess.Popen(
            [sys.executable, "-c", "from assistant.cli import main; main()", "serve", "--upstream",
             f"http://127.0.0.1:{up_port}/v1", "--port", str(ep_port), "--max-concurrency",
             str(max(concurrency, report_concurrency)), "--max-queue", "1024", "--log-level", "warning",
             *([] if retrieval else ["--no-retrieval"])],
            stdout=open(logs / "serve.log", "wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO,  # noqa: SIM115
            start_new_session=True)
        wait_ready(f"http://127.0.0.1:{ep_port}/health", endpoint)
        rows = asyncio.run(_workloads(f"http://127.0.0.1:{up_port}/v1", f"http://127.0.0.1:{ep_port}/v1",
                                      endpoint.pid, args))
    finally:
        if endpoint is not None:
            stop_server(endpoint)
        stop_server(upstream)
    for row in rows:
        chat = row["workload"] == "chat"
        note = (f"n={row['requests']} per side, concurrency {row['concurrency']}; prompt "
                f"{row['direct_prompt_tokens']:.0f} tokens both sides (a raw user message: "
                f"{row['raw_prompt_tokens']}); serve CPU "
                f"{row['serve_cpu_ms_per_request']:.1f} ms/request")
        results.add(Row("endpoint", f"{row['workload']}: p50 latency", row["endpoint_p50_ms"], "ms",
                        a=row["direct_p50_ms"], a_label="direct", b_label="endpoint", note=note,
                        target=CHAT_OVERHEAD if chat else None, ratio_target=True,
                        why="the endpoint's own work per request (serve CPU above) next to a ~10 ms tiny-model "
                            "request"))
        results.add(Row("endpoint", f"{row['workload']}: throughput", row["endpoint_rps"], "req/s",
                        a=row["direct_rps"], a_label="direct", b_label="endpoint",
                        target=CHAT_THROUGHPUT if chat else None, ratio_target=True, higher_is_better=True,
                        why="the endpoint shares the 2 cores with the upstream it calls"))
