"""Metrics, each a small pure function over numpy arrays or strings, tested against hand-computed values."""
