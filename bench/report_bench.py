"""Report latency per backend, with the pipeline's own per-step breakdown, backends alternating in one process.

Every backend's pipeline is built first (load time recorded), then rounds run one report on each, the order
reversing every round. Steps come from the report's provenance: intake, retrieval, generation (constrained
decoding, validation, the retry if any) and the rest (grounding, safety, provenance). The default model is the
tiny random demo model on CPU: the numbers show the pipeline around the model, not a real VLM's speed.
"""

from __future__ import annotations

from bench.common import Results, Row, clock, median, percentile


def lesion_image():
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240), (214, 170, 140))
    ImageDraw.Draw(img).ellipse((120, 80, 200, 160), fill=(92, 58, 44))
    return img


def case():
    from assistant.core.case import Case, ClinicalContext, Symptoms

    return Case(images=[lesion_image()], context=ClinicalContext(
        age=58, body_site="back", duration="3 months", symptoms=Symptoms(change=True),
        question="Is this a melanoma?"))


def pipeline(backend: str, model: str | None, **generation):
    from assistant.app.build import build_pipeline
    from assistant.app.config import load_app_config

    section = {"backend": backend, **({"model": model} if model else {})}
    if backend == "vllm":
        section.update(dtype="float32", enforce_eager=True, max_model_len=8192, enable_prefix_caching=False)
    return build_pipeline(load_app_config(overrides={"backend": section, "generation": generation}))


def run(results: Results, backends: tuple[str, ...] = ("transformers", "vllm"), model: str | None = None,
        rounds: int = 8) -> None:
    pipelines, load_s = {}, {}
    for name in backends:
        started = clock()
        pipelines[name] = pipeline(name, model)
        load_s[name] = clock() - started
    the_case = case()
    timings: dict[str, list] = {name: [] for name in backends}
    for name in backends:
        pipelines[name].run(the_case)  # warm-up: grammar compile, first retrieval, engine graphs
    for r in range(rounds):
        for name in backends if r % 2 == 0 else tuple(reversed(backends)):
            report = pipelines[name].run(the_case)
            timings[name].append(report.provenance)
    for name in backends:
        pipelines[name].close()
        t = [p.timings for p in timings[name]]
        steps = {"intake": median([x.intake_ms for x in t]), "retrieval": median([x.retrieval_ms for x in t]),
                 "generation": median([x.generation_ms for x in t]),
                 "rest": median([x.total_ms - x.intake_ms - x.retrieval_ms - x.generation_ms for x in t])}
        tokens = median([p.usage.completion_tokens for p in timings[name]])
        breakdown = ", ".join(f"{step} {ms:.0f} ms" for step, ms in steps.items())
        results.add(Row("report latency", f"{name}: p50 (p95 {percentile([x.total_ms for x in t], 95):.0f} ms)",
                        median([x.total_ms for x in t]), "ms",
                        note=f"{breakdown}; {tokens:.0f} tokens; load {load_s[name]:.1f} s"))
