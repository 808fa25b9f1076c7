"""Decoding: constrained (the report's JSON schema) vs free, torch threads, and the first constrained request.

* constrained vs free: the same report prompt (with its retrieved passages) generated with and without the
  decoding schema, ``max_new_tokens`` fixed, rounds alternating, on each in-process backend; compared per generated
  token (the two outputs differ in length);
* torch threads (transformers): the same free generation with 1 thread and with every usable core, alternating;
* first constrained request of a process vs the next one (grammar compilation), in fresh processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import REPO, Results, Row, alternate, clock, median
from bench.report_bench import case, pipeline

CONSTRAINED_RATIO = 1.10

FIRST_REQUEST = """
import json, sys, time
from bench.decode_bench import prepared
from assistant.backends.base import GenerationRequest
if __name__ == "__main__":  # vLLM starts worker processes
    backend, messages, schema = prepared(sys.argv[1], sys.argv[2] or None)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        backend.generate(GenerationRequest(messages=messages, json_schema=schema, max_new_tokens=4))
        times.append((time.perf_counter() - t0) * 1000)
    backend.close()
    print(json.dumps({"first_ms": times[0], "next_ms": times[1]}))
"""


def prepared(backend: str, model: str | None):
    """A backend, the report messages of the bench case (with its passages) and their decoding schema."""
    from assistant.core.messages import report_messages
    from assistant.core.report import draft_json_schema

    pipe = pipeline(backend, model)
    the_case = case()
    images = pipe.intake(the_case.images)
    passages = pipe.retriever.retrieve(the_case, pipe.settings.retrieval_k)
    messages = report_messages(the_case.context, the_case.modality, images, passages)
    return pipe.backend, messages, draft_json_schema([p.id for p in passages])


def _per_token(backend, messages, schema, max_new_tokens: int):
    from assistant.backends.base import GenerationRequest

    def once() -> float:
        started = clock()
        result = backend.generate(GenerationRequest(messages=messages, json_schema=schema,
                                                    max_new_tokens=max_new_tokens))
        return (clock() - started) * 1000 / max(1, result.completion_tokens)

    return once


def run(results: Results, backends: tuple[str, ...] = ("transformers", "vllm"), model: str | None = None,
        rounds: int = 8, max_new_tokens: int = 256, first_rounds: int = 3) -> None:
    for name in backends:
        backend, messages, schema = prepared(name, model)
        variants = {"free": _per_token(backend, messages, None, max_new_tokens),
                    "constrained": _per_token(backend, messages, schema, max_new_tokens)}
        for once in variants.values():
            once()  # warm-up: grammar compile, kernels
        samples = alternate(rounds, variants)
        results.add(Row("decoding", f"{name}: constrained vs free, per generated token",
                        median(samples["constrained"]), "ms", a=median(samples["free"]), a_label="free",
                        b_label="constrained", target=CONSTRAINED_RATIO, ratio_target=True,
                        why="xgrammar fills and applies a token mask at every step; with the tiny model a step is "
                            "~1-2 ms, so the mask is a large share (a real VLM's step is 10-100x longer)"))
        if name == "transformers":
            threads(results, backend, messages, rounds, max_new_tokens)
        backend.close()
        first = first_request(name, model, rounds=first_rounds)
        results.add(Row("decoding", f"{name}: first constrained request of a process vs the next",
                        median([x["first_ms"] for x in first]), "ms", a=median([x["next_ms"] for x in first]),
                        a_label="next", b_label="first", note="4 tokens; the difference is grammar setup"))


def threads(results: Results, backend, messages, rounds: int, max_new_tokens: int) -> None:
    import torch

    usable = len(os.sched_getaffinity(0))
    configured = torch.get_num_threads()
    once = _per_token(backend, messages, None, max_new_tokens)

    def with_threads(n: int):
        def run_once() -> float:
            torch.set_num_threads(n)
            return once()
        return run_once

    samples = alternate(rounds, {"all": with_threads(usable), "one": with_threads(1)})
    torch.set_num_threads(configured)
    results.add(Row("decoding", f"transformers: torch threads, 1 vs {usable} (all usable cores)",
                    median(samples["one"]), "ms/token", a=median(samples["all"]), a_label=f"{usable} threads",
                    b_label="1 thread", note=f"the backend's default here: {configured}"))


def first_request(backend: str, model: str | None, rounds: int) -> list[dict]:
    out = []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(rounds):
        proc = subprocess.run([sys.executable, "-c", FIRST_REQUEST, backend, model or ""], capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=900, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out
