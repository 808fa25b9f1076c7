"""A report as files a clinician can keep: JSON (the Report schema), Markdown, and a PDF.

The PDF is drawn with fpdf2 (pure Python, no system libraries) in a core font, so text is folded to Latin-1 (a
few typographic characters get ASCII stand-ins; anything else becomes "?") rather than depending on a font
installed on the server. It carries what a reader must not miss: the disclaimer (top and bottom), triage with
the safety layer's reasons, the differential with likelihoods and sources, and the cited guideline passages.
"""

from __future__ import annotations

from pathlib import Path

from assistant.core.report import Report
from assistant.pipeline.render import report_markdown

_FOLD = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "≥": ">=",
                       "≤": "<=", "→": "->", "•": "-", "×": "x", "\u00a0": " "})


def write_exports(report: Report, folder: Path) -> dict[str, Path]:
    """``{"json": …, "markdown": …, "pdf": …}`` written into ``folder`` (the session's own folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "dermassist-report.json", "markdown": folder / "dermassist-report.md",
             "pdf": folder / "dermassist-report.pdf"}
    paths["json"].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(report_markdown(report), encoding="utf-8")
    paths["pdf"].write_bytes(report_pdf(report))
    return paths


def report_pdf(report: Report) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import WrapMode, XPos, YPos

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title("dermassist decision-support report")
    pdf.set_creator("dermassist")
    pdf.add_page()

    def text(value: str, size: float = 10, style: str = "", fill: tuple[int, int, int] | None = None) -> None:
        pdf.set_font("Helvetica", style, size)
        if fill:
            pdf.set_fill_color(*fill)
        pdf.multi_cell(0, size * 0.5, _latin1(value), fill=fill is not None, new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT, wrapmode=WrapMode.CHAR)

    def heading(value: str) -> None:
        pdf.ln(2)
        text(value, 12, "B")

    def bullets(items: list[str], empty: str) -> None:
        for item in items or [empty]:
            text(f"- {item}")

    text("Dermatology decision-support report", 16, "B")
    text(report.disclaimer, 9, "B", fill=(255, 243, 205))
    heading(f"Triage: {report.triage.urgency.upper()}")
    text(report.triage.action)
    for action in report.safety:
        text(f"Safety layer ({action.rule}): {action.detail}", 9, "I")
    heading("Most likely")
    d = report.diagnosis
    text(f"{d.condition} ({d.condition_id or 'not a recognised condition name'}), confidence {d.confidence:.0%}")
    heading("Differential diagnosis")
    for i, item in enumerate(report.differential, 1):
        sources = f" [{', '.join(item.citation_ids)}]" if item.citation_ids else ""
        text(f"{i}. {item.condition}: {item.likelihood:.0%}{sources}", 10, "B")
        text(item.rationale, 9)
    heading("Findings")
    f = report.findings
    text(f.summary)
    for label, value in (("Morphology", f.primary_morphology), ("Colour", f.colour), ("Shape", f.shape),
                         ("Border", f.border), ("Distribution", f.distribution), ("Size", f.size)):
        text(f"{label}: {value}", 9)
    heading("Red flags")
    bullets(report.red_flags, "None noted.")
    heading("Recommendations")
    bullets(report.recommendations, "None given.")
    heading("Limitations")
    bullets(report.limitations, "None noted.")
    heading("Guideline sources cited")
    if not report.citations:
        text("No guideline passages were cited.")
    for c in report.citations:
        text(f"[{c.id}] {c.title} - {c.source}" + (f" ({c.url})" if c.url else ""), 9, "B")
        text(c.snippet, 8)
    heading("Provenance")
    p = report.provenance
    text(f"Model {p.model}{' + adapter ' + p.adapter if p.adapter else ''} via {p.backend}; prompts "
         f"{p.prompt_version}; knowledge base {p.retrieval_store_version or 'none'}; dermassist "
         f"{p.dermassist_version}; {p.created_at:%Y-%m-%d %H:%M} UTC", 8)
    pdf.ln(3)
    text(report.disclaimer, 9, "B", fill=(255, 243, 205))
    return bytes(pdf.output())


def _latin1(value: str) -> str:
    return value.translate(_FOLD).encode("latin-1", "replace").decode("latin-1")
