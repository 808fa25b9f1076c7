"""Eval test kit: real reports from the fixture template, replay files, JSONL-manifest datasets and task files.

Everything goes through the real harness: reports validate with ``Report``, datasets load with the real adapters
and ``ReplayPipeline`` serves the outputs to the real runner.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from assistant.core.report import Report
from support.images import lesion_image
from support.paths import EVAL_DATA

TEMPLATE = json.loads((EVAL_DATA / "replay" / "report.json").read_text())
FIRST = "<the first differential item>"


def report(differential: list[tuple[str | None, float]], diagnosis: str | None = FIRST, *,
           urgency: str = "routine", validate: bool = True) -> dict:
    """A report whose differential is ``[(condition_id or None, likelihood), ...]`` (the condition text is the id
    spelled out, or ``xq zz`` when None) and whose diagnosis is ``diagnosis`` (default: the first item; None: text
    that maps to no condition)."""
    r = copy.deepcopy(TEMPLATE)
    item = r["differential"][0]
    r["differential"] = [dict(item, condition=(cid or "xq zz").replace("_", " ")[:80], condition_id=cid,
                              likelihood=p, rationale="seen") for cid, p in differential]
    diag = differential[0][0] if diagnosis == FIRST else diagnosis
    r["diagnosis"] = {"condition": (diag or "xq zz").replace("_", " ")[:80], "condition_id": diag,
                      "confidence": differential[0][1]}
    r["triage"]["urgency"] = urgency
    return Report.model_validate(r).model_dump(mode="json") if validate else r


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def manifest(folder: Path, rows: list[dict]) -> Path:
    """A JSONL manifest (adapter ``jsonl_manifest``) whose rows all show one real lesion image ``lesion.jpg``."""
    folder.mkdir(parents=True, exist_ok=True)
    lesion_image().save(folder / "lesion.jpg")
    return write_jsonl(folder / "manifest.jsonl", [{"image": "lesion.jpg", **row} for row in rows])


def task_file(folder: Path, **fields) -> Path:
    """A task YAML (validated when loaded); ``fields`` override a classification task over a JSONL manifest."""
    body = {"name": "t", "version": "1", "type": "classification", "dataset": {"adapter": "jsonl_manifest"},
            "metrics": ["accuracy"], "bootstrap": 0, "skin_tone": {"scales": ["fitzpatrick"]}, **fields}
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(body))
    return path
