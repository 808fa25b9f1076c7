"""Where dermassist keeps its local state."""

from __future__ import annotations

import os
from pathlib import Path


def dermassist_home() -> Path:
    """``$DERMASSIST_HOME`` if set, else ``~/.cache/dermassist`` (not created here)."""
    value = os.environ.get("DERMASSIST_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "dermassist"


def default_store_dir() -> Path:
    """The default knowledge-base store folder, ``<dermassist_home()>/kb``."""
    return dermassist_home() / "kb"
