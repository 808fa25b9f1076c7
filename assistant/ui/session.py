"""One browser tab's case: its clean images, their quality findings, the report, the follow-up conversation.

It lives in a ``gr.State`` (per session, in memory, never shared), and its exports in a folder of its own under
the UI's private temporary folder, removed when the tab closes or the state expires. Photos are decoded once, by
the same intake every surface uses, and kept as clean pixels: no upload path, file name or metadata is kept.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.case import Case
from assistant.core.intake import IntakeImage
from assistant.core.quality import QualityFinding
from assistant.core.report import Report


@dataclass
class CaseSession:
    token: str  # names the session's export folder: ``folder_token(session_hash)``
    images: list[IntakeImage] = field(default_factory=list)
    image_errors: list[str] = field(default_factory=list)
    findings: list[QualityFinding] = field(default_factory=list)
    case: Case | None = None
    report: Report | None = None
    chat: list[tuple[str, str]] = field(default_factory=list)  # (role, text) turns after the report

    def set_images(self, images: list[IntakeImage], errors: list[str], findings: list[QualityFinding]) -> None:
        self.images, self.image_errors, self.findings = images, errors, findings

    def set_report(self, case: Case, report: Report) -> None:
        """A new report starts a new conversation about it."""
        self.case, self.report, self.chat = case, report, []

    def folder(self, root: Path) -> Path:
        return root / self.token


def folder_token(session_hash: str | None) -> str:
    """A folder name for a Gradio session id (which the browser sends, so it is hashed, never used as a path)."""
    return hashlib.sha256((session_hash or "").encode()).hexdigest()[:24]


def forget(session: CaseSession | None, root: Path) -> None:
    """Drop a session's exports (its state is dropped by Gradio)."""
    if session is not None:
        shutil.rmtree(session.folder(root), ignore_errors=True)
