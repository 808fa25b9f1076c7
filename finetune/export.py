"""After training: merge the adapter into its base, and (for the tiny recipe) write the packaged demo model.

The adapter itself is saved by the trainer in PEFT's format (``adapter_config.json`` + ``adapter_model.safetensors``),
which ``--adapter`` (transformers) and vLLM's ``LoRARequest`` both load. A merged model is a plain model folder
that every backend loads with no LoRA support at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEMO_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
              "chat_template.jinja", "processor_config.json", "preprocessor_config.json",
              "video_preprocessor_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
              "added_tokens.json")


def merge_adapter(base: str, adapter: Path, out: Path, dtype) -> Path:
    """The base model (unquantised, in ``dtype``) with ``adapter`` folded in, plus the base's processor."""
    from peft import PeftModel

    from finetune.model import load_model, load_processor

    model = PeftModel.from_pretrained(load_model(base, dtype), str(adapter)).merge_and_unload()
    model.generation_config.do_sample = False
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    load_processor(base).save_pretrained(out)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_demo(model_dir: Path, dest: Path, info: dict[str, Any]) -> Path:
    """Replace ``dest`` with the model's files and ``DEMO_MODEL.json`` (the command, metrics and every sha256)."""
    from assistant.models.tiny import DEMO_MANIFEST

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name in DEMO_FILES:
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, tmp / name)
        manifest = {**info, "sha256": {p.name: sha256(p) for p in sorted(tmp.iterdir())}}
        (tmp / DEMO_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
