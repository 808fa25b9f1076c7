"""python bench/endpoint_bench.py --requests 64 --concurrency 8 [--model PATH] [--retrieval] [--out results.json]

What the endpoint costs: throughput and p50/p99 latency of ``dermassist serve --backend openai --upstream`` against
calling the same upstream vLLM server directly with the same requests (same image, same question, same
``max_tokens``), on loopback.

It starts one vLLM OpenAI server (``vllm_server_command``: dermassist's structured-outputs settings) and one
``dermassist serve`` in front of it, then runs two workloads, each on both targets:

* ``chat``   — an image plus a question, ``max_tokens`` fixed: endpoint ``dermassist-chat`` (intake, retrieval if
  ``--retrieval``, prompt, safety notes) vs the raw message to vLLM;
* ``report`` — an image: endpoint ``dermassist-report`` (intake, prompt, JSON-schema decoding, validation,
  grounding, safety layer) vs the raw message to vLLM with ``response_format`` = the report draft schema.

The endpoint's prompts are longer than the raw request (system prompt, instructions), so part of the difference
is model work, not HTTP overhead: the table reports mean prompt/completion tokens so the two can be told apart.
Without ``--model`` it uses the tiny random demo model (CPU: numbers show overhead, not model speed).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited early ({proc.returncode}); see its log")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout_s} s")


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for _ in range(100):  # vLLM's spawned workers exit 1-3 s after the parent
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)


def _image_url() -> str:
    from PIL import Image

    img = Image.new("RGB", (160, 120), (196, 128, 112))
    img.paste((92, 52, 40), (50, 40, 100, 80))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _run(client, kwargs: dict, n: int, concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    prompt_tokens: list[int] = []
    completion_tokens: list[int] = []
    errors = 0

    async def one():
        nonlocal errors
        async with gate:
            t0 = time.perf_counter()
            try:
                response = await client.chat.completions.create(**kwargs)
            except Exception:
                errors += 1
                return
            latencies.append(time.perf_counter() - t0)
            if response.usage:
                prompt_tokens.append(response.usage.prompt_tokens)
                completion_tokens.append(response.usage.completion_tokens)

    for _ in range(2):  # warm-up (compiles grammars, fills caches)
        await one()
    latencies.clear(), prompt_tokens.clear(), completion_tokens.clear()
    errors = 0
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - t0
    return {"requests": n, "ok": len(latencies), "errors": errors, "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 2),
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(1000 * _percentile(latencies, 99), 1) if latencies else None,
            "prompt_tokens": round(statistics.mean(prompt_tokens)) if prompt_tokens else None,
            "completion_tokens": round(statistics.mean(completion_tokens)) if completion_tokens else None}


async def _bench(upstream: str, endpoint: str, served: str, args) -> list[dict]:
    import openai

    from assistant.core.report import draft_json_schema

    image = _image_url()
    question = "What is this itchy scaly plaque on the elbow, and what should be done next?"
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                             {"type": "text", "text": question}]}]
    direct = openai.AsyncOpenAI(base_url=upstream, api_key="EMPTY", max_retries=0, timeout=600)
    ours = openai.AsyncOpenAI(base_url=endpoint, api_key=args.api_key, max_retries=0, timeout=600)
    report_format = {"type": "json_schema", "json_schema": {"name": "dermassist_report",
                                                            "schema": draft_json_schema(), "strict": True}}
    workloads = [
        ("chat", args.requests, args.concurrency,
         (direct, dict(model=served, messages=messages, max_tokens=args.chat_tokens, temperature=0.0, seed=0)),
         (ours, dict(model="dermassist-chat", messages=messages, max_tokens=args.chat_tokens))),
        ("report", args.report_requests, args.report_concurrency,
         (direct, dict(model=served, messages=messages, max_tokens=1536, temperature=0.0, seed=0,
                       response_format=report_format)),
         (ours, dict(model="dermassist-report", messages=messages))),
    ]
    rows = []
    for name, n, concurrency, (d_client, d_kwargs), (e_client, e_kwargs) in workloads:
        if n <= 0:
            continue
        for target, client, kwargs in (("vLLM direct", d_client, d_kwargs), ("dermassist endpoint", e_client,
                                                                              e_kwargs)):
            result = await _run(client, kwargs, n, concurrency)
            rows.append({"workload": name, "target": target, "concurrency": concurrency, **result})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    await direct.close()
    await ours.close()
    return rows


def _table(rows: list[dict]) -> str:
    head = ("| workload | target | n | conc. | ok | req/s | p50 ms | p99 ms | prompt tok | completion tok |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['workload']} | {r['target']} | {r['requests']} | {r['concurrency']} | {r['ok']} | "
             f"{r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['prompt_tokens']} | "
             f"{r['completion_tokens']} |" for r in rows]
    return "\n".join([head, *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model path or hub id (default: the tiny random demo model)")
    parser.add_argument("--requests", type=int, default=64, help="chat requests per target")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--chat-tokens", type=int, default=32, help="max_tokens of chat requests")
    parser.add_argument("--report-requests", type=int, default=16)
    parser.add_argument("--report-concurrency", type=int, default=4)
    parser.add_argument("--retrieval", action="store_true", help="ground in the knowledge base (built on first use)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--extra-vllm-args", default="--enforce-eager --max-model-len 8192",
                        help="extra flags for the vLLM server (CPU defaults)")
    args = parser.parse_args()
    args.api_key = "bench-key"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.backends.vllm_backend import vllm_server_command

    model = args.model
    if not model:
        from assistant.models.tiny import ensure_random_model

        model = str(ensure_random_model())
    logs = Path(tempfile.mkdtemp(prefix="dermassist-bench-"))
    up_port, ep_port = _free_port(), _free_port()
    env = dict(os.environ, DERMASSIST_API_KEY=args.api_key)
    cmd = vllm_server_command(model, port=up_port, extra=[*args.extra_vllm_args.split(), "--served-model-name",
                                                          "upstream", "--disable-log-stats"])
    upstream = subprocess.Popen(cmd, stdout=open(logs / "vllm.log", "wb"), stderr=subprocess.STDOUT, env=env,  # noqa: SIM115
                                start_new_session=True)
    endpoint = None
    try:
        _wait(f"http://127.0.0.1:{up_port}/v1/models", upstream)
        concurrency = max(args.concurrency, args.report_concurrency)
        endpoint = subprocess.Popen(
            [sys.executable, "-c", "from assistant.cli import main; main()", "serve", "--upstream",
             f"http://127.0.0.1:{up_port}/v1", "--port", str(ep_port), "--max-concurrency", str(concurrency),
             "--max-queue", "1024", "--log-level", "warning", *([] if args.retrieval else ["--no-retrieval"])],
            stdout=open(logs / "serve.log", "wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO,  # noqa: SIM115
            start_new_session=True)
        _wait(f"http://127.0.0.1:{ep_port}/health", endpoint)
        rows = asyncio.run(_bench(f"http://127.0.0.1:{up_port}/v1", f"http://127.0.0.1:{ep_port}/v1", "upstream",
                                  args))
    finally:
        if endpoint is not None:
            _stop(endpoint)
        _stop(upstream)
    print(_table(rows))
    if args.out:
        args.out.write_text(json.dumps({"model": Path(model).name, "retrieval": args.retrieval, "rows": rows},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
