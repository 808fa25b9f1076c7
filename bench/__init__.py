"""dermassist's benchmarks: ``python -m bench all`` (or ``dermassist bench all``) writes the results table of
docs/benchmarks.md. Speed and memory live here, never in test assertions.

A package of its own beside the product (not one of import-linter's root packages): it may import every floor.
"""
