"""LoRA/QLoRA fine-tuning recipes (TRL + PEFT + bitsandbytes) — reserved by the fixed project layout.

No recipe lives here yet: the fine-tuning work is a later issue. The pieces it will build on exist: the tiny model
and random adapters (`assistant.models.tiny`), the synthetic benchmark (`dermassist eval make-synthetic`), the
condition ontology (`assistant.core.ontology`) and adapters served by every backend (`--adapter`).
"""
