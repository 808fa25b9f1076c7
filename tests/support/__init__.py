"""Shared test helpers, importable as ``support.*`` (``tests/`` is on ``sys.path`` via pytest's ``pythonpath``)."""
