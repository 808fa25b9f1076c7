"""`dermassist eval compare RUN_A RUN_B`: metric deltas (B - A) with paired-bootstrap 95% CIs over the samples
both runs scored (same sample ids), and a warning when tasks or datasets differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.core.errors import ConfigError
from eval.results import EvalResults
from eval.scoring import Scorer


def load_run(path: Path) -> EvalResults:
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    if not p.is_file():
        raise ConfigError(f"no results.json in {path}")
    try:
        return EvalResults.read(p)
    except ValueError as err:
        raise ConfigError(f"{p} is not a dermassist results file ({str(err).splitlines()[0]})") from None


def _scorer(res: EvalResults, ids: list[str]) -> Scorer:
    by_id = {r.id: r for r in res.records}
    return Scorer(res.run.task_type, list(res.metrics), [by_id[i].model_copy() for i in ids], res.labels)


def compare(a: EvalResults, b: EvalResults, n_boot: int = 1000, seed: int = 0) -> dict:
    warnings = []
    if (a.run.task, a.run.task_version) != (b.run.task, b.run.task_version):
        warnings.append(f"different tasks: {a.run.task} v{a.run.task_version} vs {b.run.task} v{b.run.task_version}")
    if a.run.dataset_fingerprint != b.run.dataset_fingerprint:
        warnings.append("different dataset fingerprints: deltas mix data and model changes")
    rec_a = {r.id: r for r in a.records}
    rec_b = {r.id: r for r in b.records}
    common = [i for i in rec_a if i in rec_b]
    rows = []
    sa = sb = None
    if common and a.run.task_type == b.run.task_type and a.labels == b.labels:
        sa, sb = _scorer(a, common), _scorer(b, common)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(common), size=len(common)) for _ in range(n_boot)] if common else []
    for name in dict.fromkeys([*a.metrics, *b.metrics]):
        ma, mb = a.metrics.get(name), b.metrics.get(name)
        va = ma.value if ma else None
        vb = mb.value if mb else None
        delta = None if va is None or vb is None else vb - va
        lo = hi = None
        if sa is not None and sb is not None and name in sa and name in sb:
            ds = []
            for idx in draws:
                x, y = sa.point(name, idx), sb.point(name, idx)
                if x is not None and y is not None:
                    ds.append(y - x)
            if len(ds) >= n_boot / 2:
                lo, hi = (float(v) for v in np.percentile(ds, [2.5, 97.5]))
        rows.append({"metric": name, "a": va, "b": vb, "delta": delta, "ci_low": lo, "ci_high": hi})
    return {"rows": rows, "paired_samples": len(common), "warnings": warnings}


def format_comparison(a: EvalResults, b: EvalResults, cmp: dict) -> str:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    lines = [f"A: {a.run.task} v{a.run.task_version} {a.run.model} {a.run.adapter or ''} ({a.run.backend})",
             f"B: {b.run.task} v{b.run.task_version} {b.run.model} {b.run.adapter or ''} ({b.run.backend})",
             f"paired samples: {cmp['paired_samples']}", *[f"warning: {w}" for w in cmp["warnings"]], "",
             f"{'metric':<20} {'A':>8} {'B':>8} {'B-A':>8}  95% CI (paired bootstrap)"]
    for r in cmp["rows"]:
        ci = f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]" if r["ci_low"] is not None else "n/a"
        delta = "n/a" if r["delta"] is None else f"{r['delta']:+.3f}"
        lines.append(f"{r['metric']:<20} {f(r['a']):>8} {f(r['b']):>8} {delta:>8}  {ci}")
    return "\n".join(lines)
