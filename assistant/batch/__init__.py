"""``dermassist batch``: reports for thousands of cases from a folder, CSV or JSONL manifest, resumable and exactly
once, on one in-process engine or scaled out on a Ray Data actor pool.

Modules: ``manifest`` (read a manifest into cases, with per-case input hashes), ``store`` (the output folder:
append-only ``reports.jsonl`` with fsync, atomic artifacts), ``outputs`` (reports.csv, the HTML gallery, run.json),
``work`` (one chunk of cases through the pipeline), ``runner`` (passes, backoff, the progress bar), ``engines``
(local threads or Ray Data), ``cli`` (the command).
"""
