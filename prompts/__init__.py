"""Prompt templates (Jinja) shipped as package data; no prompt text lives in Python code.

``render("report/system.j2", ...)`` renders a template; ``PROMPT_VERSION`` identifies the whole set in report
provenance as ``<manifest version>+<sha256 of every template, first 8 hex>``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

import jinja2
import yaml

_ROOT = resources.files("prompts")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("prompts", "."),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string in a prompt
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **variables: object) -> str:
    return _env().get_template(name).render(**variables).strip()


def _template_files() -> list[str]:
    names: list[str] = []
    for folder in sorted(p for p in _ROOT.iterdir() if p.is_dir() and not p.name.startswith("_")):
        names += [f"{folder.name}/{f.name}" for f in sorted(folder.iterdir(), key=lambda f: f.name)
                  if f.name.endswith(".j2")]
    return names


@lru_cache(maxsize=1)
def prompt_version() -> str:
    manifest = yaml.safe_load(_ROOT.joinpath("manifest.yaml").read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    for name in _template_files():
        digest.update(name.encode())
        digest.update(_ROOT.joinpath(name).read_bytes())
    return f"{manifest['version']}+{digest.hexdigest()[:8]}"


PROMPT_VERSION = prompt_version()
