"""HTML for the report view, the step tracker, the photo advice and chat answers.

Every string that came from a model, a guideline passage or a user is escaped here: the report is model output and
must never become markup. Classes (``da-…``) are styled by ``assistant/ui/style.css`` and are what the browser
tests look for. Nothing here imports Gradio.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from assistant.core.quality import QualityFinding
from assistant.core.report import DISCLAIMER, Citation, Report
from assistant.pipeline.pipeline import STEPS, ChatAnswer

STEP_LABELS = {"intake": "Image intake and quality", "retrieval": "Guideline retrieval",
               "generation": "Report generation", "validation": "Validation and grounding",
               "safety": "Safety checks"}
URGENCY_LABELS = {"routine": "Routine", "soon": "Soon", "urgent": "Urgent", "emergency": "Emergency"}


def disclaimer_banner() -> str:
    return f'<div class="da-disclaimer" role="note"><strong>⚕</strong> {escape(DISCLAIMER)}</div>'


def progress_html(done: Sequence[str], current: str | None, *, failed: bool = False) -> str:
    """The steps of a report as a checklist: done ✓, running …, failed ✗, waiting ○."""
    items = []
    for step in STEPS:
        if step in done and step != current:
            state, mark = "done", "✓"
        elif step == current:
            state, mark = ("failed", "✗") if failed else ("running", "…")
        else:
            state, mark = "waiting", "○"
        items.append(f'<li class="da-step da-step-{state}" data-step="{step}" data-state="{state}">'
                     f'<span class="da-step-mark">{mark}</span> {escape(STEP_LABELS[step])}</li>')
    return f'<ol class="da-progress" aria-label="report progress">{"".join(items)}</ol>'


def quality_html(n_images: int, findings: Sequence[QualityFinding], errors: Sequence[str]) -> str:
    """What the photos look like before any report is written: refusals, retake advice, or all clear."""
    if not n_images and not errors:
        return '<div class="da-quality da-quality-empty">Add 1 to 4 photos of the skin problem.</div>'
    parts = []
    if errors:
        parts.append('<div class="da-quality-errors" role="alert"><strong>Not usable:</strong><ul>'
                     + "".join(f"<li>{escape(e)}</li>" for e in errors) + "</ul></div>")
    if findings:
        parts.append('<div class="da-quality-advice" role="status"><strong>Retake advice</strong> (you can '
                     "retake the photo or continue anyway; the report will note it):<ul>"
                     + "".join(f'<li data-check="{f.check}">{escape(f.message)}</li>' for f in findings)
                     + "</ul></div>")
    elif n_images:
        noun = "photo looks" if n_images == 1 else f"{n_images} photos look"
        parts.append(f'<div class="da-quality-ok">✓ The {noun} usable.</div>')
    return f'<div class="da-quality">{"".join(parts)}</div>'


def alert_html(message: str | None, *, kind: str = "error") -> str:
    if not message:
        return ""
    return f'<div class="da-alert da-alert-{kind}" role="alert">{escape(message)}</div>'


def report_html(report: Report) -> str:
    cited = {c.id: c for c in report.citations}
    sections = [
        _triage(report),
        _diagnosis(report),
        _section("Differential diagnosis", _differential(report, cited), "da-differential"),
        _section("Findings", _findings(report), "da-findings"),
        _section("Red flags", _list(report.red_flags, "None noted."), "da-red-flags"),
        _section("Recommendations", _list(report.recommendations, "None given."), "da-recommendations"),
        _section("Limitations", _list(report.limitations, "None noted."), "da-limitations"),
        _section("Guideline sources", _sources(report.citations), "da-sources"),
        _provenance(report),
        f'<div class="da-disclaimer da-report-disclaimer">{escape(report.disclaimer)}</div>',
    ]
    return f'<article class="da-report">{"".join(sections)}</article>'


def answer_markdown(answer: ChatAnswer) -> str:
    """A chat answer as the chat window shows it: the text, safety notes, the passages it cites and the ones it
    was grounded on (expandable), the disclaimer."""
    parts = [escape(answer.text.strip()) or "_(no answer text)_"]
    if answer.safety_notes:
        parts.append("\n".join(f"> ⚠ {escape(note)}" for note in answer.safety_notes))
    cited = {c.id for c in answer.citations}
    sources = ('<div class="da-answer-sources"><strong>Sources cited</strong> '
               + ("".join(_citation(c) for c in answer.citations) or "none") + "</div>")
    others = [c for c in answer.consulted if c.id not in cited]
    if others:
        sources += (f'<div class="da-answer-consulted"><strong>Guideline passages consulted ({len(others)})</strong> '
                    + "".join(_citation(c) for c in others) + "</div>")
    parts.append(sources)
    parts.append(f"<sub>{escape(answer.disclaimer)}</sub>")
    return "\n\n".join(parts)


def _triage(report: Report) -> str:
    urgency = report.triage.urgency
    reasons = "".join(f'<li><code>{escape(a.rule)}</code>: {escape(a.detail)}</li>' for a in report.safety)
    escalation = (f'<div class="da-escalation"><strong>Why:</strong> the safety layer raised or confirmed this '
                  f"triage<ul>{reasons}</ul></div>") if reasons else ""
    return (f'<section class="da-triage-box"><div class="da-triage da-triage-{urgency}" data-urgency="{urgency}">'
            f"Triage: {URGENCY_LABELS[urgency]}</div>"
            f'<div class="da-triage-action">{escape(report.triage.action)}</div>{escalation}</section>')


def _diagnosis(report: Report) -> str:
    d = report.diagnosis
    mapped = (f' <span class="da-condition-id">({escape(d.condition_id)})</span>' if d.condition_id
              else ' <span class="da-condition-id">(not a recognised condition name)</span>')
    return (f'<section class="da-diagnosis"><h3>Most likely</h3><div class="da-most-likely">'
            f"{escape(d.condition)}{mapped} — confidence {d.confidence:.0%}</div></section>")


def _differential(report: Report, cited: dict[str, Citation]) -> str:
    rows = []
    for item in report.differential:
        pct = round(item.likelihood * 100)
        cites = "".join(_citation(cited[cid]) for cid in item.citation_ids if cid in cited)
        rows.append(
            f'<div class="da-diff-row"><div class="da-diff-label">{escape(item.condition)}</div>'
            f'<div class="da-diff-track" role="img" aria-label="{escape(item.condition)}: {pct}%">'
            f'<div class="da-diff-bar" style="width:{pct}%"></div></div>'
            f'<div class="da-diff-value">{pct}%</div>'
            f'<div class="da-diff-detail"><span class="da-rationale">{escape(item.rationale)}</span> '
            f'{cites}</div></div>')
    return f'<div class="da-diff-chart">{"".join(rows)}</div>'


def _findings(report: Report) -> str:
    f = report.findings
    rows = [("Primary morphology", f.primary_morphology), ("Colour", f.colour), ("Shape", f.shape),
            ("Border", f.border), ("Distribution", f.distribution), ("Size", f.size),
            ("Secondary changes", ", ".join(f.secondary_changes) or "none described")]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<p class="da-summary">{escape(f.summary)}</p><table class="da-findings-table">{table}</table>'


def _sources(citations: Sequence[Citation]) -> str:
    if not citations:
        return "<p>No guideline passages were cited.</p>"
    return "".join(_citation(c) for c in citations)


def _citation(c: Citation) -> str:
    link = (f' <a href="{escape(c.url, quote=True)}" target="_blank" rel="noopener noreferrer">source</a>'
            if c.url and c.url.startswith(("https://", "http://")) else "")
    return (f'<details class="da-cite" data-citation="{escape(c.id, quote=True)}"><summary>[{escape(c.id)}] '
            f"{escape(c.title)}</summary><blockquote>{escape(c.snippet)}</blockquote>"
            f'<div class="da-cite-source">{escape(c.source)}{link}</div></details>')


def _provenance(report: Report) -> str:
    p = report.provenance
    t = p.timings
    rows = [("Model", p.model + (f" + adapter {p.adapter}" if p.adapter else "")), ("Backend", p.backend),
            ("Prompts", p.prompt_version), ("Knowledge base", p.retrieval_store_version or "none"),
            ("dermassist", p.dermassist_version), ("Attempts", str(p.attempts)),
            ("Time", f"{t.total_ms / 1000:.1f} s (generation {t.generation_ms / 1000:.1f} s)"),
            ("Created", p.created_at.strftime("%Y-%m-%d %H:%M UTC")),
            ("Images (sha256)", ", ".join(h[:12] for h in p.image_sha256))]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return (f'<details class="da-provenance"><summary>Provenance</summary><table>{body}</table></details>')


def _section(title: str, body: str, cls: str) -> str:
    return f'<section class="{cls}"><h3>{escape(title)}</h3>{body}</section>'


def _list(items: Iterable[str], empty: str) -> str:
    items = list(items)
    if not items:
        return f"<p>{escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"
