"""Human-readable renderings of a report (Markdown for clinicians)."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from assistant.core.report import Report


def _cell(value: object) -> str:
    """Table-safe text: a pipe or newline from the model must not break the Markdown table."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("assistant.pipeline", "templates"),
                             undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=False)
    env.filters["md_cite"] = lambda cid: f"[{cid}]"
    env.finalize = lambda v: _cell(v) if isinstance(v, str) else v
    return env


def report_markdown(report: Report) -> str:
    return _env().get_template("report.md.j2").render(r=report).strip() + "\n"
