"""The model ids the endpoint serves besides each adapter. Server settings (limits, image policy) are the
``serving:`` section of the run config: ``assistant.app.config.ServingConfig``."""

from __future__ import annotations

REPORT_MODEL = "dermassist-report"
CHAT_MODEL = "dermassist-chat"
