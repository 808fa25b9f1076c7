"""The deterministic safety layer, applied to every report after validation (docs/safety.md).

A model can under-call danger; these rules cannot. They read the whole case (structured red-flag answers, symptoms,
free text in five languages with typos and negations, duration, age, site) and the model's own report, and only
ever raise triage. The rules are data (``rules/*.yaml``) run by one engine (``engine.py``).
"""

from assistant.pipeline.safety.engine import SafetyEngine, apply_safety, engine_for
from assistant.pipeline.safety.policy import SafetyPolicy

__all__ = ["SafetyEngine", "SafetyPolicy", "apply_safety", "engine_for"]
