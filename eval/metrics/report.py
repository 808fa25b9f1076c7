"""Report-level metrics: how often the pipeline's report is valid, grounded, abstains, and triages safely.

Definitions (per sample, aggregated as rates):

* schema_valid — the pipeline returned a ``Report`` (a ``GenerationError``, i.e. output that never validated
  even after the retry, is invalid; other failures such as unreadable images are excluded from this rate).
* citation_valid — every citation id in the differential resolves to a citation in the report and the model
  cited nothing that was not retrieved (``grounding.dropped_citation_ids`` empty). Reports without citations
  count as valid; ``citation_rate`` reports how many cited anything.
* abstained — the final diagnosis does not commit: its text says uncertain / unknown / indeterminate / cannot
  determine / insufficient, or it maps to no condition and its confidence is below 0.2.
* triage_agreement — among samples whose label is malignant or premalignant, the share triaged ``urgent`` or
  ``emergency``; ``benign_urgent_rate`` is the share of benign labels triaged that high (over-referral).
"""

from __future__ import annotations

import re

_ABSTAIN = re.compile(r"\b(uncertain|unknown|indeterminate|undetermined|cannot|can't|unable|insufficient|"
                      r"not possible|unclear|no diagnosis)\b", re.IGNORECASE)
URGENT = {"urgent", "emergency"}


def citation_valid(report: dict) -> bool:
    cited = {c for item in report.get("differential", []) for c in item.get("citation_ids", [])}
    resolved = {c["id"] for c in report.get("citations", [])}
    dropped = report.get("grounding", {}).get("dropped_citation_ids", [])
    return not dropped and cited <= resolved


def cites_anything(report: dict) -> bool:
    return any(item.get("citation_ids") for item in report.get("differential", []))


def abstained(report: dict) -> bool:
    diag = report.get("diagnosis", {})
    if _ABSTAIN.search(diag.get("condition", "")):
        return True
    return diag.get("condition_id") is None and float(diag.get("confidence", 0.0)) < 0.2


def urgent(report: dict) -> bool:
    return report.get("triage", {}).get("urgency") in URGENT
