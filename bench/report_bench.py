"""Report latency per backend.

    .venv/bin/python bench/report_bench.py [--model PATH_OR_ID] [--n 8] [--backends transformers,vllm]

Runs the full pipeline (intake, retrieval, constrained generation, validation, safety) on the same synthetic case
``--n`` times per backend and prints a Markdown table: p50/p95 latency, generated tokens per second, and the
process's peak RSS. Default model: the tiny demo model (CPU here; numbers show pipeline overhead, not a real VLM).
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench(backend: str, model: str, n: int, retrieval: bool) -> dict:
    from PIL import Image, ImageDraw

    from assistant.app.build import build_pipeline
    from assistant.app.config import load_app_config
    from assistant.core.case import Case, ClinicalContext, Symptoms

    img = Image.new("RGB", (320, 240), (214, 170, 140))
    ImageDraw.Draw(img).ellipse((120, 80, 200, 160), fill=(92, 58, 44))
    case = Case(images=[img], context=ClinicalContext(age=58, body_site="back", duration="3 months",
                                                      symptoms=Symptoms(change=True), question="Is this a melanoma?"))
    extra = {"dtype": "float32", "enforce_eager": True, "max_model_len": 8192} if backend == "vllm" else {}
    t0 = time.perf_counter()
    config = load_app_config(overrides={"backend": {"backend": backend, "model": model, **extra},
                                        "retrieval": {"enabled": retrieval}})
    pipeline = build_pipeline(config)
    load_s = time.perf_counter() - t0
    pipeline.run(case)  # warm-up (grammar compile, first retrieval)
    latencies, tokens = [], []
    for _ in range(n):
        report = pipeline.run(case)
        latencies.append(report.provenance.timings.total_ms / 1000)
        tokens.append(report.provenance.usage.completion_tokens / (report.provenance.timings.generation_ms / 1000))
    pipeline.close()
    return {"backend": backend, "retrieval": retrieval, "load_s": load_s, "p50_s": statistics.median(latencies),
            "p95_s": percentile(latencies, 0.95), "tok_s": statistics.median(tokens),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="path or hub id (default: tiny demo model)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--backends", default="transformers,vllm")
    args = parser.parse_args()
    from assistant.models.tiny import ensure_random_model

    model = args.model or str(ensure_random_model())
    rows = [bench(b, model, args.n, r) for b in args.backends.split(",") for r in (False, True)]
    print("| backend | retrieval | load s | p50 s | p95 s | gen tok/s | peak RSS GiB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {'on' if r['retrieval'] else 'off'} | {r['load_s']:.1f} | {r['p50_s']:.2f} | "
              f"{r['p95_s']:.2f} | {r['tok_s']:.0f} | {r['peak_rss_gib']:.2f} |")


if __name__ == "__main__":
    main()
