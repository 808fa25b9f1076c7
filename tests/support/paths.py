"""Where things are, for tests: the repository, the test data, the venv's scripts."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
DATA = TESTS / "data"
EVAL_DATA = DATA / "eval"
BIN = Path(sys.executable).parent
